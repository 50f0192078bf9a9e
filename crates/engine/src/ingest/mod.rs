//! Turning events into rows: JSONPath extraction and ClickHouse-style value conversion, with
//! every row that does not convert sent to quarantine with its reasons.

pub mod arrow;
pub mod cells;
pub mod rows;
pub mod value;

//! Tinybird-compatible datafiles: `.datasource` and `.pipe` files parsed into a typed project
//! model (spec `datafiles.md`), with Aviary's `TENANT_KEY` extension.
//!
//! This crate owns the file formats and the checks a project must pass before it is deployed:
//! every keyword, the column syntax with types, JSONPaths and defaults, engine keys that name
//! real columns, nodes whose templates parse (through the `template` crate), references that
//! resolve and pipes that do not read each other in a cycle. Every problem carries its file and
//! line. It knows nothing of storage or HTTP: the engine turns the model into tables and
//! queries.

mod datasource;
mod error;
mod pipe;
mod project;
mod refs;
mod schema;
mod syntax;
mod types;

pub use datasource::{Datasource, Engine, EngineKind, TokenGrant, TokenScope};
pub use error::{Diagnostic, Error, Problem, Result, Severity};
pub use pipe::{Node, NodeKind, Pipe};
pub use project::{Project, SourceFile};
pub use refs::table_references;
pub use schema::{Column, ColumnDefault, Index, JsonPath, PathStep, parse_schema};
pub use syntax::{Instruction, shell_split};
pub use types::{ChType, TypeError};

//! Bounds that keep every parse and render finite (spec §11). The reference has none.

/// Resource limits for parsing and rendering; [`Limits::default`] gives the spec's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest template source accepted, in bytes.
    pub max_source_bytes: usize,
    /// Deepest nesting of blocks (and, scaled, of expressions).
    pub max_nesting: usize,
    /// Loop iterations per render, all loops together.
    pub max_loop_iterations: u64,
    /// Largest rendered SQL, in bytes.
    pub max_output_bytes: usize,
    /// Longest `range()`.
    pub max_range: usize,
    /// Largest result of repeating a string (`s * n`), in bytes.
    pub max_repeat_bytes: usize,
    /// Work per render: bytes of strings and 16 bytes per list element built or iterated, all
    /// operations together (bounds loops over large values).
    pub max_work_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_source_bytes: 1 << 20,
            max_nesting: 64,
            max_loop_iterations: 100_000,
            max_output_bytes: 8 << 20,
            max_range: 10_000,
            max_repeat_bytes: 1 << 20,
            max_work_bytes: 256 << 20,
        }
    }
}

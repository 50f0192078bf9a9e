//! The names of the callable things templates know, in one place: which functions exist, in
//! which context they may be called, and which ones the reference binds so a request
//! parameter can never replace them.

/// Type functions: their first argument is a parameter, validated and typed.
pub(crate) const TYPE_FUNCTIONS: [&str; 23] = [
    "String",
    "Boolean",
    "DateTime64",
    "DateTime",
    "Date",
    "Float32",
    "Float64",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Int128",
    "Int256",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "UInt128",
    "UInt256",
    "Int",
    "Integer",
    "Array",
    "JSON",
];

/// Helper functions of the template language (identifiers, utilities, errors, hints, secrets).
pub(crate) const HELPER_FUNCTIONS: [&str; 24] = [
    "column",
    "columns",
    "symbol",
    "table",
    "TABLE",
    "defined",
    "sql_and",
    "split_to_array",
    "enumerate_with_last",
    "sql_unescape",
    "day_diff",
    "date_diff_in_days",
    "date_diff_in_hours",
    "date_diff_in_minutes",
    "date_diff_in_seconds",
    "error",
    "custom_error",
    "max_threads",
    "cache_ttl",
    "backend_hint",
    "activate",
    "disable",
    "tb_secret",
    "tb_var",
];

/// Python builtins callable inside `{{ }}`.
pub(crate) const OUTPUT_BUILTINS: [&str; 6] = ["len", "list", "min", "max", "int", "float"];

/// Extra builtins callable in statement expressions (Aviary decision, spec §4.5). `bool` is the
/// reference's `Boolean`.
pub(crate) const STATEMENT_BUILTINS: [&str; 11] =
    ["sum", "str", "bool", "abs", "round", "range", "enumerate", "zip", "sorted", "any", "all"];

/// Aliases the reference also binds (`Array` element types, `bool`).
const ALIASES: [&str; 3] = ["bool", "Symbol", "Column"];

/// Methods callable inside `{{ }}`.
pub(crate) const OUTPUT_METHODS: [&str; 4] = ["split", "get", "join", "replace"];

/// Extra methods callable in statement expressions.
pub(crate) const STATEMENT_METHODS: [&str; 10] =
    ["startswith", "endswith", "lower", "upper", "strip", "lstrip", "rstrip", "keys", "values", "items"];

/// The function called `name`, with a `'static` name, if it is callable anywhere.
pub(crate) fn function(name: &str) -> Option<&'static str> {
    TYPE_FUNCTIONS
        .iter()
        .chain(&HELPER_FUNCTIONS)
        .chain(&OUTPUT_BUILTINS)
        .chain(&STATEMENT_BUILTINS)
        .find(|f| **f == name)
        .copied()
}

/// Whether `name` may be called inside `{{ }}` (spec §4.3).
pub(crate) fn is_output_function(name: &str) -> bool {
    TYPE_FUNCTIONS.contains(&name) || HELPER_FUNCTIONS.contains(&name) || OUTPUT_BUILTINS.contains(&name)
}

/// Whether a bare use of `name` is the function itself (the reference binds it in its
/// namespace) rather than a parameter, as Python builtins such as `len` are.
pub(crate) fn is_namespace_function(name: &str) -> bool {
    TYPE_FUNCTIONS.contains(&name) || HELPER_FUNCTIONS.contains(&name) || ALIASES.contains(&name)
}

/// Type functions the reference's variable reader records (all but `Int` and `Integer`).
pub(crate) fn is_reference_parameter_type(name: &str) -> bool {
    TYPE_FUNCTIONS.contains(&name) && !matches!(name, "Int" | "Integer")
}

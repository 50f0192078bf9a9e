//! The one error type of the crate, shaped like the HTTP responses the API layer builds from it.

use serde_json::Value as Json;

/// Documentation paths the reference attaches to its errors (appended to the docs base URL).
pub mod doc {
    /// Type functions, required parameters, validation.
    pub const TEMPLATES: &str = "/cli/advanced-templates.html";
    /// `column()`.
    pub const COLUMN: &str = "/cli/advanced-templates.html#column";
    /// `columns()`.
    pub const COLUMNS: &str = "/cli/advanced-templates.html#columns";
    /// `sql_and()`.
    pub const SQL_AND: &str = "/cli/advanced-templates.html#sql_and";
    /// `split_to_array()`.
    pub const SPLIT_TO_ARRAY: &str = "/cli/advanced-templates.html#split_to_array";
    /// `day_diff()` and `date_diff_in_days()`.
    pub const DATE_DIFF_IN_DAYS: &str = "/cli/advanced-templates.html#date_diff_in_days";
    /// `date_diff_in_hours()`.
    pub const DATE_DIFF_IN_HOURS: &str = "/cli/advanced-templates.html#date_diff_in_hours";
    /// `date_diff_in_minutes()`.
    pub const DATE_DIFF_IN_MINUTES: &str = "/cli/advanced-templates.html#date_diff_in_minutes";
    /// `date_diff_in_seconds()`.
    pub const DATE_DIFF_IN_SECONDS: &str = "/cli/advanced-templates.html#date_diff_in_seconds";
    /// Unknown names.
    pub const DEFINED: &str = "/cli/advanced-templates.html#defined";
    /// A type function called without its argument.
    pub const TRANSFORM_TYPES: &str = "/cli/advanced-templates.html#transform-types-functions";
}

/// Why a template could not be parsed or rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Every parse, sandbox, validation and limit failure. Over HTTP: 400 with
    /// `{"error": "Template Syntax Error: <message>", "documentation": …}`.
    #[error("Template Syntax Error: {message}")]
    Syntax {
        /// The message after the `Template Syntax Error: ` prefix.
        message: String,
        /// The documentation path attached to this failure, if any (see [`doc`]).
        documentation: Option<&'static str>,
    },
    /// Raised by `error('message')`. Over HTTP: 400 with `{"error": "message"}`.
    #[error("{message}")]
    User {
        /// The text the template author gave.
        message: String,
    },
    /// Raised by `custom_error(body, code)`. Over HTTP: `status` with `body` as the JSON body.
    #[error("status={status} body={body}")]
    Custom {
        /// HTTP status, 400–599.
        status: u16,
        /// The JSON object sent as the response body.
        body: Json,
    },
}

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A syntax-class error without a documentation link.
    pub fn syntax(message: impl Into<String>) -> Self {
        Error::Syntax { message: message.into(), documentation: None }
    }

    /// A syntax-class error with the documentation path the reference attaches.
    pub fn syntax_doc(message: impl Into<String>, documentation: &'static str) -> Self {
        Error::Syntax { message: message.into(), documentation: Some(documentation) }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Error::Custom { status, .. } => *status,
            _ => 400,
        }
    }

    /// The JSON body the HTTP API answers with; `docs_base` is the documentation base URL
    /// (e.g. `https://www.tinybird.co/docs`).
    pub fn body(&self, docs_base: &str) -> Json {
        match self {
            Error::Syntax { documentation: Some(path), .. } => serde_json::json!({
                "error": self.to_string(),
                "documentation": format!("{}{}", docs_base.trim_end_matches('/'), path),
            }),
            Error::Syntax { .. } | Error::User { .. } => {
                serde_json::json!({ "error": self.to_string() })
            }
            Error::Custom { body, .. } => body.clone(),
        }
    }

    /// Whether `{% try %}…{% except %}` may catch this error (never `custom_error` nor a limit).
    pub(crate) fn catchable(&self) -> bool {
        match self {
            Error::Custom { .. } => false,
            Error::Syntax { message, .. } => !is_limit_message(message),
            Error::User { .. } => true,
        }
    }
}

fn is_limit_message(message: &str) -> bool {
    message.starts_with("template loops exceeded")
        || message.starts_with("rendered SQL is larger")
        || message.starts_with("template nesting deeper")
        || message.starts_with("string repetition result")
        || message.starts_with("list repetition result")
        || message.starts_with("range() is limited")
        || message.starts_with("template work exceeded")
        || message.starts_with("template is larger")
}

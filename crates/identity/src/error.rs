//! What can go wrong, in terms the Backend API maps to Clerk's error bodies.

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An identity error. Each variant maps to one HTTP status and Clerk error `code`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An id, slug or name that does not exist (404 `resource_not_found`).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A request the rules refuse: a missing, malformed or unacceptable parameter, a taken
    /// identifier, a weak password (400 or 422 with `code`).
    #[error("{message}")]
    Invalid {
        /// 400 or 422.
        status: u16,
        /// Clerk's error code, e.g. `form_param_missing`.
        code: &'static str,
        /// Short message.
        message: String,
        /// Longer explanation.
        long_message: String,
        /// The parameter at fault, when there is one.
        param: Option<String>,
    },
    /// The account is locked after repeated failed password checks (429 `user_locked`).
    #[error("Your account is locked. You will be able to try again in {} minutes.", .retry_after.div_ceil(60))]
    Locked {
        /// Seconds until the lock ends.
        retry_after: u64,
    },
    /// Too many sign-in attempts from one address (429 `too_many_requests`).
    #[error("Too many requests. Please try again later.")]
    TooManyRequests {
        /// Seconds until another attempt is allowed.
        retry_after: u64,
    },
    /// The identifier or password is wrong (422 `form_password_incorrect`); deliberately the
    /// same whether or not the account exists.
    #[error("Password is incorrect. Try again, or use another method.")]
    IncorrectPassword,
    /// The user is banned (403 `user_banned`).
    #[error("This account is banned.")]
    Banned,
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Anything else that should not happen (500).
    #[error("{0}")]
    Internal(String),
}

impl From<crate::claims::ClaimsError> for Error {
    /// A template's claims that do not validate: 422 on the `claims` parameter.
    fn from(e: crate::claims::ClaimsError) -> Error {
        Error::unprocessable("form_param_value_invalid", "claims", e.message, e.long_message)
    }
}

impl Error {
    /// 400 `form_param_missing` for `param`.
    pub fn missing(param: &str) -> Error {
        Error::Invalid {
            status: 400,
            code: "form_param_missing",
            message: format!("{param} is missing"),
            long_message: format!("{param} must be included."),
            param: Some(param.into()),
        }
    }

    /// 400 `form_param_format_invalid` for `param`.
    pub fn format(param: &str, why: impl Into<String>) -> Error {
        let why = why.into();
        Error::Invalid {
            status: 400,
            code: "form_param_format_invalid",
            message: format!("{param} is invalid"),
            long_message: why,
            param: Some(param.into()),
        }
    }

    /// 422 `form_param_value_invalid` for `param`.
    pub fn value(param: &str, message: impl Into<String>, long_message: impl Into<String>) -> Error {
        Error::unprocessable("form_param_value_invalid", param, message, long_message)
    }

    /// 422 with `code` for `param`.
    pub fn unprocessable(
        code: &'static str,
        param: &str,
        message: impl Into<String>,
        long_message: impl Into<String>,
    ) -> Error {
        Error::Invalid {
            status: 422,
            code,
            message: message.into(),
            long_message: long_message.into(),
            param: Some(param.into()),
        }
    }

    /// Turns a unique-constraint violation into `on_conflict`, anything else into `Database`.
    pub(crate) fn unique(e: sqlx::Error, on_conflict: impl FnOnce() -> Error) -> Error {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => on_conflict(),
            _ => Error::Database(e),
        }
    }
}

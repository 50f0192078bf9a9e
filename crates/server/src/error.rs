//! Errors as the analytics API answers them: JSON `{"error": …}` bodies (plain text on the
//! Events API), with the spec's status codes (`analytics-api.md` §1.3, §12.8).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The message.
    pub message: String,
    /// Plain text (`message` + `\n`) instead of JSON — the Events API's style.
    pub plain: bool,
    /// `documentation` key, when the spec attaches one.
    pub documentation: Option<String>,
}

impl ApiError {
    /// A JSON error.
    pub fn json(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), plain: false, documentation: None }
    }

    /// A plain-text error (Events API).
    pub fn plain(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), plain: true, documentation: None }
    }

    /// 403 for a missing or invalid token.
    pub fn forbidden(docs_base: &str) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            message: "Invalid token".into(),
            plain: false,
            documentation: Some(format!("{docs_base}/api-reference/overview#authentication")),
        }
    }

    /// 403 for a refused credential, with the spec's message and documentation link.
    pub fn auth(e: &access::AuthError, docs_base: &str) -> Self {
        ApiError { message: e.to_string(), ..ApiError::forbidden(docs_base) }
    }

    /// Maps an engine error onto the spec's statuses.
    pub fn engine(e: &engine::Error, plain: bool) -> Self {
        let (status, message) = match e {
            engine::Error::NoSuchTable(t) => (StatusCode::NOT_FOUND, format!("Data Source '{t}' does not exist")),
            engine::Error::Invalid(m) => (StatusCode::BAD_REQUEST, m.clone()),
            engine::Error::Query(m) => (StatusCode::BAD_REQUEST, format!("[Error] {m}")),
            engine::Error::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            engine::Error::Timeout(m) => (StatusCode::REQUEST_TIMEOUT, m.clone()),
            engine::Error::Unavailable(m) => {
                tracing::warn!(error = %m, "backend unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, "Service temporarily unavailable, please retry again".into())
            }
            other => {
                tracing::error!(error = %other, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Unexpected error, contact support and include the request id".into(),
                )
            }
        };
        ApiError { status, message, plain, documentation: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.plain {
            let mut r = (self.status, format!("{}\n", self.message)).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            return r;
        }
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(d) = self.documentation {
            body["documentation"] = serde_json::Value::String(d);
        }
        let mut r = (self.status, body.to_string()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    }
}

/// An error of the identity Backend API (`/v1`), in Clerk's shape:
/// `{"errors": [{message, long_message, code, meta}], "meta": {}, "clerk_trace_id": …}`.
#[derive(Debug)]
pub struct ClerkError {
    /// HTTP status.
    pub status: StatusCode,
    /// Clerk's error code.
    pub code: &'static str,
    /// Short message.
    pub message: String,
    /// Longer message.
    pub long_message: String,
    /// `meta.param_name`.
    pub param: Option<String>,
    /// `Retry-After` seconds (429s).
    pub retry_after: Option<u64>,
}

impl ClerkError {
    /// An error with no parameter.
    pub fn new(status: StatusCode, code: &'static str, message: &str, long_message: &str) -> ClerkError {
        ClerkError {
            status,
            code,
            message: message.into(),
            long_message: long_message.into(),
            param: None,
            retry_after: None,
        }
    }

    /// 401 for a missing or unknown secret key.
    pub fn unauthenticated() -> ClerkError {
        ClerkError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_invalid",
            "Invalid authentication",
            "Unable to authenticate the request: send the instance's secret key as a Bearer token.",
        )
    }

    /// 404 for a path the identity API does not serve.
    pub fn no_route() -> ClerkError {
        ClerkError::new(StatusCode::NOT_FOUND, "resource_not_found", "not found", "Resource not found")
    }
}

impl From<identity::Error> for ClerkError {
    fn from(e: identity::Error) -> ClerkError {
        use identity::Error as E;
        match e {
            E::NotFound(what) => ClerkError::new(
                StatusCode::NOT_FOUND,
                "resource_not_found",
                "not found",
                &format!("Resource not found: {what}"),
            ),
            E::Invalid { status, code, message, long_message, param } => ClerkError {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
                code,
                message,
                long_message,
                param,
                retry_after: None,
            },
            E::Locked { retry_after } => ClerkError {
                retry_after: Some(retry_after),
                ..ClerkError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "user_locked",
                    &E::Locked { retry_after }.to_string(),
                    &E::Locked { retry_after }.to_string(),
                )
            },
            E::TooManyRequests { retry_after } => ClerkError {
                retry_after: Some(retry_after),
                ..ClerkError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    "Too many requests",
                    "Too many requests, retry later.",
                )
            },
            E::IncorrectPassword => ClerkError {
                param: Some("password".into()),
                ..ClerkError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "form_password_incorrect",
                    "Password is incorrect",
                    &E::IncorrectPassword.to_string(),
                )
            },
            E::Banned => ClerkError::new(StatusCode::FORBIDDEN, "user_banned", "user banned", &E::Banned.to_string()),
            e @ (E::Database(_) | E::Internal(_)) => {
                tracing::error!(error = %e, "identity request failed");
                ClerkError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_clerk_error",
                    "Oops, an unexpected error occurred",
                    "There was an internal error on our servers.",
                )
            }
        }
    }
}

impl IntoResponse for ClerkError {
    fn into_response(self) -> Response {
        let meta = match &self.param {
            Some(p) => serde_json::json!({"param_name": p}),
            None => serde_json::json!({}),
        };
        let trace: String = (0..16).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        let body = serde_json::json!({
            "errors": [{"message": self.message, "long_message": self.long_message, "code": self.code, "meta": meta}],
            "meta": {},
            "clerk_trace_id": trace
        });
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

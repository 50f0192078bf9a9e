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

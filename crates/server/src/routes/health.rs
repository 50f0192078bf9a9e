//! `GET /v0/health`: the server accepts requests (storage open, WAL replayed).

use axum::http::StatusCode;
use axum::response::Response;

pub(crate) async fn health() -> Response {
    super::json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

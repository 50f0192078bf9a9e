//! The identity Backend API under `/v1` (Clerk-compatible, `identity-api.md`): secret-key
//! authentication with one rate limit per key, bodies as JSON or forms (and none at all, which
//! `@clerk/backend` sends with a JSON content type on body-less POSTs), Clerk's error bodies,
//! and `Content-Type: application/json` exactly.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use identity::ListParams;

use crate::AppState;
use crate::error::ClerkError;

type Answer = Result<Response, ClerkError>;

fn ok(v: Value) -> Answer {
    Ok(axum::Json(v).into_response())
}

fn page((data, total): (Vec<Value>, i64)) -> Answer {
    ok(json!({"data": data, "total_count": total}))
}

/// A list that is a bare array unless `paginated=true` (sessions, JWT templates).
fn maybe_paged(p: &ListParams, (data, total): (Vec<Value>, i64)) -> Answer {
    if p.flag("paginated") { page((data, total)) } else { ok(Value::Array(data)) }
}

fn params(q: Vec<(String, String)>) -> ListParams {
    ListParams::new(q)
}

/// The body as JSON: empty → null; forms → an object of strings; anything else must be JSON.
fn body(headers: &HeaderMap, bytes: &Bytes) -> Result<Value, ClerkError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes).map_err(|_| bad_body())?;
        return Ok(Value::Object(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect()));
    }
    serde_json::from_slice(bytes).map_err(|_| bad_body())
}

fn bad_body() -> ClerkError {
    ClerkError::new(
        StatusCode::BAD_REQUEST,
        "malformed_request_body",
        "malformed request body",
        "The request body must be JSON (or a URL-encoded form).",
    )
}

/// The identity routes (authenticated with the secret key), the public JWKS, and Clerk's 404
/// for any other identity path.
pub(crate) fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let api = Router::new()
        .route("/v1/users", get(list_users).post(create_user))
        .route("/v1/users/count", get(count_users))
        .route("/v1/users/{id}", get(get_user).patch(update_user).delete(delete_user))
        .route("/v1/users/{id}/metadata", axum::routing::patch(merge_user_metadata).put(replace_user_metadata))
        .route("/v1/users/{id}/verify_password", post(verify_password))
        .route("/v1/users/{id}/{action}", post(user_action))
        .route("/v1/users/{id}/organization_memberships", get(user_memberships))
        .route("/v1/users/{id}/organization_invitations", get(user_invitations))
        .route("/v1/sessions", get(list_sessions).post(create_session))
        .route("/v1/sessions/{id}", get(get_session))
        .route("/v1/sessions/{id}/revoke", post(revoke_session))
        .route("/v1/sessions/{id}/refresh", post(refresh_session))
        .route("/v1/sessions/{id}/tokens", post(session_token))
        .route("/v1/sessions/{id}/tokens/{template}", post(template_token))
        .route("/v1/organizations", get(list_orgs).post(create_org))
        .route("/v1/organizations/{id}", get(get_org).patch(update_org).delete(delete_org))
        .route("/v1/organizations/{id}/metadata", axum::routing::patch(merge_org_metadata).put(replace_org_metadata))
        .route("/v1/organizations/{id}/memberships", get(list_memberships).post(add_membership))
        .route(
            "/v1/organizations/{id}/memberships/{user}",
            axum::routing::patch(update_membership).delete(remove_membership),
        )
        .route("/v1/organizations/{id}/memberships/{user}/metadata", axum::routing::patch(membership_metadata))
        .route("/v1/organization_memberships", get(all_memberships))
        .route("/v1/organizations/{id}/invitations", get(list_invitations).post(create_invitation))
        .route("/v1/organizations/{id}/invitations/bulk", post(bulk_invitations))
        .route("/v1/organizations/{id}/invitations/pending", get(pending_invitations))
        .route("/v1/organizations/{id}/invitations/{inv}", get(get_invitation))
        .route("/v1/organizations/{id}/invitations/{inv}/revoke", post(revoke_invitation))
        .route("/v1/organization_invitations", get(all_invitations))
        .route("/v1/organization_roles", get(list_roles).post(create_role))
        .route("/v1/organization_roles/{id}", get(get_role).patch(update_role).delete(delete_role))
        .route(
            "/v1/organization_roles/{id}/permissions/{perm}",
            post(add_role_permission).delete(remove_role_permission),
        )
        .route("/v1/organization_permissions", get(list_permissions).post(create_permission))
        .route(
            "/v1/organization_permissions/{id}",
            get(get_permission).patch(update_permission).delete(delete_permission),
        )
        .route("/v1/role_sets", get(role_sets))
        .route("/v1/role_sets/{key}", get(role_set))
        .route("/v1/jwt_templates", get(list_templates).post(create_template))
        .route("/v1/jwt_templates/{id}", get(get_template).patch(update_template).delete(delete_template))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/v1/jwks", get(jwks).route_layer(middleware::from_fn_with_state(state, authenticate_unlimited)))
        .route("/.well-known/jwks.json", get(public_jwks))
        .route("/img/{kind}/{file}", get(default_image))
        .route("/v1/{*rest}", axum::routing::any(|| async { ClerkError::no_route() }))
        .merge(api)
}

fn secret_key_ok(state: &AppState, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .is_some_and(|k| state.identity.check_secret_key(k.trim()))
}

/// Secret key, then the per-key rate limit.
async fn authenticate(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if !secret_key_ok(&state, req.headers()) {
        return ClerkError::unauthenticated().into_response();
    }
    let n = state.config.identity_requests_per_10s;
    if n > 0
        && let access::limits::Decision { allowed: false, reset_secs, .. } =
            state.limits.check(&format!("bapi/{}", state.config.workspace_id), (n / 10).max(1), n).await
    {
        return ClerkError {
            retry_after: Some(reset_secs.max(1)),
            ..ClerkError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests",
                "Too many requests, retry later.",
            )
        }
        .into_response();
    }
    next.run(req).await
}

/// Secret key only: the JWKS is not rate-limited.
async fn authenticate_unlimited(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if !secret_key_ok(&state, req.headers()) {
        return ClerkError::unauthenticated().into_response();
    }
    next.run(req).await
}

async fn jwks(State(s): State<Arc<AppState>>) -> Answer {
    ok(s.identity.jwks())
}

async fn public_jwks(State(s): State<Arc<AppState>>) -> Response {
    let mut r = axum::Json(s.identity.jwks()).into_response();
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, header::HeaderValue::from_static("*"));
    r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("public, max-age=300"));
    r
}

/// The image of a user (`avatar`) or organization (`org`) without one of its own: a colour
/// derived from the id and a generic shape, so it reveals nothing about the account.
async fn default_image(Path((kind, file)): Path<(String, String)>) -> Response {
    let Some(id) = file.strip_suffix(".svg").filter(|_| kind == "avatar" || kind == "org") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let hue = id.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 360;
    let shape = if kind == "avatar" {
        r##"<circle cx="32" cy="25" r="11" fill="#fff" fill-opacity=".9"/><path d="M12 56c2-11 10-17 20-17s18 6 20 17z" fill="#fff" fill-opacity=".9"/>"##
    } else {
        r##"<rect x="18" y="16" width="28" height="34" rx="2" fill="#fff" fill-opacity=".9"/><path d="M24 22h5v5h-5zm11 0h5v5h-5zM24 32h5v5h-5zm11 0h5v5h-5zM29 42h6v8h-6z" fill="hsl(0 0% 40%)"/>"##
    };
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"><rect width="64" height="64" rx="32" fill="hsl({hue} 55% 45%)"/>{shape}</svg>"##
    );
    ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")], svg).into_response()
}

type S = State<Arc<AppState>>;
type Q = Query<Vec<(String, String)>>;

async fn list_users(State(s): S, Query(q): Q) -> Answer {
    ok(Value::Array(s.identity.list_users(&params(q)).await?))
}
async fn count_users(State(s): S, Query(q): Q) -> Answer {
    ok(s.identity.count_users(&params(q)).await?)
}
async fn create_user(State(s): S, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.create_user(&body(&h, &b)?).await?)
}
async fn get_user(State(s): S, Path(id): Path<String>) -> Answer {
    ok(s.identity.get_user(&id).await?)
}
async fn update_user(State(s): S, Path(id): Path<String>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.update_user(&id, &body(&h, &b)?).await?)
}
async fn delete_user(State(s): S, Path(id): Path<String>) -> Answer {
    ok(s.identity.delete_user(&id).await?)
}
async fn merge_user_metadata(State(s): S, Path(id): Path<String>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.user_metadata(&id, &body(&h, &b)?, false).await?)
}
async fn replace_user_metadata(State(s): S, Path(id): Path<String>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.user_metadata(&id, &body(&h, &b)?, true).await?)
}
async fn verify_password(State(s): S, Path(id): Path<String>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.verify_password(&id, &body(&h, &b)?).await?)
}
async fn user_action(State(s): S, Path((id, action)): Path<(String, String)>) -> Answer {
    let v = match action.as_str() {
        "ban" => s.identity.set_banned(&id, true).await?,
        "unban" => s.identity.set_banned(&id, false).await?,
        "lock" => s.identity.set_locked(&id, true).await?,
        "unlock" => s.identity.set_locked(&id, false).await?,
        _ => return Err(ClerkError::no_route()),
    };
    ok(v)
}
async fn user_memberships(State(s): S, Path(id): Path<String>, Query(q): Q) -> Answer {
    page(s.identity.user_memberships(&id, &params(q)).await?)
}
async fn user_invitations(State(s): S, Path(id): Path<String>, Query(q): Q) -> Answer {
    page(s.identity.user_invitations(&id, &params(q)).await?)
}

async fn list_sessions(State(s): S, Query(q): Q) -> Answer {
    let p = params(q);
    maybe_paged(&p, s.identity.list_sessions(&p).await?)
}
async fn create_session(State(s): S, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.create_session(&body(&h, &b)?).await?)
}
async fn get_session(State(s): S, Path(id): Path<String>) -> Answer {
    ok(s.identity.get_session(&id).await?)
}
async fn revoke_session(State(s): S, Path(id): Path<String>) -> Answer {
    ok(s.identity.revoke_session(&id).await?)
}
/// `POST /v1/sessions/{id}/refresh`: a fresh session token for a session that is still active.
async fn refresh_session(State(s): S, Path(id): Path<String>) -> Answer {
    ok(s.identity.mint(&id, None, &Value::Null).await?)
}
async fn session_token(State(s): S, Path(id): Path<String>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.mint(&id, None, &body(&h, &b)?).await?)
}
async fn template_token(State(s): S, Path((id, t)): Path<(String, String)>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.mint(&id, Some(&t), &body(&h, &b)?).await?)
}

async fn list_orgs(State(s): S, Query(q): Q) -> Answer {
    page(s.identity.list_orgs(&params(q)).await?)
}
async fn create_org(State(s): S, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.create_org(&body(&h, &b)?).await?)
}
async fn get_org(State(s): S, Path(id): Path<String>) -> Answer {
    ok(s.identity.get_org(&id).await?)
}
async fn update_org(State(s): S, Path(id): Path<String>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.update_org(&id, &body(&h, &b)?).await?)
}
async fn delete_org(State(s): S, Path(id): Path<String>) -> Answer {
    ok(s.identity.delete_org(&id).await?)
}
async fn merge_org_metadata(State(s): S, Path(id): Path<String>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.org_metadata(&id, &body(&h, &b)?, false).await?)
}
async fn replace_org_metadata(State(s): S, Path(id): Path<String>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.org_metadata(&id, &body(&h, &b)?, true).await?)
}
async fn list_memberships(State(s): S, Path(id): Path<String>, Query(q): Q) -> Answer {
    page(s.identity.list_memberships(&id, &params(q)).await?)
}
async fn add_membership(State(s): S, Path(id): Path<String>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.add_membership(&id, &body(&h, &b)?).await?)
}
async fn update_membership(State(s): S, Path((id, user)): Path<(String, String)>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.update_membership(&id, &user, &body(&h, &b)?).await?)
}
async fn remove_membership(State(s): S, Path((id, user)): Path<(String, String)>) -> Answer {
    ok(s.identity.remove_membership(&id, &user).await?)
}
async fn membership_metadata(State(s): S, Path((id, user)): Path<(String, String)>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.membership_metadata(&id, &user, &body(&h, &b)?).await?)
}
async fn all_memberships(State(s): S, Query(q): Q) -> Answer {
    page(s.identity.list_all_memberships(&params(q)).await?)
}
async fn list_invitations(State(s): S, Path(id): Path<String>, Query(q): Q) -> Answer {
    page(s.identity.list_invitations(&id, &params(q)).await?)
}
async fn create_invitation(State(s): S, Path(id): Path<String>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.create_invitation(&id, &body(&h, &b)?).await?)
}
async fn bulk_invitations(State(s): S, Path(id): Path<String>, h: HeaderMap, b: Bytes) -> Answer {
    page(s.identity.create_invitations(&id, &body(&h, &b)?).await?)
}
async fn pending_invitations(State(s): S, Path(id): Path<String>, Query(q): Q) -> Answer {
    page(s.identity.pending_invitations(&id, &params(q)).await?)
}
async fn get_invitation(State(s): S, Path((id, inv)): Path<(String, String)>) -> Answer {
    ok(s.identity.get_invitation(&id, &inv).await?)
}
async fn revoke_invitation(State(s): S, Path((id, inv)): Path<(String, String)>) -> Answer {
    ok(s.identity.revoke_invitation(&id, &inv).await?)
}
async fn all_invitations(State(s): S, Query(q): Q) -> Answer {
    page(s.identity.list_all_invitations(&params(q)).await?)
}

async fn list_roles(State(s): S, Query(q): Q) -> Answer {
    page(s.identity.list_roles(&params(q)).await?)
}
async fn create_role(State(s): S, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.create_role(&body(&h, &b)?).await?)
}
async fn get_role(State(s): S, Path(id): Path<String>) -> Answer {
    ok(s.identity.get_role(&id).await?)
}
async fn update_role(State(s): S, Path(id): Path<String>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.update_role(&id, &body(&h, &b)?).await?)
}
async fn delete_role(State(s): S, Path(id): Path<String>) -> Answer {
    ok(s.identity.delete_role(&id).await?)
}
async fn add_role_permission(State(s): S, Path((id, perm)): Path<(String, String)>) -> Answer {
    ok(s.identity.add_role_permission(&id, &perm).await?)
}
async fn remove_role_permission(State(s): S, Path((id, perm)): Path<(String, String)>) -> Answer {
    ok(s.identity.remove_role_permission(&id, &perm).await?)
}
async fn list_permissions(State(s): S, Query(q): Q) -> Answer {
    page(s.identity.list_permissions(&params(q)).await?)
}
async fn create_permission(State(s): S, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.create_permission(&body(&h, &b)?).await?)
}
async fn get_permission(State(s): S, Path(id): Path<String>) -> Answer {
    ok(s.identity.get_permission(&id).await?)
}
async fn update_permission(State(s): S, Path(id): Path<String>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.update_permission(&id, &body(&h, &b)?).await?)
}
async fn delete_permission(State(s): S, Path(id): Path<String>) -> Answer {
    ok(s.identity.delete_permission(&id).await?)
}
async fn role_sets(State(s): S) -> Answer {
    ok(s.identity.role_sets().await?)
}
async fn role_set(State(s): S, Path(key): Path<String>) -> Answer {
    ok(s.identity.role_set_by_key(&key).await?)
}

async fn list_templates(State(s): S, Query(q): Q) -> Answer {
    let p = params(q);
    maybe_paged(&p, s.identity.list_templates(&p).await?)
}
async fn create_template(State(s): S, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.create_template(&body(&h, &b)?).await?)
}
async fn get_template(State(s): S, Path(id): Path<String>) -> Answer {
    ok(s.identity.get_template(&id).await?)
}
async fn update_template(State(s): S, Path(id): Path<String>, h: HeaderMap, b: Bytes) -> Answer {
    ok(s.identity.update_template(&id, &body(&h, &b)?).await?)
}
async fn delete_template(State(s): S, Path(id): Path<String>) -> Answer {
    ok(s.identity.delete_template(&id).await?)
}

//! Workspace admin pages: the JWT templates (edit with validation, preview the rendered claims
//! for a chosen user and organization) and endpoint usage from `tinybird.pipe_stats_rt`. Queried
//! in process with an admin grant: the admin token never reaches a page.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::{Map, Value, json};

use super::session::{Viewer, csrf_ok, csrf_token, viewer};
use super::{page, sign_in_redirect};
use crate::AppState;

/// Whether the viewer is a workspace admin: a verified address listed in `--workspace-admins`.
pub(crate) fn is_admin(state: &AppState, v: &Viewer) -> bool {
    v.user["email_addresses"].as_array().is_some_and(|emails| {
        emails.iter().any(|e| {
            e["verification"]["status"] == "verified"
                && e["email_address"]
                    .as_str()
                    .is_some_and(|a| state.config.workspace_admins.iter().any(|w| w.eq_ignore_ascii_case(a)))
        })
    })
}

async fn admin(state: &AppState, headers: &HeaderMap, path: &str) -> Result<Viewer, Response> {
    let Some(v) = viewer(state, headers).await else { return Err(sign_in_redirect(state, path)) };
    if !is_admin(state, &v) {
        return Err((StatusCode::FORBIDDEN, "Only workspace admins see this page.\n").into_response());
    }
    Ok(v)
}

/// `/admin/templates`: every template.
pub(crate) async fn templates(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let v = match admin(&s, &headers, "/admin/templates").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let list = s.identity.list_templates(&identity::ListParams::default()).await.map(|x| x.0).unwrap_or_default();
    let body = html! {
        h1 { "JWT templates" }
        div.card {
            @if list.is_empty() {
                p.muted { "No templates yet. Create the " code { "tinybird" } " template with the Backend API (docs/identity.md)." }
            } @else {
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Lifetime" } th scope="col" { "Signed with" } th {} } }
                    tbody {
                        @for t in &list {
                            tr {
                                td { code { (t["name"].as_str().unwrap_or_default()) } }
                                td { (t["lifetime"]) " s" }
                                td { (t["signing_algorithm"].as_str().unwrap_or_default()) @if t["custom_signing_key"] == true { " (custom key)" } @else { " (instance key)" } }
                                td { a href={ "/admin/templates/" (t["id"].as_str().unwrap_or_default()) } { "Edit" } }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&s, &v, "JWT templates", "admin", None, None, body).await
}

fn template_form(
    csrf: &str,
    t: &Value,
    claims_text: &str,
    preview: Option<&Result<Value, String>>,
    user: &str,
    org: &str,
) -> Markup {
    let id = t["id"].as_str().unwrap_or_default();
    html! {
        h1 { "Template " code { (t["name"].as_str().unwrap_or_default()) } }
        div.grid {
            form.card.stack.half method="post" action={ "/admin/templates/" (id) } {
                input type="hidden" name="csrf" value=(csrf);
                label { "Name" input type="text" name="name" required value=(t["name"].as_str().unwrap_or_default()); }
                label { "Claims (JSON with shortcodes)" textarea name="claims" spellcheck="false" required { (claims_text) } }
                div.row {
                    label { "Lifetime (s)" input type="number" name="lifetime" min="30" max="315360000" value=(t["lifetime"]); }
                    label { "Clock skew (s)" input type="number" name="allowed_clock_skew" min="0" max="300" value=(t["allowed_clock_skew"]); }
                }
                p.muted {
                    "Signed with " (t["signing_algorithm"].as_str().unwrap_or_default())
                    @if t["custom_signing_key"] == true { " and its own key (kept as it is; the key is never shown)." } @else { " and the instance key." }
                }
                div.row {
                    button type="submit" name="action" value="save" { "Save" }
                    button.secondary type="submit" name="action" value="preview" { "Preview" }
                }
                h2 { "Preview for" }
                div.row {
                    label { "User (email)" input type="email" name="preview_user" value=(user); }
                    label { "Organization (slug)" input type="text" name="preview_org" value=(org); }
                }
            }
            section.card.half aria-labelledby="preview-h" {
                h2 #preview-h { "Rendered claims" }
                @match preview {
                    Some(Ok(v)) => { pre.code { (serde_json::to_string_pretty(v).unwrap_or_default()) } p.muted { "Default claims (exp, iat, iss, jti, nbf, sub) are added when a token is minted." } }
                    Some(Err(e)) => { p.error role="alert" { (e) } }
                    None => { p.muted { "Choose a user and an organization, then Preview." } }
                }
            }
        }
    }
}

/// `/admin/templates/{id}`: the edit form.
pub(crate) async fn template(State(s): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let v = match admin(&s, &headers, "/admin/templates").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Ok(t) = s.identity.get_template(&id).await else { return StatusCode::NOT_FOUND.into_response() };
    let claims = serde_json::to_string_pretty(&t["claims"]).unwrap_or_default();
    // The preview starts with the admin and their active organization.
    let org = match &v.org_id {
        Some(o) => {
            s.identity.get_org(o).await.ok().and_then(|o| o["slug"].as_str().map(String::from)).unwrap_or_default()
        }
        None => String::new(),
    };
    let body = template_form(&csrf_token(&s, &v.sid), &t, &claims, None, &v.email(), &org);
    page(&s, &v, "JWT template", "admin", None, None, body).await
}

/// `POST /admin/templates/{id}`: save (validated as the Backend API does) or preview.
pub(crate) async fn save_template(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let v = match admin(&s, &headers, "/admin/templates").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !csrf_ok(&s, &headers, &v.sid, f.get("csrf").map(String::as_str)) {
        return super::forbidden();
    }
    let Ok(current) = s.identity.get_template(&id).await else { return StatusCode::NOT_FOUND.into_response() };
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let claims_text = get("claims");
    let (user, org) = (get("preview_user"), get("preview_org"));
    let parsed: Result<Value, String> =
        serde_json::from_str(&claims_text).map_err(|e| format!("The claims are not valid JSON: {e}"));
    let (mut flash, mut status, mut preview) = (None, StatusCode::OK, None);
    if get("action") == "preview" {
        preview = Some(match &parsed {
            Ok(claims) => preview_for(&s, claims, &user, &org).await,
            Err(e) => Err(e.clone()),
        });
    } else {
        let mut body = json!({
            "name": get("name"),
            "claims": parsed.clone().unwrap_or(Value::Null),
            "lifetime": get("lifetime").parse::<i64>().ok(),
            "allowed_clock_skew": get("allowed_clock_skew").parse::<i64>().ok(),
            "custom_signing_key": current["custom_signing_key"],
            "signing_algorithm": current["signing_algorithm"],
        });
        if let Err(e) = &parsed {
            flash = Some(e.clone());
            status = StatusCode::UNPROCESSABLE_ENTITY;
        } else {
            if current["custom_signing_key"] != true {
                body.as_object_mut().map(|m: &mut Map<String, Value>| m.remove("signing_algorithm"));
            }
            match s.identity.update_template(&id, &body).await {
                Ok(_) => return super::redirect(&s, &format!("/admin/templates/{id}?saved=1"), &v.set_cookies),
                Err(e) => {
                    flash = Some(match e {
                        identity::Error::Invalid { message, long_message, .. } => format!("{message}: {long_message}"),
                        e => e.to_string(),
                    });
                    status = StatusCode::UNPROCESSABLE_ENTITY;
                }
            }
        }
    }
    let mut shown = current.clone();
    shown["name"] = json!(get("name"));
    let body = template_form(&csrf_token(&s, &v.sid), &shown, &claims_text, preview.as_ref(), &user, &org);
    let mut r = page(&s, &v, "JWT template", "admin", None, flash.as_deref().map(Err), body).await;
    *r.status_mut() = status;
    r
}

/// The claims rendered for the user with `email` in the organization `slug`.
async fn preview_for(s: &AppState, claims: &Value, email: &str, slug: &str) -> Result<Value, String> {
    let params = identity::ListParams::new(vec![("email_address".into(), email.to_string())]);
    let users = s.identity.list_users(&params).await.map_err(|e| e.to_string())?;
    let user =
        users.first().and_then(|u| u["id"].as_str()).ok_or_else(|| format!("No user has the address {email}."))?;
    let org = if slug.trim().is_empty() {
        None
    } else {
        Some(s.identity.get_org(slug.trim()).await.map_err(|_| format!("No organization has the slug {slug}."))?)
    };
    let org_id = org.as_ref().and_then(|o| o["id"].as_str());
    s.identity.preview_claims(claims, user, org_id).await.map_err(|e| match e {
        identity::Error::Invalid { message, long_message, .. } => format!("{message}: {long_message}"),
        e => e.to_string(),
    })
}

/// `/admin/usage`: endpoint requests of the last hour from `tinybird.pipe_stats_rt`, by pipe,
/// token name and tenant.
pub(crate) async fn usage(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let v = match admin(&s, &headers, "/admin/usage").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let sql = "SELECT pipe_name, token_name, tenant, count() AS requests, countIf(status_code >= 400) AS errors, \
               quantile(0.5)(duration) * 1000 AS p50_ms, quantile(0.99)(duration) * 1000 AS p99_ms \
               FROM tinybird.pipe_stats_rt WHERE start_datetime >= now() - INTERVAL 1 HOUR \
               GROUP BY pipe_name, token_name, tenant ORDER BY requests DESC, pipe_name LIMIT 200";
    let rows = match s.workspace.sql(sql).await {
        Ok(out) => Ok(rows_of(&out)),
        Err(e) => Err(e.to_string()),
    };
    let body = html! {
        h1 { "Endpoint usage, last hour" }
        div.card {
            @match &rows {
                Err(e) => { p.error role="alert" { (e) } }
                Ok(rows) if rows.is_empty() => { p.muted { "No endpoint requests in the last hour." } }
                Ok(rows) => {
                    table {
                        thead { tr {
                            th scope="col" { "Pipe" } th scope="col" { "Token name" } th scope="col" { "Tenant" }
                            th scope="col" { "Requests" } th scope="col" { "Errors" } th scope="col" { "p50 ms" } th scope="col" { "p99 ms" }
                        } }
                        tbody {
                            @for r in rows {
                                tr {
                                    td { code { (text(&r["pipe_name"])) } }
                                    td { (text(&r["token_name"])) }
                                    td { (text(&r["tenant"])) }
                                    td { (text(&r["requests"])) }
                                    td { (text(&r["errors"])) }
                                    td { (ms(&r["p50_ms"])) }
                                    td { (ms(&r["p99_ms"])) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&s, &v, "Usage", "admin", None, None, body).await
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

fn ms(v: &Value) -> String {
    v.as_f64().map(|x| format!("{x:.2}")).unwrap_or_else(|| text(v))
}

/// Result rows as JSON objects.
fn rows_of(out: &engine::workspace::QueryOutput) -> Vec<Value> {
    let mut rows = Vec::new();
    for batch in &out.batches {
        for i in 0..batch.num_rows() {
            let row: Map<String, Value> = out
                .schema
                .fields()
                .iter()
                .enumerate()
                .map(|(j, f)| (f.name().clone(), crate::format::json_value(batch.column(j), i)))
                .collect();
            rows.push(Value::Object(row));
        }
    }
    rows
}

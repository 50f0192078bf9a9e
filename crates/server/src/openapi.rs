//! `GET /v0/pipes/openapi.json`: an OpenAPI 3.0.3 document of the published endpoints (spec
//! `analytics-api.md` §11.3), with parameters from template introspection and result columns
//! from planning each endpoint with no parameters.

use arrow_schema::{DataType, SchemaRef};
use serde_json::{Map, Value as Json, json};
use template::ParamInfo;

use crate::AppState;

/// The JSON schema of a template parameter type.
fn param_schema(p: &ParamInfo) -> Json {
    let ty = p.ty.as_str();
    let mut schema = match ty {
        t if t.starts_with("Array(") => {
            let inner = t.trim_start_matches("Array(").trim_end_matches(')');
            let inner = ParamInfo { ty: inner.split(',').next().unwrap_or("String").trim().to_string(), ..p.clone() };
            let mut items = param_schema(&inner);
            if let Some(o) = items.as_object_mut() {
                o.remove("default");
                o.remove("enum");
            }
            json!({"type": "array", "items": items})
        }
        "Int8" | "Int16" | "Int32" | "UInt8" | "UInt16" | "Int" | "Integer" => {
            json!({"type": "integer", "format": "int32"})
        }
        "UInt32" | "Int64" | "UInt64" => json!({"type": "integer", "format": "int64"}),
        "Int128" | "UInt128" | "Int256" | "UInt256" => json!({"type": "string", "pattern": "^-?[0-9]+$"}),
        "Float32" => json!({"type": "number", "format": "float"}),
        "Float64" => json!({"type": "number", "format": "double"}),
        "Boolean" => json!({"type": "boolean"}),
        "Date" => json!({"type": "string", "format": "date"}),
        "DateTime" | "DateTime64" => json!({"type": "string", "format": "date-time"}),
        "JSON" => json!({"type": "string", "format": "json"}),
        _ => json!({"type": "string"}),
    };
    if let Some(o) = schema.as_object_mut() {
        if !p.default.is_null() && !ty.starts_with("Array(") {
            o.insert("default".into(), p.default.clone());
        }
        if let Some(Json::Array(values)) = &p.enum_values {
            o.insert("enum".into(), Json::Array(values.clone()));
        }
    }
    schema
}

fn text(v: &Option<Json>) -> Option<String> {
    match v {
        Some(Json::String(s)) => Some(s.clone()),
        Some(Json::Null) | None => None,
        Some(other) => Some(other.to_string()),
    }
}

/// A parameter object.
fn parameter(p: &ParamInfo) -> Json {
    let required = matches!(p.required, Some(Json::Bool(true)));
    let mut o = Map::new();
    o.insert("name".into(), json!(p.name));
    o.insert("in".into(), json!("query"));
    o.insert("required".into(), json!(required));
    if let Some(d) = text(&p.description) {
        o.insert("description".into(), json!(d));
    }
    if let Some(e) = &p.example
        && !e.is_null()
    {
        o.insert("example".into(), e.clone());
    }
    if p.ty.starts_with("Array(") {
        o.insert("style".into(), json!("form"));
        o.insert("explode".into(), json!(false));
    }
    o.insert("schema".into(), param_schema(p));
    Json::Object(o)
}

/// The JSON type of a result column.
fn column_schema(t: &DataType) -> Json {
    match t {
        DataType::Boolean => json!({"type": "boolean"}),
        t if t.is_integer() => json!({"type": "integer"}),
        t if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) => {
            json!({"type": "number"})
        }
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            json!({"type": "array", "items": column_schema(f.data_type())})
        }
        DataType::Map(..) | DataType::Struct(_) => json!({"type": "object"}),
        _ => json!({"type": "string"}),
    }
}

fn result_schema(columns: Option<&SchemaRef>) -> Json {
    let item = match columns {
        Some(s) => {
            let props: Map<String, Json> =
                s.fields().iter().map(|f| (f.name().clone(), column_schema(f.data_type()))).collect();
            json!({"type": "object", "properties": props})
        }
        None => json!({"type": "object"}),
    };
    json!({
        "type": "object",
        "properties": {
            "meta": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "type": {"type": "string"}}}},
            "data": {"type": "array", "items": item},
            "rows": {"type": "integer"},
            "rows_before_limit_at_least": {"type": "integer"},
            "statistics": {"type": "object", "properties": {
                "elapsed": {"type": "number"}, "rows_read": {"type": "integer"}, "bytes_read": {"type": "integer"}
            }}
        }
    })
}

/// The document.
/// Only the pipes `grant` may read are listed (spec §5.4).
pub async fn document(state: &AppState, grant: &access::Grant) -> Json {
    let error_response = |what: &str| json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let errors = json!({
        "400": error_response("Bad request (parameters, template or SQL)"),
        "403": error_response("Token missing, invalid or without access"),
        "404": error_response("Pipe or endpoint not found"),
        "429": error_response("Rate limited"),
    });
    let mut paths = Map::new();
    for stored in state.workspace.pipes().all() {
        let pipe = &stored.pipe;
        if pipe.endpoint().is_none() || grant.pipe_read(&pipe.name).is_none() {
            continue;
        }
        let mut params: Vec<ParamInfo> = Vec::new();
        for n in &pipe.nodes {
            for p in n.template.as_ref().map(|t| t.parameters().to_vec()).unwrap_or_default() {
                if !params.iter().any(|q| q.name == p.name) {
                    params.push(p);
                }
            }
        }
        let columns = state.workspace.endpoint_schema(&pipe.name).await;
        let summary = pipe.description.clone().unwrap_or_else(|| format!("The {} endpoint", pipe.name));
        let parameters: Vec<Json> = params.iter().map(parameter).collect();
        let body_props: Map<String, Json> = params.iter().map(|p| (p.name.clone(), param_schema(p))).collect();
        let ok = |media: &str, schema: Json| {
            let mut r = errors.clone();
            r["200"] = json!({"description": "The endpoint's result", "content": {media: {"schema": schema}}});
            r
        };
        let json_ok = ok("application/json", result_schema(columns.as_ref()));
        paths.insert(
            format!("/pipes/{}.json", pipe.name),
            json!({
                "get": {"summary": summary, "operationId": format!("{}_json_get", pipe.name), "parameters": parameters, "responses": json_ok},
                "post": {
                    "summary": summary,
                    "operationId": format!("{}_json_post", pipe.name),
                    "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": body_props}}}},
                    "responses": json_ok,
                },
            }),
        );
        for (ext, media) in [("csv", "text/csv"), ("ndjson", "application/x-ndjson")] {
            paths.insert(
                format!("/pipes/{}.{ext}", pipe.name),
                json!({"get": {
                    "summary": summary,
                    "operationId": format!("{}_{ext}_get", pipe.name),
                    "parameters": parameters,
                    "responses": ok(media, json!({"type": "string"})),
                }}),
            );
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": format!("Aviary workspace {}", state.config.workspace_id), "version": env!("CARGO_PKG_VERSION")},
        "servers": [{"url": format!("http://{}/v0", state.config.listen)}],
        "paths": paths,
        "components": {
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}, "documentation": {"type": "string"}}}},
            "securitySchemes": {
                "TokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
                "BearerAuth": {"type": "http", "scheme": "bearer"}
            }
        },
        "security": [{"TokenQuery": []}, {"BearerAuth": []}]
    })
}

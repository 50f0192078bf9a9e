//! Who is reading (design decision 2; spec `analytics-api.md` §4.3, §4.4, §6): the row-level
//! part of a grant, enforced by the engine on every read of a data source — directly, through
//! node chains, through other pipes, in joins and subqueries. Each scan of a governed data
//! source is replaced, before planning, by a filtered view of it, so pruning still applies.
//!
//! A data source with `TENANT_KEY col` is read by a non-admin grant only with a value for
//! `col` (a fixed param of the pipe being read) or a row filter; without one the query is
//! refused — never answered with every tenant's rows.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{SessionContext, ident, lit};
use serde_json::Value as Json;

use crate::error::{Error, Result};

/// Template parameters a token forces on a pipe (a JWT scope's `fixed_params`).
pub type FixedParams = serde_json::Map<String, Json>;

/// What one request may read.
#[derive(Debug, Clone, Default)]
pub enum ReadPolicy {
    /// Every table, every row (admin grants).
    #[default]
    All,
    /// Only what the grant names.
    Scoped(Scoped),
}

/// The readable resources of a non-admin grant.
#[derive(Debug, Clone, Default)]
pub struct Scoped {
    /// Data sources readable directly (SQL API, `q=`), each with its row filters, combined with
    /// `OR` (an empty list reads every row). Pipes read theirs whatever this says; the filters
    /// apply there too.
    pub datasources: HashMap<String, Vec<String>>,
    /// Pipes readable (their endpoint, or as tables), each with the params the token forces.
    pub pipes: HashMap<String, FixedParams>,
}

/// The message of a read refused for lack of a tenant value.
pub fn missing_tenant(column: &str, datasource: &str) -> String {
    format!(
        "The token you have provided doesn't have a value for the tenant key '{column}' of Data Source '{datasource}'"
    )
}

/// What the grant may see while one query (or one pipe inside it) is planned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading<'a> {
    pub policy: &'a ReadPolicy,
    /// The fixed params of the pipe being read, whose data sources are readable.
    pub pipe: Option<&'a FixedParams>,
}

impl<'a> Reading<'a> {
    /// Unrestricted.
    pub fn all() -> Reading<'static> {
        Reading { policy: &ReadPolicy::All, pipe: None }
    }
}

/// How a table is read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rule {
    /// As stored.
    All,
    /// Through a filter.
    Rows {
        /// SQL boolean expressions, combined with `OR`; none reads every row.
        filters: Vec<String>,
        /// The tenant column and the value(s) it must have.
        tenant: Option<(String, Json)>,
        /// The table is a quarantine, whose columns hold text.
        quarantine: bool,
    },
}

impl Reading<'_> {
    /// How `table` is read, `None` when this grant cannot see it (it is then not registered and
    /// the query fails as for a table that does not exist).
    pub fn rule(&self, ws: &crate::workspace::Workspace, table: &str) -> Result<Option<Rule>> {
        let ReadPolicy::Scoped(scoped) = self.policy else { return Ok(Some(Rule::All)) };
        // Service tables (`tinybird.*`) are for admins.
        if table.contains('.') {
            return Ok(None);
        }
        let (base, quarantine) = match table.strip_suffix(crate::workspace::QUARANTINE) {
            Some(b) if ws.datasource(table).is_none() && ws.datasource(b).is_some() => (b, true),
            _ => (table, false),
        };
        let Some(ds) = ws.datasource(base) else { return Ok(None) };
        let direct = scoped.datasources.get(base);
        if self.pipe.is_none() && direct.is_none() {
            return Ok(None);
        }
        let filters = direct.cloned().unwrap_or_default();
        let tenant = match &ds.tenant_key {
            None => None,
            Some(col) => match self.pipe.and_then(|p| p.get(col)) {
                Some(v) => Some((col.clone(), v.clone())),
                None if !filters.is_empty() => None,
                None => return Err(Error::Forbidden(missing_tenant(col, base))),
            },
        };
        Ok(Some(Rule::Rows { filters, tenant, quarantine }))
    }
}

/// Registers `provider` as `name` in `ctx`, read through `rule`: a view of it with the row
/// filters and the tenant condition. Returns the tenant value(s) applied, as text.
pub(crate) async fn register(
    ctx: &SessionContext,
    name: &str,
    provider: Arc<dyn datafusion::catalog::TableProvider>,
    rule: &Rule,
) -> Result<Option<String>> {
    let query = |e: datafusion::error::DataFusionError| Error::Query(e.to_string());
    ctx.register_table(name, provider.clone()).map_err(query)?;
    let Rule::Rows { filters, tenant, quarantine } = rule else { return Ok(None) };
    let invalid = || Error::Forbidden(format!("invalid authentication token. Invalid filter in scope for '{name}'"));
    if filters.iter().any(|f| plain_filter(f).is_err()) {
        return Err(invalid());
    }
    let mut plan = if filters.is_empty() {
        ctx.table(name).await.map_err(query)?.into_unoptimized_plan()
    } else {
        let condition = filters.iter().map(|f| format!("({f})")).collect::<Vec<_>>().join(" OR ");
        let sql = format!("SELECT * FROM `{name}` WHERE {condition}");
        let translated = crate::dialect::translate(&sql).map_err(|e| Error::Query(e.to_string()))?;
        let statement = datafusion::sql::parser::Statement::Statement(Box::new(translated.statement));
        ctx.state().statement_to_plan(statement).await.map_err(|_| invalid())?
    };
    let mut applied = None;
    if let Some((column, value)) = tenant {
        let schema = provider.schema();
        let Ok(field) = schema.field_with_name(column) else {
            return Err(Error::Forbidden(missing_tenant(column, name)));
        };
        // A quarantine holds the raw values as text: compare with the value's text.
        let (data_type, value) = match quarantine {
            true => (DataType::Utf8, as_text(value)),
            false => (field.data_type().clone(), value.clone()),
        };
        let condition = tenant_condition(column, &data_type, &value)
            .ok_or_else(|| Error::Forbidden(wrong_tenant_type(column, name)))?;
        plan = LogicalPlanBuilder::from(plan).filter(condition).and_then(LogicalPlanBuilder::build).map_err(query)?;
        applied = Some(tenant_text(&value));
    }
    ctx.deregister_table(name).map_err(query)?;
    let view = datafusion::catalog::view::ViewTable::new(plan, None);
    ctx.register_table(name, Arc::new(view)).map_err(query)?;
    Ok(applied)
}

/// A row filter must be an expression: no query or table inside it.
pub fn plain_filter(filter: &str) -> std::result::Result<(), String> {
    let words = filter.split(|c: char| !c.is_ascii_alphanumeric() && c != '_');
    if words.into_iter().any(|w| w.eq_ignore_ascii_case("select") || w.eq_ignore_ascii_case("from")) {
        return Err("a filter cannot contain a query".into());
    }
    if filter.contains(';') {
        return Err("a filter is one expression".into());
    }
    // Parentheses must balance outside quotes, so `(filter)` stays one expression.
    let (mut depth, mut quote) = (0i32, None::<char>);
    let mut chars = filter.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced parentheses".into());
                }
            }
            _ => {}
        }
    }
    if depth != 0 || quote.is_some() {
        return Err("unbalanced parentheses or quotes".into());
    }
    Ok(())
}

fn wrong_tenant_type(column: &str, datasource: &str) -> String {
    format!(
        "The token you have provided has a value of the wrong type for the tenant key '{column}' of Data Source '{datasource}'"
    )
}

/// The value(s) a request was filtered by, for the usage log.
pub(crate) fn tenant_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Array(items) => items.iter().map(tenant_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn as_text(value: &Json) -> Json {
    match value {
        Json::Array(items) => Json::Array(items.iter().map(as_text).collect()),
        Json::Number(n) => Json::String(n.to_string()),
        Json::Bool(b) => Json::String(u8::from(*b).to_string()),
        other => other.clone(),
    }
}

/// `column = value` (or `IN` for an array), the literal typed as the column so that row-group and
/// page statistics prune; `None` for a value that is empty, `null` or of the wrong type.
fn tenant_condition(column: &str, data_type: &DataType, value: &Json) -> Option<Expr> {
    let values: Vec<ScalarValue> = match value {
        Json::Array(items) if !items.is_empty() => {
            items.iter().map(|v| literal(data_type, v)).collect::<Option<Vec<_>>>()?
        }
        Json::Array(_) => return None,
        v => vec![literal(data_type, v)?],
    };
    let column = ident(column);
    Some(match values.len() {
        1 => column.eq(lit(values.into_iter().next()?)),
        _ => column.in_list(values.into_iter().map(lit).collect(), false),
    })
}

fn literal(data_type: &DataType, value: &Json) -> Option<ScalarValue> {
    let value_type = match data_type {
        DataType::Dictionary(_, v) => v.as_ref(),
        other => other,
    };
    let scalar = match (value_type, value) {
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, Json::String(s)) if !s.is_empty() => {
            ScalarValue::Utf8(Some(s.clone()))
        }
        (t, Json::Number(n)) if t.is_integer() => n
            .as_i64()
            .map(|i| ScalarValue::Int64(Some(i)))
            .or_else(|| n.as_u64().map(|u| ScalarValue::UInt64(Some(u))))?,
        (t, Json::String(s)) if t.is_integer() => s
            .parse::<i64>()
            .map(|i| ScalarValue::Int64(Some(i)))
            .ok()
            .or_else(|| s.parse::<u64>().ok().map(|u| ScalarValue::UInt64(Some(u))))?,
        (DataType::Boolean, Json::Bool(b)) => ScalarValue::Boolean(Some(*b)),
        (DataType::UInt8, Json::Bool(b)) => ScalarValue::UInt8(Some(u8::from(*b))),
        _ => return None,
    };
    // Out-of-range numbers do not cast: the wrong type.
    let typed = scalar.cast_to(value_type).ok()?;
    (!typed.is_null()).then_some(typed)
}

/// `params` with `fixed` on top: the token always wins (`token`, `q` and `format` are never
/// forced).
pub(crate) fn with_fixed(params: &template::Params, fixed: Option<&FixedParams>) -> template::Params {
    let mut out = params.clone();
    for (k, v) in fixed.into_iter().flatten() {
        if !matches!(k.as_str(), "token" | "q" | "format") {
            out.insert(k.clone(), template::Value::from(v));
        }
    }
    out
}

/// A pipe planned on its own, readable as a table by the query around it.
pub(crate) type Views = HashMap<String, LogicalPlan>;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tenant_values_are_typed_as_their_column() {
        assert!(tenant_condition("org", &DataType::Utf8, &json!("acme")).is_some());
        assert!(tenant_condition("org", &DataType::Utf8, &json!(["a", "b"])).is_some());
        for bad in [json!(null), json!(""), json!([]), json!(["a", ""]), json!({"a": 1}), json!(5), json!(true)] {
            assert!(tenant_condition("org", &DataType::Utf8, &bad).is_none(), "{bad}");
        }
        assert!(tenant_condition("id", &DataType::UInt32, &json!(7)).is_some());
        assert!(tenant_condition("id", &DataType::UInt32, &json!("7")).is_some());
        assert!(tenant_condition("id", &DataType::UInt32, &json!(-1)).is_none());
        assert!(tenant_condition("id", &DataType::UInt32, &json!("seven")).is_none());
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert!(tenant_condition("org", &dict, &json!("acme")).is_some());
    }

    #[test]
    fn fixed_params_win() {
        let mut params = template::Params::new();
        params.insert("org", "globex");
        params.insert("q", "x");
        let fixed: FixedParams = serde_json::from_value(json!({"org": "acme", "q": "forced"})).unwrap();
        let merged = with_fixed(&params, Some(&fixed));
        assert!(matches!(merged.get("org"), Some(template::Value::Str(s)) if s.as_ref() == "acme"));
        assert!(matches!(merged.get("q"), Some(template::Value::Str(s)) if s.as_ref() == "x"));
    }
}

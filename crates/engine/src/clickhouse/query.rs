//! Queries on ClickHouse: the statement is parsed once, every table it names is resolved here,
//! and the result is read back into Arrow so both backends answer in the same shapes.
//!
//! Resolution, in every query of the statement (subqueries, `IN (SELECT …)`, CTEs):
//! - a CTE (`WITH name AS (…)`) is inlined where it is read, so servers without CTEs run pipes
//!   whose nodes are chained that way;
//! - a view (a pipe read as a table, planned under its own grant) becomes its subquery;
//! - a data source the grant reads as stored becomes `db.name`; one read through row filters or a
//!   tenant value becomes `(SELECT * FROM db.name WHERE …)`, so the sorting key still prunes;
//! - `tinybird.pipe_stats_rt` is the usage table, for admins;
//! - anything else is refused: names in other databases, table functions other than
//!   `numbers`/`zeros`, and functions that read outside the query (`joinGet`, `dictGet*`, …).
//!
//! `SETTINGS` are dropped and reported (as on the embedded backend) and `FORMAT` belongs to the
//! caller. String literals are written back with their backslashes escaped, so a value keeps
//! exactly the text the template escaped.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, Expr, FormatClause, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, LimitClause, ObjectName,
    ObjectNamePart, Query, Statement, Subscript, TableAlias, TableFactor, Value, ValueWithSpan, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::ClickHouseDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde_json::Value as Json;

use super::client::{literal, quote};
use crate::policy::{Reading, Rule};
use crate::workspace::{QUARANTINE, Workspace};
use crate::{Error, Result};

/// Table functions any grant may use.
const SAFE_TABLE_FUNCTIONS: [&str; 4] = ["numbers", "numbers_mt", "zeros", "zeros_mt"];

/// Functions that read outside the query's tables, or stall the server.
fn refused_function(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("dictget")
        || n.starts_with("dicthas")
        || n.starts_with("dictis")
        || matches!(
            n.as_str(),
            "joinget"
                | "joingetornull"
                | "hascolumnintable"
                | "file"
                | "url"
                | "remote"
                | "remotesecure"
                | "cluster"
                | "clusterallreplicas"
                | "s3"
                | "input"
                | "sleep"
                | "sleepeachrow"
                | "getmacro"
                | "getserverport"
                | "filesystemavailable"
                | "filesystemcapacity"
                | "currentdatabase"
                | "currentuser"
                | "hostname"
                | "fqdn"
                | "tcpport"
                | "initialqueryid"
                | "queryid"
        )
}

/// A statement ready for ClickHouse.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The statement, as parsed and resolved.
    pub query: Query,
    /// Text substituted for placeholders when the statement is written.
    pub substitutions: Vec<(String, String)>,
    /// `FORMAT` of the statement, if any.
    pub format: Option<String>,
    /// `SETTINGS` that were dropped.
    pub ignored_settings: Vec<String>,
    /// Tenant values the reads were filtered by.
    pub tenants: Vec<String>,
}

impl Resolved {
    /// The SQL to send.
    pub fn sql(&self) -> String {
        let mut text = self.query.to_string();
        for (placeholder, replacement) in &self.substitutions {
            text = text.replace(placeholder, replacement);
        }
        text
    }
}

/// A view: a pipe (or a pipe's node) resolved under its own grant, readable as a table.
pub type Views = HashMap<String, Resolved>;

/// Parses `sql` (ClickHouse SQL, one `SELECT`) and resolves it for `reading`.
pub(crate) fn resolve(
    ws: &Workspace,
    database: &str,
    sql: &str,
    reading: Reading<'_>,
    views: &Views,
) -> Result<Resolved> {
    let has_map = ws.clickhouse().is_none_or(|ch| ch.features().has("Map"));
    let syntax = |e: crate::dialect::DialectError| Error::Query(e.to_string());
    let sql = crate::dialect::substitute_aliases(sql).map_err(syntax)?;
    let sql = crate::dialect::brackets_after_in(&sql).map_err(syntax)?;
    let mut statements =
        Parser::parse_sql(&ClickHouseDialect {}, &sql).map_err(|e| Error::Query(format!("Syntax error: {e}")))?;
    if statements.len() != 1 {
        return Err(Error::Query(format!("Syntax error: expected one statement, found {}", statements.len())));
    }
    let Statement::Query(mut query) = statements.remove(0) else {
        return Err(Error::Query("Only SELECT queries are allowed".into()));
    };
    let format = match query.format_clause.take() {
        Some(FormatClause::Identifier(name)) => Some(name.value),
        Some(FormatClause::Null) => Some("Null".to_string()),
        None => None,
    };
    let nonce = format!("aviary_{:016x}", rand_u64());
    let mut r = Resolver {
        ws,
        database,
        reading,
        views,
        scopes: Vec::new(),
        substitutions: Vec::new(),
        ignored_settings: Vec::new(),
        tenants: Vec::new(),
        error: None,
        nonce,
        has_map,
    };
    let _ = query.visit(&mut r);
    if let Some(e) = r.error {
        return Err(e);
    }
    let mut substitutions = r.substitutions;
    for view in views.values() {
        substitutions.extend(view.substitutions.iter().cloned());
    }
    Ok(Resolved { query: *query, substitutions, format, ignored_settings: r.ignored_settings, tenants: r.tenants })
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

struct Resolver<'a> {
    ws: &'a Workspace,
    database: &'a str,
    reading: Reading<'a>,
    views: &'a Views,
    /// CTEs in scope, innermost last.
    scopes: Vec<HashMap<String, Query>>,
    substitutions: Vec<(String, String)>,
    ignored_settings: Vec<String>,
    tenants: Vec<String>,
    error: Option<Error>,
    nonce: String,
    /// Whether the server has the `Map` type.
    has_map: bool,
}

impl Resolver<'_> {
    fn fail(&mut self, e: Error) -> ControlFlow<()> {
        self.error.get_or_insert(e);
        ControlFlow::Break(())
    }

    fn admin(&self) -> bool {
        matches!(self.reading.policy, crate::policy::ReadPolicy::All)
    }

    fn cte(&self, name: &str) -> Option<&Query> {
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }

    /// A placeholder table name standing for `text` when the statement is written.
    fn placeholder(&mut self, text: String) -> ObjectName {
        let name = format!("{}_{}_x", self.nonce, self.substitutions.len());
        self.substitutions.push((name.clone(), text));
        ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))])
    }

    /// The text a table reference `name` (one part) becomes, or the reason it cannot be read.
    fn table_text(&mut self, name: &str, final_: bool, sample: Option<String>) -> Result<String> {
        let unknown = || Error::Query(format!("Table '{name}' does not exist or the token cannot read it"));
        let rule = match self.reading.rule(self.ws, name)? {
            Some(rule) => rule,
            None if self.admin() => Rule::All,
            None => return Err(unknown()),
        };
        let base = name
            .strip_suffix(QUARANTINE)
            .filter(|b| self.ws.datasource(name).is_none() && self.ws.datasource(b).is_some());
        if self.ws.datasource(name).is_none() && base.is_none() && !self.admin() {
            return Err(unknown());
        }
        let table = format!("{}.{}", quote(self.database), quote(&super::table_name(name)));
        let modifiers =
            format!("{}{}", if final_ { " FINAL" } else { "" }, sample.map(|s| format!(" {s}")).unwrap_or_default());
        let Rule::Rows { filters, tenant, quarantine } = rule else {
            return Ok(if modifiers.is_empty() { table } else { format!("(SELECT * FROM {table}{modifiers})") });
        };
        let invalid =
            || Error::Forbidden(format!("invalid authentication token. Invalid filter in scope for '{name}'"));
        if filters.iter().any(|f| crate::policy::plain_filter(f).is_err()) {
            return Err(invalid());
        }
        let mut conditions = Vec::new();
        if !filters.is_empty() {
            conditions.push(format!("({})", filters.iter().map(|f| format!("({f})")).collect::<Vec<_>>().join(" OR ")));
        }
        if let Some((column, value)) = tenant {
            let ds_name = base.unwrap_or(name);
            let ty = match quarantine {
                true => Some(datafiles::ChType::String),
                false => self.ws.datasource(ds_name).and_then(|d| d.column(&column).map(|c| c.ty.clone())),
            };
            let ty = ty.ok_or_else(|| Error::Forbidden(crate::policy::missing_tenant(&column, ds_name)))?;
            let condition = tenant_condition(&column, &ty, &value).ok_or_else(|| {
                Error::Forbidden(format!(
                    "The token you have provided has a value of the wrong type for the tenant key '{column}' of Data Source '{ds_name}'"
                ))
            })?;
            conditions.push(condition);
            self.tenants.push(crate::policy::tenant_text(&value));
        }
        if conditions.is_empty() {
            return Ok(if modifiers.is_empty() { table } else { format!("(SELECT * FROM {table}{modifiers})") });
        }
        Ok(format!("(SELECT * FROM {table}{modifiers} WHERE {})", conditions.join(" AND ")))
    }
}

/// `column = literal` (`IN` for several values), the literal written for the column's type;
/// `None` for a value the column cannot hold (empty, null, wrong type).
fn tenant_condition(column: &str, ty: &datafiles::ChType, value: &Json) -> Option<String> {
    let values: Vec<&Json> = match value {
        Json::Array(items) if !items.is_empty() => items.iter().collect(),
        Json::Array(_) => return None,
        v => vec![v],
    };
    let literals = values.into_iter().map(|v| tenant_literal(ty, v)).collect::<Option<Vec<_>>>()?;
    let column = quote(column);
    Some(match literals.as_slice() {
        [one] => format!("{column} = {one}"),
        many => format!("{column} IN ({})", many.join(", ")),
    })
}

fn tenant_literal(ty: &datafiles::ChType, value: &Json) -> Option<String> {
    use datafiles::ChType;
    let base = match ty {
        ChType::Nullable(i) | ChType::LowCardinality(i) => i.as_ref(),
        other => other,
    };
    let base = match base {
        ChType::Nullable(i) | ChType::LowCardinality(i) => i.as_ref(),
        other => other,
    };
    match (base, value) {
        (ChType::String | ChType::FixedString(_), Json::String(s)) if !s.is_empty() => Some(literal(s)),
        (ChType::String, Json::Number(n)) if matches!(ty, ChType::String) => Some(literal(&n.to_string())),
        (ChType::String, Json::Bool(b)) if matches!(ty, ChType::String) => Some(literal(&u8::from(*b).to_string())),
        (ChType::Int { bits, signed }, v) if *bits <= 64 => {
            let n: i128 = match v {
                Json::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))?,
                Json::String(s) => s.trim().parse().ok()?,
                _ => return None,
            };
            let (lo, hi) =
                if *signed { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) } else { (0, (1i128 << bits) - 1) };
            (lo..=hi).contains(&n).then(|| n.to_string())
        }
        (ChType::Bool, Json::Bool(b)) => Some(u8::from(*b).to_string()),
        (ChType::Int { bits: 8, signed: false }, Json::Bool(b)) => Some(u8::from(*b).to_string()),
        _ => None,
    }
}

impl VisitorMut for Resolver<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let Some(settings) = q.settings.take() {
            let dropped =
                settings.iter().filter(|s| !matches!(s.key.value.as_str(), "max_threads" | "max_execution_time"));
            self.ignored_settings.extend(dropped.map(ToString::to_string));
        }
        if q.format_clause.take().is_some() {
            return self.fail(Error::Query("FORMAT is only allowed at the end of the query".into()));
        }
        // Templates render typed numbers as `toInt32('10')`; older servers take only a literal
        // after LIMIT and OFFSET.
        match &mut q.limit_clause {
            Some(LimitClause::LimitOffset { limit, offset, .. }) => {
                limit.iter_mut().for_each(fold_integer);
                if let Some(o) = offset {
                    fold_integer(&mut o.value);
                }
            }
            Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
                fold_integer(offset);
                fold_integer(limit);
            }
            None => {}
        }
        self.scopes.push(HashMap::new());
        if let Some(with) = q.with.take() {
            if with.recursive {
                return self.fail(Error::Query("WITH RECURSIVE is not supported".into()));
            }
            for cte in with.cte_tables {
                let mut inner = *cte.query;
                if inner.visit(self).is_break() {
                    return ControlFlow::Break(());
                }
                if let Some(scope) = self.scopes.last_mut() {
                    scope.insert(cte.alias.name.value.clone(), inner);
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &mut Query) -> ControlFlow<()> {
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        // Without `Map`, the usage log keeps its parameters as a JSON object in a String.
        if !self.has_map
            && let Expr::CompoundFieldAccess { root, access_chain } = expr
            && matches!(root.as_ref(), Expr::Identifier(i) if i.value == "parameters")
            && let [AccessExpr::Subscript(Subscript::Index { index: Expr::Value(key) })] = access_chain.as_slice()
            && let Value::SingleQuotedString(key) = &key.value
        {
            let text = format!("visitParamExtractString(parameters, {})", literal(key));
            if let Ok(parsed) = Parser::new(&ClickHouseDialect {}).try_with_sql(&text).and_then(|mut p| p.parse_expr())
            {
                *expr = parsed;
            }
        }
        if let Expr::Function(f) = expr {
            let name = f.name.to_string();
            if refused_function(name.trim_matches('`')) {
                return self.fail(Error::Query(format!("Function {name} is not allowed")));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_value(&mut self, value: &mut ValueWithSpan) -> ControlFlow<()> {
        // The printer doubles quotes but writes backslashes as they are; ClickHouse reads a
        // backslash as an escape. Escape it, so the literal keeps its text.
        if let Value::SingleQuotedString(s) = &mut value.value
            && s.contains('\\')
        {
            *s = s.replace('\\', "\\\\");
        }
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table { name, alias, args, sample, .. } => {
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .map(|p| match p {
                        ObjectNamePart::Identifier(i) => i.value.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                if let Some(args) = args {
                    let function = parts.join(".");
                    if parts.len() == 1 && SAFE_TABLE_FUNCTIONS.contains(&function.to_ascii_lowercase().as_str()) {
                        let _ = args;
                        return ControlFlow::Continue(());
                    }
                    return self.fail(Error::Query(format!("Table function {function} is not allowed")));
                }
                // `FROM t FINAL` parses as `t` aliased `FINAL`.
                let final_ = alias
                    .as_ref()
                    .is_some_and(|a| a.name.quote_style.is_none() && a.name.value.eq_ignore_ascii_case("FINAL"));
                if final_ {
                    *alias = None;
                }
                let sample_text = sample.take().map(|s| match s {
                    datafusion::sql::sqlparser::ast::TableSampleKind::BeforeTableAlias(t)
                    | datafusion::sql::sqlparser::ast::TableSampleKind::AfterTableAlias(t) => t.to_string(),
                });
                let table = parts.join(".");
                let default_alias = |n: &str| {
                    Some(TableAlias { explicit: true, name: Ident::with_quote('`', n), columns: vec![], at: None })
                };
                let alias_for = |alias: &Option<TableAlias>, n: &str| alias.clone().or_else(|| default_alias(n));
                if parts.len() == 1 {
                    if let Some(cte) = self.cte(&table).cloned() {
                        *factor = TableFactor::Derived {
                            lateral: false,
                            subquery: Box::new(cte),
                            alias: alias_for(alias, &table),
                            sample: None,
                        };
                        return ControlFlow::Continue(());
                    }
                    if let Some(view) = self.views.get(&table) {
                        *factor = TableFactor::Derived {
                            lateral: false,
                            subquery: Box::new(view.query.clone()),
                            alias: alias_for(alias, &table),
                            sample: None,
                        };
                        return ControlFlow::Continue(());
                    }
                    match self.table_text(&table, final_, sample_text) {
                        Ok(text) => {
                            let new_alias = alias_for(alias, &table);
                            *name = self.placeholder(text);
                            *alias = new_alias;
                        }
                        Err(e) => return self.fail(e),
                    }
                    return ControlFlow::Continue(());
                }
                if parts.len() == 2 && table == crate::usage::PIPE_STATS_RT && self.admin() {
                    let text = format!("{}.{}", quote(self.database), quote(&super::table_name(&table)));
                    let new_alias = alias_for(alias, &parts[1]);
                    *name = self.placeholder(text);
                    *alias = new_alias;
                    return ControlFlow::Continue(());
                }
                self.fail(Error::Query(format!("Table '{table}' does not exist or the token cannot read it")))
            }
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => ControlFlow::Continue(()),
            other => {
                let text = other.to_string();
                self.fail(Error::Query(format!("Unsupported table expression: {text}")))
            }
        }
    }
}

/// `toInt32('10')` (any `to<Int type>` of one integer literal, quoted or not) as `10`.
fn fold_integer(e: &mut Expr) {
    let Expr::Function(f) = e else { return };
    let name = f.name.to_string();
    if !(name.starts_with("toInt") || name.starts_with("toUInt")) {
        return;
    }
    let FunctionArguments::List(list) = &f.args else { return };
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))] = list.args.as_slice() else { return };
    let text = match &v.value {
        Value::SingleQuotedString(s) => s.trim().to_string(),
        Value::Number(n, _) => n.clone(),
        _ => return,
    };
    if text.parse::<i128>().is_ok() {
        *e = Expr::Value(Value::Number(text, false).into());
    }
}

/// A result read back from ClickHouse's `JSONCompact` output.
pub struct Answer {
    /// Columns.
    pub schema: arrow_schema::SchemaRef,
    /// Rows.
    pub batches: Vec<arrow_array::RecordBatch>,
    /// Rows read.
    pub rows_read: u64,
    /// Bytes read.
    pub bytes_read: u64,
}

/// Rows per Arrow batch of a read-back result.
const BATCH_ROWS: usize = 8192;

/// Reads a `JSONCompact` answer: the columns' ClickHouse types become Arrow types, each value is
/// converted as ingestion converts it.
pub fn read_answer(body: &[u8]) -> Result<Answer> {
    use crate::ingest::value::{Cell, convert};
    let v: Json =
        serde_json::from_slice(body).map_err(|e| Error::Query(format!("unreadable ClickHouse answer: {e}")))?;
    let columns: Vec<(String, datafiles::ChType)> = v["meta"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let name = m["name"].as_str().unwrap_or_default().to_string();
            (name, super::types::result_type(m["type"].as_str().unwrap_or("String")))
        })
        .collect();
    let schema = crate::ingest::arrow::schema(&columns).map_err(Error::arrow)?;
    let mut batches = Vec::new();
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    for row in v["data"].as_array().into_iter().flatten() {
        let values = row.as_array().map(Vec::as_slice).unwrap_or_default();
        let mut cells = Vec::with_capacity(columns.len());
        for ((_, ty), value) in columns.iter().zip(values) {
            let cell = match value {
                Json::Null => Cell::Null,
                // Floats that JSON cannot hold come back as text.
                v => convert(ty, v).or_else(|_| convert(ty, &Json::String(value_text(v)))).unwrap_or(Cell::Null),
            };
            cells.push(cell);
        }
        rows.push(cells);
        if rows.len() == BATCH_ROWS {
            batches.push(crate::ingest::arrow::batch(&columns, &rows).map_err(Error::arrow)?);
            rows.clear();
        }
    }
    if !rows.is_empty() || batches.is_empty() {
        batches.push(crate::ingest::arrow::batch(&columns, &rows).map_err(Error::arrow)?);
    }
    let num = |x: &Json| x.as_u64().or_else(|| x.as_str().and_then(|s| s.parse().ok())).unwrap_or(0);
    Ok(Answer {
        schema,
        batches,
        rows_read: num(&v["statistics"]["rows_read"]),
        bytes_read: num(&v["statistics"]["bytes_read"]),
    })
}

fn value_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

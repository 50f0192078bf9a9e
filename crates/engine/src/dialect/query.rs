//! Clause-level rewrites of a query (every query in it: CTEs and subqueries too), then the
//! function rewrites of every expression.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FormatClause, Ident, LimitClause, OrderByKind, Query, Select, SelectItem, SetExpr,
    TableFactor, TableWithJoins, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::DialectError;
use super::functions;

/// Rewrites `q` in place; returns its `FORMAT` and the `SETTINGS` it ignored.
pub fn rewrite(q: &mut Query) -> Result<(Option<String>, Vec<String>), DialectError> {
    let format = match q.format_clause.take() {
        Some(FormatClause::Identifier(name)) => Some(name.value),
        Some(FormatClause::Null) => Some("Null".to_string()),
        None => None,
    };
    let mut v = Rewriter { settings: Vec::new(), error: None };
    let _ = q.visit(&mut v);
    if let Some(e) = v.error {
        return Err(e);
    }
    Ok((format, v.settings))
}

struct Rewriter {
    settings: Vec<String>,
    error: Option<DialectError>,
}

impl VisitorMut for Rewriter {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let Some(settings) = q.settings.take() {
            // `max_threads` and `max_execution_time` are the caller's to honour; others are dropped.
            let dropped =
                settings.iter().filter(|s| !matches!(s.key.value.as_str(), "max_threads" | "max_execution_time"));
            self.settings.extend(dropped.map(ToString::to_string));
        }
        if q.format_clause.take().is_some() {
            self.fail(DialectError::Unsupported("FORMAT is only allowed at the end of the query".into()))?;
        }
        if let SetExpr::Select(select) = q.body.as_mut()
            && let Err(e) = clauses(select)
        {
            return self.fail(e);
        }
        if let Err(e) = limit_by(q) {
            return self.fail(e);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match functions::rewrite(expr) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => self.fail(e),
        }
    }
}

impl Rewriter {
    fn fail(&mut self, e: DialectError) -> ControlFlow<()> {
        self.error.get_or_insert(e);
        ControlFlow::Break(())
    }
}

/// `SELECT`-level rewrites: result columns keep ClickHouse's names, `FINAL` is dropped (a
/// no-op on MergeTree), `PREWHERE` joins `WHERE`.
fn clauses(select: &mut Select) -> Result<(), DialectError> {
    for item in &mut select.projection {
        if let SelectItem::UnnamedExpr(expr) = item
            && !matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
        {
            let name = expr.to_string();
            *item = SelectItem::ExprWithAlias { expr: expr.clone(), alias: Ident::with_quote('"', name) };
        }
    }
    for t in &mut select.from {
        drop_final(t);
    }
    for condition in [&mut select.selection, &mut select.having].into_iter().flatten() {
        functions::truthy(condition);
    }
    if let Some(pre) = select.prewhere.take() {
        select.selection = Some(match select.selection.take() {
            Some(w) => Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(pre))),
                op: BinaryOperator::And,
                right: Box::new(Expr::Nested(Box::new(w))),
            },
            None => pre,
        });
    }
    Ok(())
}

/// `FROM t FINAL` parses as `t` aliased `FINAL`: the alias goes.
fn drop_final(t: &mut TableWithJoins) {
    let strip = |f: &mut TableFactor| {
        if let TableFactor::Table { alias, .. } = f
            && alias
                .as_ref()
                .is_some_and(|a| a.name.quote_style.is_none() && a.name.value.eq_ignore_ascii_case("FINAL"))
        {
            *alias = None;
        }
    };
    strip(&mut t.relation);
    for j in &mut t.joins {
        strip(&mut j.relation);
    }
}

/// `… ORDER BY o LIMIT n BY k [LIMIT m]`: the first `n` rows of each `k` in `o` order, as a
/// window over the query.
fn limit_by(q: &mut Query) -> Result<(), DialectError> {
    let Some(LimitClause::LimitOffset { limit_by, .. }) = &q.limit_clause else { return Ok(()) };
    if limit_by.is_empty() {
        return Ok(());
    }
    let Some(LimitClause::LimitOffset { limit, offset, limit_by }) = q.limit_clause.take() else { return Ok(()) };
    // In ClickHouse `LIMIT n BY k` comes first and a plain `LIMIT m` may follow; sqlparser reads
    // the first `LIMIT n` as the clause's limit and the `BY` list as belonging to it.
    let n = limit.ok_or_else(|| DialectError::Unsupported("LIMIT BY needs a row count".into()))?;
    let by: Vec<String> = limit_by.iter().map(ToString::to_string).collect();
    let order = match &q.order_by {
        Some(o) => match &o.kind {
            OrderByKind::Expressions(exprs) => exprs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            OrderByKind::All(_) => return Err(DialectError::Unsupported("ORDER BY ALL with LIMIT BY".into())),
        },
        None => String::new(),
    };
    let order_clause = if order.is_empty() { String::new() } else { format!(" ORDER BY {order}") };
    let skip = offset.map(|o| o.value.to_string()).unwrap_or_else(|| "0".into());
    let wrapper = format!(
        "SELECT * EXCLUDE (__aviary_rank) FROM (SELECT *, row_number() OVER (PARTITION BY {}{order_clause}) AS \
         __aviary_rank FROM (SELECT 1) AS __aviary_inner) AS __aviary_ranked WHERE __aviary_rank > {skip} AND \
         __aviary_rank <= {skip} + {n}{order_clause}",
        by.join(", ")
    );
    let mut parsed = Parser::new(&GenericDialect {})
        .try_with_sql(&wrapper)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| DialectError::Unsupported(format!("LIMIT BY: {e}")))?;
    let inner = Query { limit_clause: None, ..q.clone() };
    place_inner(&mut parsed, inner);
    *q = *parsed;
    Ok(())
}

/// Puts `inner` where the wrapper has `(SELECT 1) AS __aviary_inner`.
fn place_inner(wrapper: &mut Query, inner: Query) {
    let mut inner = Some(inner);
    let _ = wrapper.visit(&mut Place { inner: &mut inner });
}

struct Place<'a> {
    inner: &'a mut Option<Query>,
}

impl VisitorMut for Place<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Derived { subquery, alias: Some(a), .. } = f
            && a.name.value == "__aviary_inner"
            && let Some(q) = self.inner.take()
        {
            **subquery = q;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

//! ClickHouse functions onto DataFusion, by name. Every function call of a query goes through
//! [`rewrite`]: it is either rewritten from a template (`$1`… are the arguments, `$p1`… the
//! parameters of parametric aggregates such as `quantile(0.9)(x)`), rewritten by code, passed
//! through because DataFusion's function of that name behaves the same, or refused with an
//! error naming it. [`supported_functions`] lists them for the docs.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::OnceLock;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DateTimeField, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Interval,
    ObjectName, ObjectNamePart, UnaryOperator, Value, ValueWithSpan, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::DialectError;

/// Rewrites by template: ClickHouse name, argument count (`None`: any), DataFusion SQL.
const TEMPLATES: &[(&str, Option<usize>, &str)] = &[
    // Aggregates.
    ("count", Some(0), "CAST(count(*) AS BIGINT UNSIGNED)"),
    ("countIf", Some(1), "CAST(count(*) FILTER (WHERE $1) AS BIGINT UNSIGNED)"),
    ("sumIf", Some(2), "ch_zero_if_null(sum($1) FILTER (WHERE $2))"),
    ("avgIf", Some(2), "avg($1) FILTER (WHERE $2)"),
    ("minIf", Some(2), "min($1) FILTER (WHERE $2)"),
    ("maxIf", Some(2), "max($1) FILTER (WHERE $2)"),
    ("uniq", None, "ch_uniq($0)"),
    ("uniqExact", Some(1), "CAST(count(DISTINCT $1) AS BIGINT UNSIGNED)"),
    ("uniqCombined", None, "ch_uniq($0)"),
    ("uniqHLL12", None, "ch_uniq($0)"),
    ("uniqIf", Some(2), "ch_uniq($1) FILTER (WHERE $2)"),
    ("uniqExactIf", Some(2), "CAST(count(DISTINCT $1) FILTER (WHERE $2) AS BIGINT UNSIGNED)"),
    ("any", Some(1), "first_value($1) FILTER (WHERE $1 IS NOT NULL)"),
    ("anyLast", Some(1), "last_value($1) FILTER (WHERE $1 IS NOT NULL)"),
    ("argMax", Some(2), "first_value($1 ORDER BY $2 DESC) FILTER (WHERE $2 IS NOT NULL)"),
    ("argMin", Some(2), "first_value($1 ORDER BY $2 ASC) FILTER (WHERE $2 IS NOT NULL)"),
    ("groupArray", Some(1), "coalesce(array_agg($1) FILTER (WHERE $1 IS NOT NULL), make_array())"),
    ("groupUniqArray", Some(1), "coalesce(array_agg(DISTINCT $1) FILTER (WHERE $1 IS NOT NULL), make_array())"),
    ("median", Some(1), "ch_quantile($1, 0.5)"),
    ("topK", Some(1), "ch_top_k(array_agg($1) FILTER (WHERE $1 IS NOT NULL), 10)"),
    ("medianExact", Some(1), "percentile_cont($1, 0.5)"),
    ("sum", Some(1), "ch_zero_if_null(sum($1))"),
    // Dates and times (timestamps are UTC).
    ("toStartOfSecond", Some(1), "date_trunc('second', $1)"),
    ("toStartOfMinute", Some(1), "ch_to_datetime(date_trunc('minute', $1))"),
    (
        "toStartOfFiveMinutes",
        Some(1),
        "ch_to_datetime(date_bin(INTERVAL '5 minutes', $1, TIMESTAMP '1970-01-01 00:00:00'))",
    ),
    (
        "toStartOfFiveMinute",
        Some(1),
        "ch_to_datetime(date_bin(INTERVAL '5 minutes', $1, TIMESTAMP '1970-01-01 00:00:00'))",
    ),
    (
        "toStartOfTenMinutes",
        Some(1),
        "ch_to_datetime(date_bin(INTERVAL '10 minutes', $1, TIMESTAMP '1970-01-01 00:00:00'))",
    ),
    (
        "toStartOfFifteenMinutes",
        Some(1),
        "ch_to_datetime(date_bin(INTERVAL '15 minutes', $1, TIMESTAMP '1970-01-01 00:00:00'))",
    ),
    ("toStartOfHour", Some(1), "ch_to_datetime(date_trunc('hour', $1))"),
    ("toStartOfDay", Some(1), "ch_to_datetime(date_trunc('day', $1))"),
    ("toStartOfWeek", Some(1), "CAST(date_trunc('week', $1 + INTERVAL '1 day') - INTERVAL '1 day' AS DATE)"),
    ("toMonday", Some(1), "CAST(date_trunc('week', $1) AS DATE)"),
    ("toStartOfMonth", Some(1), "CAST(date_trunc('month', $1) AS DATE)"),
    ("toStartOfQuarter", Some(1), "CAST(date_trunc('quarter', $1) AS DATE)"),
    ("toStartOfYear", Some(1), "CAST(date_trunc('year', $1) AS DATE)"),
    ("toDate", Some(1), "ch_to_date($1)"),
    ("toDateTime", Some(1), "ch_to_datetime($1)"),
    ("toYYYYMM", Some(1), "CAST(date_part('year', $1) * 100 + date_part('month', $1) AS INT UNSIGNED)"),
    (
        "toYYYYMMDD",
        Some(1),
        "CAST(date_part('year', $1) * 10000 + date_part('month', $1) * 100 + date_part('day', $1) AS INT UNSIGNED)",
    ),
    ("toYear", Some(1), "CAST(date_part('year', $1) AS SMALLINT UNSIGNED)"),
    ("toQuarter", Some(1), "CAST(date_part('quarter', $1) AS TINYINT UNSIGNED)"),
    ("toMonth", Some(1), "CAST(date_part('month', $1) AS TINYINT UNSIGNED)"),
    ("toDayOfMonth", Some(1), "CAST(date_part('day', $1) AS TINYINT UNSIGNED)"),
    ("toDayOfYear", Some(1), "CAST(date_part('doy', $1) AS SMALLINT UNSIGNED)"),
    ("toDayOfWeek", Some(1), "CAST((CAST(date_part('dow', $1) AS INT) + 6) % 7 + 1 AS TINYINT UNSIGNED)"),
    ("toHour", Some(1), "CAST(date_part('hour', $1) AS TINYINT UNSIGNED)"),
    ("toMinute", Some(1), "CAST(date_part('minute', $1) AS TINYINT UNSIGNED)"),
    ("toSecond", Some(1), "CAST(date_part('second', $1) AS TINYINT UNSIGNED)"),
    ("toUnixTimestamp", Some(1), "CAST(date_part('epoch', ch_to_datetime($1)) AS INT UNSIGNED)"),
    ("fromUnixTimestamp", Some(1), "ch_to_datetime(CAST($1 AS BIGINT))"),
    ("FROM_UNIXTIME", Some(1), "ch_to_datetime(CAST($1 AS BIGINT))"),
    ("now", Some(0), "ch_to_datetime(now())"),
    ("today", Some(0), "current_date()"),
    ("yesterday", Some(0), "current_date() - INTERVAL '1 day'"),
    // Conversions.
    ("toString", Some(1), "ch_to_string($1)"),
    ("toInt8", Some(1), "CAST($1 AS TINYINT)"),
    ("toInt16", Some(1), "CAST($1 AS SMALLINT)"),
    ("toInt32", Some(1), "CAST($1 AS INT)"),
    ("toInt64", Some(1), "CAST($1 AS BIGINT)"),
    ("toUInt8", Some(1), "CAST($1 AS TINYINT UNSIGNED)"),
    ("toUInt16", Some(1), "CAST($1 AS SMALLINT UNSIGNED)"),
    ("toUInt32", Some(1), "CAST($1 AS INT UNSIGNED)"),
    ("toUInt64", Some(1), "CAST($1 AS BIGINT UNSIGNED)"),
    ("toFloat32", Some(1), "CAST($1 AS REAL)"),
    ("toFloat64", Some(1), "CAST($1 AS DOUBLE)"),
    ("toInt8OrNull", Some(1), "TRY_CAST($1 AS TINYINT)"),
    ("toInt16OrNull", Some(1), "TRY_CAST($1 AS SMALLINT)"),
    ("toInt32OrNull", Some(1), "TRY_CAST($1 AS INT)"),
    ("toInt64OrNull", Some(1), "TRY_CAST($1 AS BIGINT)"),
    ("toUInt8OrNull", Some(1), "TRY_CAST($1 AS TINYINT UNSIGNED)"),
    ("toUInt16OrNull", Some(1), "TRY_CAST($1 AS SMALLINT UNSIGNED)"),
    ("toUInt32OrNull", Some(1), "TRY_CAST($1 AS INT UNSIGNED)"),
    ("toUInt64OrNull", Some(1), "TRY_CAST($1 AS BIGINT UNSIGNED)"),
    ("toFloat32OrNull", Some(1), "TRY_CAST($1 AS REAL)"),
    ("toFloat64OrNull", Some(1), "TRY_CAST($1 AS DOUBLE)"),
    ("toInt8OrZero", Some(1), "coalesce(TRY_CAST($1 AS TINYINT), 0)"),
    ("toInt16OrZero", Some(1), "coalesce(TRY_CAST($1 AS SMALLINT), 0)"),
    ("toInt32OrZero", Some(1), "coalesce(TRY_CAST($1 AS INT), 0)"),
    ("toInt64OrZero", Some(1), "coalesce(TRY_CAST($1 AS BIGINT), 0)"),
    ("toUInt8OrZero", Some(1), "coalesce(TRY_CAST($1 AS TINYINT UNSIGNED), 0)"),
    ("toUInt16OrZero", Some(1), "coalesce(TRY_CAST($1 AS SMALLINT UNSIGNED), 0)"),
    ("toUInt32OrZero", Some(1), "coalesce(TRY_CAST($1 AS INT UNSIGNED), 0)"),
    ("toUInt64OrZero", Some(1), "coalesce(TRY_CAST($1 AS BIGINT UNSIGNED), 0)"),
    ("toFloat32OrZero", Some(1), "coalesce(TRY_CAST($1 AS REAL), 0)"),
    ("toFloat64OrZero", Some(1), "coalesce(TRY_CAST($1 AS DOUBLE), 0)"),
    ("toDateOrNull", Some(1), "ch_to_date_or_null($1)"),
    ("toDateOrZero", Some(1), "coalesce(ch_to_date_or_null($1), DATE '1970-01-01')"),
    // Conditionals.
    ("if", Some(3), "CASE WHEN $1 THEN $2 ELSE $3 END"),
    ("ifNull", Some(2), "coalesce($1, $2)"),
    ("nullIf", Some(2), "nullif($1, $2)"),
    ("isNull", Some(1), "$1 IS NULL"),
    ("isNotNull", Some(1), "$1 IS NOT NULL"),
    // Strings.
    ("lowerUTF8", Some(1), "lower($1)"),
    ("upperUTF8", Some(1), "upper($1)"),
    ("length", Some(1), "ch_length($1)"),
    ("lengthUTF8", Some(1), "character_length($1)"),
    ("empty", Some(1), "ch_length($1) = 0"),
    ("notEmpty", Some(1), "ch_length($1) > 0"),
    ("position", Some(2), "strpos($1, $2)"),
    ("positionCaseInsensitive", Some(2), "strpos(lower($1), lower($2))"),
    ("match", Some(2), "regexp_like($1, $2)"),
    ("like", Some(2), "($1 LIKE $2)"),
    ("notLike", Some(2), "($1 NOT LIKE $2)"),
    ("ilike", Some(2), "($1 ILIKE $2)"),
    ("notILike", Some(2), "($1 NOT ILIKE $2)"),
    ("startsWith", Some(2), "starts_with($1, $2)"),
    ("endsWith", Some(2), "ends_with($1, $2)"),
    ("replaceAll", Some(3), "replace($1, $2, $3)"),
    ("replaceRegexpAll", Some(3), "regexp_replace($1, $2, $3, 'g')"),
    ("splitByChar", Some(2), "string_to_array($2, $1)"),
    ("splitByString", Some(2), "string_to_array($2, $1)"),
    ("trimBoth", Some(1), "btrim($1)"),
    ("trimLeft", Some(1), "ltrim($1)"),
    ("trimRight", Some(1), "rtrim($1)"),
    // Arrays and tuples.
    ("has", Some(2), "array_has($1, $2)"),
    ("hasAny", Some(2), "array_has_any($1, $2)"),
    ("hasAll", Some(2), "array_has_all($1, $2)"),
    ("indexOf", Some(2), "coalesce(array_position($1, $2), 0)"),
    ("arrayJoin", Some(1), "unnest($1)"),
    ("arrayConcat", None, "array_concat($*)"),
    ("arraySort", Some(1), "array_sort($1)"),
    ("arrayDistinct", Some(1), "array_distinct($1)"),
    ("array", None, "make_array($*)"),
    ("tuple", None, "struct($*)"),
    // JSON.
    ("JSONExtractString", None, "ch_json_extract_string($*)"),
    ("JSONExtractInt", None, "ch_json_extract_int($*)"),
    ("JSONExtractFloat", None, "ch_json_extract_float($*)"),
    ("JSONExtractBool", None, "ch_json_extract_bool($*)"),
    ("JSONExtractRaw", None, "ch_json_extract_raw($*)"),
    ("JSONHas", None, "ch_json_has($*)"),
    // Numbers.
    ("intDiv", Some(2), "CAST($1 AS BIGINT) / CAST($2 AS BIGINT)"),
    ("modulo", Some(2), "$1 % $2"),
    ("plus", Some(2), "$1 + $2"),
    ("minus", Some(2), "$1 - $2"),
    ("multiply", Some(2), "$1 * $2"),
    ("divide", Some(2), "CAST($1 AS DOUBLE) / $2"),
];

/// Functions DataFusion runs with ClickHouse's meaning under the same name (matched without
/// case, as ClickHouse does for these).
const PASS_THROUGH: &[&str] = &[
    "count",
    "avg",
    "min",
    "max",
    "abs",
    "round",
    "floor",
    "ceil",
    "sqrt",
    "exp",
    "ln",
    "log10",
    "log2",
    "pow",
    "power",
    "greatest",
    "least",
    "lower",
    "upper",
    "concat",
    "substring",
    "coalesce",
    "nullif",
    "reverse",
    "repeat",
    "row_number",
    "rank",
    "dense_rank",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "stddevpop",
    "stddevsamp",
    "varpop",
    "varsamp",
];

/// DataFusion's names for what the templates produce; accepted as written too.
const GENERATED: &[&str] = &[
    "date_trunc",
    "date_bin",
    "date_part",
    "percentile_cont",
    "array_agg",
    "make_array",
    "array_has",
    "array_has_any",
    "array_has_all",
    "array_position",
    "array_concat",
    "array_sort",
    "array_distinct",
    "array_element",
    "unnest",
    "struct",
    "strpos",
    "regexp_like",
    "regexp_replace",
    "starts_with",
    "ends_with",
    "replace",
    "string_to_array",
    "btrim",
    "ltrim",
    "rtrim",
    "character_length",
    "current_date",
    "to_char",
    "ch_to_string",
    "ch_to_datetime",
    "ch_to_date",
    "ch_to_date_or_null",
    "ch_length",
    "ch_zero_if_null",
    "ch_json_extract_string",
    "ch_json_extract_int",
    "ch_json_extract_float",
    "ch_json_extract_bool",
    "ch_json_extract_raw",
    "ch_json_has",
];

struct Template {
    arity: Option<usize>,
    expr: Expr,
}

fn templates() -> &'static HashMap<&'static str, Template> {
    static T: OnceLock<HashMap<&'static str, Template>> = OnceLock::new();
    T.get_or_init(|| {
        TEMPLATES
            .iter()
            .map(|(name, arity, sql)| {
                let sql = sql.replace("$*", "$0");
                let expr = Parser::new(&GenericDialect {})
                    .try_with_sql(&sql)
                    .and_then(|mut p| p.parse_expr())
                    .unwrap_or_else(|e| panic!("template of {name} does not parse: {e}"));
                (*name, Template { arity: *arity, expr })
            })
            .collect()
    })
}

/// Every ClickHouse function name the embedded engine accepts, for the docs.
pub fn supported_functions() -> Vec<&'static str> {
    let mut names: Vec<&str> = TEMPLATES.iter().map(|t| t.0).collect();
    names.extend(CODED);
    names.extend(PASS_THROUGH);
    names.extend(["arrayMap", "arrayFilter", "arrayExists", "arrayAll", "arrayCount", "topK"]);
    names.sort_unstable_by_key(|n| n.to_ascii_lowercase());
    names.dedup();
    names
}

/// Functions rewritten by code below.
const CODED: &[&str] = &[
    "multiIf",
    "quantile",
    "quantiles",
    "quantileExact",
    "dateDiff",
    "date_diff",
    "DATE_DIFF",
    "dateAdd",
    "date_add",
    "DATE_ADD",
    "dateSub",
    "date_sub",
    "DATE_SUB",
    "addSeconds",
    "addMinutes",
    "addHours",
    "addDays",
    "addWeeks",
    "addMonths",
    "addYears",
    "subtractSeconds",
    "subtractMinutes",
    "subtractHours",
    "subtractDays",
    "subtractWeeks",
    "subtractMonths",
    "subtractYears",
    "toStartOfInterval",
    "toIntervalSecond",
    "toIntervalMinute",
    "toIntervalHour",
    "toIntervalDay",
    "toIntervalWeek",
    "toIntervalMonth",
    "toIntervalYear",
    "formatDateTime",
    "toDateTime64",
];

fn unsupported(what: impl std::fmt::Display) -> DialectError {
    DialectError::Unsupported(format!("{what} is not supported by the embedded engine"))
}

/// The arguments of a call as expressions (`*` and named arguments are refused).
fn plain_args(args: &FunctionArguments, name: &str) -> Result<Vec<Expr>, DialectError> {
    match args {
        FunctionArguments::None => Ok(Vec::new()),
        FunctionArguments::Subquery(_) => Err(unsupported(format!("a subquery as the argument of {name}"))),
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                _ => Err(unsupported(format!("this argument of {name}"))),
            })
            .collect(),
    }
}

/// Rewrites one expression (its children are already rewritten).
pub fn rewrite(expr: &mut Expr) -> Result<(), DialectError> {
    match expr {
        Expr::Function(f) => {
            if let Some(new) = function(f)? {
                *expr = new;
            }
            Ok(())
        }
        // `INTERVAL 7 DAY`: DataFusion wants the quantity as text; `INTERVAL toInt32('5') MINUTE`
        // (what templates render) becomes a product.
        Expr::Interval(Interval { value, leading_field, .. }) => {
            match value.as_mut() {
                Expr::Value(ValueWithSpan { value: v @ Value::Number(..), .. }) => {
                    let Value::Number(n, _) = v else { return Ok(()) };
                    *v = Value::SingleQuotedString(n.clone());
                }
                Expr::Value(ValueWithSpan { value: Value::SingleQuotedString(_), .. }) => {}
                other => {
                    let field = leading_field.as_ref().map(ToString::to_string).unwrap_or_default();
                    let (u, _) = unit(&field).ok_or_else(|| unsupported(format!("INTERVAL … {field}")))?;
                    *expr = parse(&interval(other, u))?;
                }
            }
            Ok(())
        }
        // Taken apart by the function that holds it (see [`lambda`]).
        Expr::Lambda(_) => Ok(()),
        // ClickHouse reads numbers as booleans: `WHERE 1 AND …`.
        Expr::BinaryOp { left, op: BinaryOperator::And | BinaryOperator::Or, right } => {
            truthy(left);
            truthy(right);
            Ok(())
        }
        Expr::UnaryOp { op: UnaryOperator::Not, expr: inner } => {
            truthy(inner);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A number literal used as a condition becomes `true` or `false`.
pub fn truthy(e: &mut Expr) {
    if let Expr::Value(ValueWithSpan { value: Value::Number(n, _), .. }) = e {
        let on = n.parse::<f64>().is_ok_and(|v| v != 0.0);
        *e = Expr::Value(Value::Boolean(on).into());
    }
}

/// The rewritten call, or `None` to keep it as it is.
fn function(f: &mut Function) -> Result<Option<Expr>, DialectError> {
    let name = match f.name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => ident.value.clone(),
        _ => return Err(unsupported(format!("Function {}", f.name))),
    };
    let has_lambda = matches!(&f.args, FunctionArguments::List(l)
        if l.args.iter().any(|a| matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Lambda(_))))));
    if has_lambda {
        return lambda(&name, plain_args(&f.args, &name)?).map(Some);
    }
    if f.over.is_none() && f.filter.is_none() && !matches!(f.parameters, FunctionArguments::None) {
        return parametric(f, &name).map(Some);
    }
    if CODED.contains(&name.as_str()) && matches!(f.parameters, FunctionArguments::None) {
        let args = plain_args(&f.args, &name)?;
        if let Some(e) = coded(&name, &args)? {
            return Ok(Some(e));
        }
    }
    let distinct = matches!(&f.args, FunctionArguments::List(l) if l.duplicate_treatment.is_some());
    let windowed = f.over.is_some() || f.filter.is_some() || distinct;
    let given = match &f.args {
        FunctionArguments::List(l) => l.args.len(),
        _ => 0,
    };
    if !windowed && let Some(t) = templates().get(name.as_str()) {
        if t.arity.is_none_or(|a| a == given) {
            let args = plain_args(&f.args, &name)?;
            return Ok(Some(fill(&t.expr, &args, &[])));
        }
        if name != "count" && name != "sum" {
            return Err(DialectError::Unsupported(format!(
                "Function {name} takes {} argument(s), {} given",
                t.arity.unwrap_or_default(),
                given
            )));
        }
    }
    let lower = name.to_ascii_lowercase();
    if PASS_THROUGH.contains(&lower.as_str()) || GENERATED.contains(&lower.as_str()) || (lower == "sum" && windowed) {
        if lower != name {
            f.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(lower.clone()))]);
        }
        if lower == "count" {
            // ClickHouse counts are UInt64.
            return Ok(Some(Expr::Cast {
                kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
                expr: Box::new(Expr::Function(f.clone())),
                data_type: datafusion::sql::sqlparser::ast::DataType::BigIntUnsigned(None),
                array: false,
                format: None,
            }));
        }
        return Ok(None);
    }
    if lower == "sum" {
        return Ok(None);
    }
    Err(unsupported(format!("Function {name}")))
}

/// `arrayMap(x -> body, arr)` and its kin as a `ch_lambda` call: the body becomes text over
/// columns named as the parameters, and the outer columns it uses are passed after the arrays.
fn lambda(name: &str, args: Vec<Expr>) -> Result<Expr, DialectError> {
    use super::lambda::Kind;
    let kind = Kind::of(name).ok_or_else(|| {
        unsupported(format!(
            "A lambda as an argument of {name} (arrayMap, arrayFilter, arrayExists, arrayAll and arrayCount take one)"
        ))
    })?;
    let mut args = args.into_iter();
    let Some(Expr::Lambda(f)) = args.next() else {
        return Err(DialectError::Unsupported(format!("{name} takes the lambda first")));
    };
    let arrays: Vec<Expr> = args.collect();
    let params: Vec<String> = match &f.params {
        datafusion::sql::sqlparser::ast::OneOrManyWithParens::One(p) => vec![p.name.value.clone()],
        datafusion::sql::sqlparser::ast::OneOrManyWithParens::Many(ps) => {
            ps.iter().map(|p| p.name.value.clone()).collect()
        }
    };
    if arrays.len() != params.len() || arrays.iter().any(|a| matches!(a, Expr::Lambda(_))) {
        return Err(DialectError::Unsupported(format!(
            "{name}: the lambda takes {} argument(s), {} array(s) given",
            params.len(),
            arrays.len()
        )));
    }
    let mut body = *f.body;
    let mut capture = Capture { params: &params, outer: Vec::new() };
    let _ = body.visit(&mut capture);
    let quoted = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let placeholders: Vec<String> = (1..=arrays.len() + capture.outer.len()).map(|i| format!("${i}")).collect();
    let call = format!(
        "{}({}, {}, {}, {})",
        super::lambda::NAME,
        quoted(kind.tag()),
        quoted(&params.join(",")),
        quoted(&body.to_string()),
        placeholders.join(", ")
    );
    let mut values = arrays;
    values.extend(capture.outer.into_iter().map(|(_, e)| e));
    Ok(fill(&parse(&call)?, &values, &[]))
}

/// Renames the outer columns a lambda's body uses to `__c0`, `__c1`…, remembering them.
struct Capture<'a> {
    params: &'a [String],
    outer: Vec<(String, Expr)>,
}

impl VisitorMut for Capture<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let outer = match expr {
            Expr::Identifier(i) if !self.params.contains(&i.value) => true,
            Expr::CompoundIdentifier(_) => true,
            _ => false,
        };
        if outer {
            let key = expr.to_string();
            let at = match self.outer.iter().position(|(k, _)| *k == key) {
                Some(at) => at,
                None => {
                    self.outer.push((key, expr.clone()));
                    self.outer.len() - 1
                }
            };
            *expr = Expr::Identifier(Ident::new(format!("__c{at}")));
        }
        ControlFlow::Continue(())
    }
}

/// `quantile(0.9)(x)`, `quantiles(0.5, 0.9)(x)`, `quantileExact(0.5)(x)`, `groupArray(10)(x)`.
fn parametric(f: &Function, name: &str) -> Result<Expr, DialectError> {
    let params = plain_args(&f.parameters, name)?;
    let args = plain_args(&f.args, name)?;
    let one = |what: &str| -> Result<(), DialectError> {
        if args.len() == 1 && !params.is_empty() {
            Ok(())
        } else {
            Err(DialectError::Unsupported(format!("{name}(…)(x) takes {what}")))
        }
    };
    let sql = match name {
        "quantile" | "quantileTDigest" | "quantileTiming" => {
            one("one level and one argument")?;
            "ch_quantile($1, $p1)".to_string()
        }
        "quantileExact" => {
            one("one level and one argument")?;
            "array_element(array_sort(array_agg($1) FILTER (WHERE $1 IS NOT NULL)), \
             CAST(least(floor($p1 * count($1)), count($1) - 1) AS BIGINT) + 1)"
                .to_string()
        }
        "quantiles" | "quantilesTDigest" => {
            one("levels and one argument")?;
            let levels: Vec<String> = (1..=params.len()).map(|i| format!("$p{i}")).collect();
            format!("ch_quantiles($1, {})", levels.join(", "))
        }
        "topK" => {
            one("a count and one argument")?;
            "ch_top_k(array_agg($1) FILTER (WHERE $1 IS NOT NULL), $p1)".to_string()
        }
        "groupArray" => {
            one("a size and one argument")?;
            "array_slice(coalesce(array_agg($1) FILTER (WHERE $1 IS NOT NULL), make_array()), 1, $p1)".to_string()
        }
        _ => return Err(unsupported(format!("Function {name}(…)(…)"))),
    };
    Ok(fill(&parse(&sql)?, &args, &params))
}

fn parse(sql: &str) -> Result<Expr, DialectError> {
    Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| DialectError::Syntax(e.to_string()))
}

/// The unit of a `dateDiff`/`toInterval…` style name or argument, as SQL's interval field.
fn unit(text: &str) -> Option<(&'static str, DateTimeField)> {
    Some(match text.trim_matches('\'').to_ascii_lowercase().trim_end_matches('s') {
        "second" | "ss" | "s" => ("second", DateTimeField::Second),
        "minute" | "mi" | "n" => ("minute", DateTimeField::Minute),
        "hour" | "hh" | "h" => ("hour", DateTimeField::Hour),
        "day" | "dd" | "d" => ("day", DateTimeField::Day),
        "week" | "wk" | "ww" => ("week", DateTimeField::Week(None)),
        "month" | "mm" | "m" => ("month", DateTimeField::Month),
        "quarter" | "qq" | "q" => ("quarter", DateTimeField::Quarter),
        "year" | "yyyy" | "yy" => ("year", DateTimeField::Year),
        _ => return None,
    })
}

/// The text of a string literal argument.
fn literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(ValueWithSpan { value: Value::SingleQuotedString(s), .. }) => Some(s.clone()),
        Expr::Identifier(i) => Some(i.value.clone()),
        _ => None,
    }
}

/// `n` of `unit` as an interval expression.
fn interval(n: &Expr, unit: &str) -> String {
    match n {
        Expr::Value(ValueWithSpan { value: Value::Number(v, _), .. }) => format!("INTERVAL '{v} {unit}'"),
        // DataFusion multiplies no interval by a number; it reads one from text.
        other => format!("CAST(concat(CAST(({other}) AS VARCHAR), ' {unit}') AS INTERVAL)"),
    }
}

fn coded(name: &str, args: &[Expr]) -> Result<Option<Expr>, DialectError> {
    let arity = |n: usize| -> Result<(), DialectError> {
        if args.len() == n {
            Ok(())
        } else {
            Err(DialectError::Unsupported(format!("Function {name} takes {n} argument(s), {} given", args.len())))
        }
    };
    let bad_unit = |u: &str| DialectError::Unsupported(format!("{name}: unknown unit '{u}'"));
    let sql = match name {
        "multiIf" => {
            if args.len() < 3 || args.len().is_multiple_of(2) {
                return Err(DialectError::Unsupported("multiIf takes cond, then, …, else".into()));
            }
            let mut s = "CASE".to_string();
            for i in (0..args.len() - 1).step_by(2) {
                s.push_str(&format!(" WHEN ${} THEN ${}", i + 1, i + 2));
            }
            s.push_str(&format!(" ELSE ${} END", args.len()));
            s
        }
        "dateDiff" | "date_diff" | "DATE_DIFF" => {
            arity(3)?;
            let text = literal(&args[0]).unwrap_or_default();
            let (u, _) = unit(&text).ok_or_else(|| bad_unit(&text))?;
            // ClickHouse counts the unit boundaries crossed between the two times.
            match u {
                "month" | "quarter" | "year" => {
                    let months = |i: usize| format!("(date_part('year', ${i}) * 12 + date_part('month', ${i}))");
                    let per = match u {
                        "month" => 1,
                        "quarter" => 3,
                        _ => 12,
                    };
                    if per == 1 {
                        format!("CAST({} - {} AS BIGINT)", months(3), months(2))
                    } else {
                        format!(
                            "CAST(floor(({} - 1) / {per}) - floor(({} - 1) / {per}) AS BIGINT)",
                            months(3),
                            months(2)
                        )
                    }
                }
                "week" => "CAST((date_part('epoch', date_trunc('week', $3)) - date_part('epoch', date_trunc('week', $2))) / 604800 AS BIGINT)".to_string(),
                other => {
                    let secs = match other {
                        "second" => 1,
                        "minute" => 60,
                        "hour" => 3600,
                        _ => 86400,
                    };
                    format!(
                        "CAST((date_part('epoch', date_trunc('{other}', $3)) - date_part('epoch', date_trunc('{other}', $2))) / {secs} AS BIGINT)"
                    )
                }
            }
        }
        "dateAdd" | "date_add" | "DATE_ADD" | "dateSub" | "date_sub" | "DATE_SUB" => {
            arity(3)?;
            let text = literal(&args[0]).unwrap_or_default();
            let (u, _) = unit(&text).ok_or_else(|| bad_unit(&text))?;
            let op = if name.to_ascii_lowercase().contains("sub") { "-" } else { "+" };
            format!("$3 {op} {}", interval(&args[1], u))
        }
        _ if name.starts_with("add") || name.starts_with("subtract") => {
            arity(2)?;
            let (op, rest) = match name.strip_prefix("add") {
                Some(r) => ("+", r),
                None => ("-", name.strip_prefix("subtract").unwrap_or(name)),
            };
            let (u, _) = unit(rest).ok_or_else(|| bad_unit(rest))?;
            format!("$1 {op} {}", interval(&args[1], u))
        }
        _ if name.starts_with("toInterval") => {
            arity(1)?;
            let rest = &name["toInterval".len()..];
            let (u, _) = unit(rest).ok_or_else(|| bad_unit(rest))?;
            interval(&args[0], u)
        }
        "toStartOfInterval" => {
            arity(2)?;
            let Expr::Interval(Interval { value, leading_field: Some(field), .. }) = &args[1] else {
                return Err(DialectError::Unsupported("toStartOfInterval needs INTERVAL n unit".into()));
            };
            let n = literal(value).or_else(|| match value.as_ref() {
                Expr::Value(ValueWithSpan { value: Value::Number(n, _), .. }) => Some(n.clone()),
                _ => None,
            });
            let n: i64 = n.as_deref().and_then(|n| n.trim().parse().ok()).filter(|n| *n > 0).ok_or_else(|| {
                DialectError::Unsupported("toStartOfInterval needs a positive whole number of units".into())
            })?;
            let (u, _) = unit(&field.to_string()).ok_or_else(|| bad_unit(&field.to_string()))?;
            match u {
                "month" | "quarter" | "year" => {
                    let months = n * match u {
                        "month" => 1,
                        "quarter" => 3,
                        _ => 12,
                    };
                    let m = "((CAST(date_part('year', $1) AS BIGINT) - 1970) * 12 + CAST(date_part('month', $1) AS BIGINT) - 1)";
                    format!(
                        "make_date(CAST(1970 + floor({m} / {months}) * {months} / 12 AS INT), CAST((floor({m} / {months}) * {months}) % 12 + 1 AS INT), 1)"
                    )
                }
                "week" => {
                    format!("CAST(date_bin(INTERVAL '{} days', $1, TIMESTAMP '1969-12-29 00:00:00') AS DATE)", 7 * n)
                }
                "day" => format!("CAST(date_bin(INTERVAL '{n} days', $1, TIMESTAMP '1970-01-01 00:00:00') AS DATE)"),
                other => {
                    format!("ch_to_datetime(date_bin(INTERVAL '{n} {other}s', $1, TIMESTAMP '1970-01-01 00:00:00'))")
                }
            }
        }
        "formatDateTime" => {
            arity(2)?;
            let fmt = literal(&args[1])
                .ok_or_else(|| DialectError::Unsupported("formatDateTime needs a literal format".into()))?;
            format!("to_char($1, '{}')", strftime(&fmt).replace('\'', "''"))
        }
        "toDateTime64" => {
            if args.is_empty() || args.len() > 3 {
                return Err(DialectError::Unsupported("toDateTime64(value, precision[, tz])".into()));
            }
            "ch_to_datetime($1)".to_string()
        }
        _ => return Ok(None),
    };
    Ok(Some(fill(&parse(&sql)?, args, &[])))
}

/// A ClickHouse `formatDateTime` format as a chrono one (the codes that differ).
fn strftime(ch: &str) -> String {
    let mut out = String::new();
    let mut chars = ch.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('i') => out.push_str("%M"),
            Some('M') => out.push_str("%B"),
            Some('f') => out.push_str("%6f"),
            Some('Q') => out.push_str("%q"),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// `template` with `$n` replaced by `args[n-1]`, `$0` by all of them, `$pn` by `params[n-1]`.
fn fill(template: &Expr, args: &[Expr], params: &[Expr]) -> Expr {
    let mut out = template.clone();
    let _ = out.visit(&mut Fill { args, params });
    out
}

struct Fill<'a> {
    args: &'a [Expr],
    params: &'a [Expr],
}

impl VisitorMut for Fill<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr
            && let FunctionArguments::List(list) = &mut f.args
        {
            // `$0` spreads every argument.
            if let Some(at) = list.args.iter().position(|a| is_placeholder(a, "$0")) {
                list.args
                    .splice(at..=at, self.args.iter().map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e.clone()))));
            }
        }
        if let Expr::Struct { values, .. } = expr
            && let Some(at) = values
                .iter()
                .position(|v| matches!(v, Expr::Value(ValueWithSpan { value: Value::Placeholder(p), .. }) if p == "$0"))
        {
            values.splice(at..=at, self.args.iter().cloned());
        }
        if let Expr::Value(ValueWithSpan { value: Value::Placeholder(p), .. }) = expr {
            let pick =
                |list: &[Expr], i: &str| i.parse::<usize>().ok().and_then(|i| list.get(i.wrapping_sub(1))).cloned();
            let found = match p.strip_prefix("$p") {
                Some(i) => pick(self.params, i),
                None => p.strip_prefix('$').and_then(|i| pick(self.args, i)),
            };
            if let Some(e) = found {
                let simple = matches!(
                    e,
                    Expr::Identifier(_)
                        | Expr::CompoundIdentifier(_)
                        | Expr::Value(_)
                        | Expr::Function(_)
                        | Expr::Nested(_)
                        | Expr::Cast { .. }
                );
                *expr = if simple { e } else { Expr::Nested(Box::new(e)) };
            }
        }
        ControlFlow::Continue(())
    }
}

fn is_placeholder(a: &FunctionArg, name: &str) -> bool {
    matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(ValueWithSpan { value: Value::Placeholder(p), .. }))) if p == name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_docs_list_every_supported_function() {
        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/sql.md")).unwrap();
        let docs = docs.to_ascii_lowercase();
        let missing: Vec<&str> = super::supported_functions()
            .into_iter()
            .filter(|f| !docs.contains(&format!("`{}", f.to_ascii_lowercase())))
            .collect();
        assert!(missing.is_empty(), "docs/sql.md does not list {missing:?}");
    }
}

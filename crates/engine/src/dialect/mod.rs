//! ClickHouse SQL on DataFusion. Pipes and the SQL API speak ClickHouse; the embedded engine
//! plans with DataFusion. This module owns the parsed statement in between: it parses with the
//! ClickHouse dialect, then rewrites or refuses every construct before DataFusion sees it —
//! functions by name through one table ([`functions`]), `LIMIT n BY`, `WITH <expr> AS name`,
//! `FINAL`, `PREWHERE`, `SETTINGS` and `FORMAT` — so nothing passes through unexamined.

mod aliases;
mod functions;
mod lambda;
mod quantile;
mod query;
pub mod udf;
mod uniq;

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::ClickHouseDialect;
use datafusion::sql::sqlparser::parser::Parser;

pub(crate) use aliases::substitute as substitute_aliases;
pub use functions::supported_functions;

/// A statement ready for DataFusion, and what the SQL asked of the caller.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The rewritten statement.
    pub statement: Statement,
    /// A trailing `FORMAT name`, for the caller to encode the result with.
    pub format: Option<String>,
    /// `SETTINGS` that were ignored (for a warning header), as written.
    pub ignored_settings: Vec<String>,
}

/// Why a statement cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialectError {
    /// The text does not parse.
    #[error("Syntax error: {0}")]
    Syntax(String),
    /// A statement other than a query.
    #[error("Only SELECT queries are allowed: {0}")]
    NotAQuery(String),
    /// A function or construct the embedded engine does not run.
    #[error("{0}")]
    Unsupported(String),
}

/// Parses ClickHouse SQL (one statement) and translates it.
pub fn translate(sql: &str) -> Result<Translated, DialectError> {
    let sql = aliases::substitute(sql)?;
    let sql = brackets_after_in(&sql)?;
    let mut statements =
        Parser::parse_sql(&ClickHouseDialect {}, &sql).map_err(|e| DialectError::Syntax(e.to_string()))?;
    if statements.len() != 1 {
        return Err(DialectError::Syntax(format!("expected one statement, found {}", statements.len())));
    }
    let statement = statements.remove(0);
    let Statement::Query(mut q) = statement else {
        let kind = statement.to_string().split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        return Err(DialectError::NotAQuery(kind));
    };
    let (format, ignored_settings) = query::rewrite(&mut q)?;
    Ok(Translated { statement: Statement::Query(q), format, ignored_settings })
}

/// `x IN ['a', 'b']` (what `{{Array(p)}}` renders after `IN`) read as `x IN ('a', 'b')`: the
/// tokens are rewritten, nothing else of the text changes.
pub(crate) fn brackets_after_in(sql: &str) -> Result<String, DialectError> {
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    if !sql.contains('[') {
        return Ok(sql.to_string());
    }
    let mut tokens =
        Tokenizer::new(&ClickHouseDialect {}, sql).tokenize().map_err(|e| DialectError::Syntax(e.to_string()))?;
    let significant = |t: &Token| !matches!(t, Token::Whitespace(_));
    let mut changed = false;
    let mut i = 0;
    while i < tokens.len() {
        if matches!(&tokens[i], Token::Word(w) if w.keyword == Keyword::IN) {
            let next = (i + 1..tokens.len()).find(|j| significant(&tokens[*j]));
            if let Some(open) = next.filter(|j| tokens[*j] == Token::LBracket) {
                let mut depth = 0;
                for j in open..tokens.len() {
                    match tokens[j] {
                        Token::LBracket => depth += 1,
                        Token::RBracket => {
                            depth -= 1;
                            if depth == 0 {
                                tokens[open] = Token::LParen;
                                tokens[j] = Token::RParen;
                                changed = true;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        i += 1;
    }
    if !changed {
        return Ok(sql.to_string());
    }
    Ok(untokenize(&tokens, ""))
}

/// Tokens back to text that the ClickHouse tokenizer reads as the same tokens, joined with
/// `separator`. The tokenizer unescapes string literals (`\'`, `''`, `\\`) and quoted names, and
/// a token's `Display` writes the bare value — so a literal holding a quote would end early and
/// its rest would become SQL. Literals and quoted names are escaped again here.
pub(crate) fn untokenize(tokens: &[datafusion::sql::sqlparser::tokenizer::Token], separator: &str) -> String {
    use datafusion::sql::sqlparser::tokenizer::Token;
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        match t {
            Token::SingleQuotedString(s) => {
                out.push('\'');
                out.push_str(&s.replace('\\', "\\\\").replace('\'', "\\'"));
                out.push('\'');
            }
            Token::Word(w) if w.quote_style.is_some() => {
                let open = w.quote_style.unwrap_or('`');
                let close = if open == '[' { ']' } else { open };
                out.push(open);
                out.push_str(&w.value.replace(close, &format!("{close}{close}")));
                out.push(close);
            }
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sql: &str) -> String {
        translate(sql).unwrap().statement.to_string()
    }

    #[test]
    fn functions_and_clauses_are_rewritten() {
        assert_eq!(t("SELECT count() FROM e"), "SELECT CAST(count(*) AS BIGINT UNSIGNED) AS \"count()\" FROM e");
        assert_eq!(
            t("SELECT toStartOfHour(ts) AS h, countIf(x > 1) c FROM e GROUP BY h"),
            "SELECT ch_to_datetime(date_trunc('hour', ts)) AS h, CAST(count(*) FILTER (WHERE (x > 1)) AS BIGINT UNSIGNED) AS c FROM e GROUP BY h"
        );
        let r =
            translate("SELECT a FROM e FINAL PREWHERE b = 1 WHERE c = 2 SETTINGS max_threads = 2, x = 1 FORMAT JSON")
                .unwrap();
        assert_eq!(r.statement.to_string(), "SELECT a FROM e WHERE (b = 1) AND (c = 2)");
        assert_eq!(r.format.as_deref(), Some("JSON"));
        assert_eq!(r.ignored_settings, ["x = 1"]);
        assert!(matches!(translate("DROP TABLE e"), Err(DialectError::NotAQuery(_))));
        let err = translate("SELECT someUnknownThing(a) FROM e").unwrap_err().to_string();
        assert!(err.contains("someUnknownThing"), "{err}");
    }

    /// Found by the access issue's injection suite: `IN [...]` and `WITH x AS name` rewrite
    /// tokens, and a literal holding an escaped quote must stay one literal.
    #[test]
    fn rewritten_literals_keep_their_quotes() {
        let injected = r"SELECT a FROM e WHERE b IN ['x\') OR (\'1\'=\'1', 'it''s', 'back\\slash']";
        assert_eq!(t(injected), r"SELECT a FROM e WHERE b IN ('x'') OR (''1''=''1', 'it''s', 'back\slash')");
        let aliased = r"WITH 'a\'b' AS v SELECT v, `we``ird` FROM e WHERE c IN ['\'']";
        assert_eq!(t(aliased), r"SELECT 'a''b' AS v, `we``ird` FROM e WHERE c IN ('''')");
    }
}

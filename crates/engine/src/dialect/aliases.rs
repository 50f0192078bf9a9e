//! ClickHouse's expression aliases, `WITH <expr> AS name [, …] SELECT …`: the aliases leave the
//! `WITH` list (subquery CTEs, `WITH name AS (SELECT …)`, stay) and every use of `name` in the
//! query that follows — its subqueries included, as ClickHouse's global `WITH` — reads
//! `(<expr>)`. A bare `name` in the select list keeps its column name: `(<expr>) AS name`.
//! Done on tokens, before parsing, because the SQL grammar has no such `WITH`.

use datafusion::sql::sqlparser::dialect::ClickHouseDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::DialectError;

/// `sql` with its expression aliases substituted (unchanged when it has none).
pub fn substitute(sql: &str) -> Result<String, DialectError> {
    if !sql.to_ascii_uppercase().contains("WITH") {
        return Ok(sql.to_string());
    }
    let mut tokens: Vec<Token> = Tokenizer::new(&ClickHouseDialect {}, sql)
        .tokenize()
        .map_err(|e| DialectError::Syntax(e.to_string()))?
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let mut changed = false;
    let mut from = 0;
    while let Some(at) = (from..tokens.len()).find(|i| is_keyword(&tokens[*i], Keyword::WITH)) {
        match expand(&tokens, at)? {
            Some(next) => {
                tokens = next;
                changed = true;
            }
            None => from = at + 1,
        }
    }
    if !changed {
        return Ok(sql.to_string());
    }
    Ok(super::untokenize(&tokens, " "))
}

fn is_keyword(t: &Token, k: Keyword) -> bool {
    matches!(t, Token::Word(w) if w.keyword == k && w.quote_style.is_none())
}

/// An alias's name and its expression's tokens.
struct Alias {
    name: String,
    expr: Vec<Token>,
}

/// The tokens with the aliases of the `WITH` at `with` substituted, or `None` when that `WITH`
/// lists subquery CTEs only.
fn expand(tokens: &[Token], with: usize) -> Result<Option<Vec<Token>>, DialectError> {
    // The elements, split at top-level commas, up to the SELECT that ends the list.
    let mut elements: Vec<&[Token]> = Vec::new();
    let mut depth = 0i32;
    let mut start = with + 1;
    let mut select = None;
    for (i, t) in tokens.iter().enumerate().skip(with + 1) {
        match t {
            Token::LParen | Token::LBracket => depth += 1,
            Token::RParen | Token::RBracket => depth -= 1,
            Token::Comma if depth == 0 => {
                elements.push(&tokens[start..i]);
                start = i + 1;
            }
            _ if depth == 0 && is_keyword(t, Keyword::SELECT) => {
                elements.push(&tokens[start..i]);
                select = Some(i);
                break;
            }
            _ => {}
        }
        if depth < 0 {
            break;
        }
    }
    let Some(select) = select else { return Ok(None) };
    let mut ctes: Vec<&[Token]> = Vec::new();
    let mut aliases = Vec::new();
    for e in elements {
        let is_cte = matches!(e, [Token::Word(_), as_, Token::LParen, first, ..]
            if is_keyword(as_, Keyword::AS) && (is_keyword(first, Keyword::SELECT) || is_keyword(first, Keyword::WITH)));
        if is_cte {
            ctes.push(e);
            continue;
        }
        match e {
            [expr @ .., as_, Token::Word(name)] if is_keyword(as_, Keyword::AS) && !expr.is_empty() => {
                // An alias may use the ones before it.
                let expr = replaced(expr, &aliases);
                aliases.push(Alias { name: name.value.clone(), expr });
            }
            // Not an alias list (`WITH TOTALS`, `WITH FILL`, …): the parser has the last word.
            _ => return Ok(None),
        }
    }
    if aliases.is_empty() {
        return Ok(None);
    }
    // The aliases apply up to the end of the query that holds the WITH.
    let mut depth = 0i32;
    let end = (select..tokens.len())
        .find(|i| {
            match tokens[*i] {
                Token::LParen | Token::LBracket => depth += 1,
                Token::RParen | Token::RBracket => depth -= 1,
                _ => {}
            }
            depth < 0
        })
        .unwrap_or(tokens.len());
    let mut out: Vec<Token> = tokens[..with].to_vec();
    if !ctes.is_empty() {
        out.push(tokens[with].clone());
        for (i, c) in ctes.iter().enumerate() {
            if i > 0 {
                out.push(Token::Comma);
            }
            out.extend_from_slice(c);
        }
    }
    out.extend(replaced(&tokens[select..end], &aliases));
    out.extend_from_slice(&tokens[end..]);
    Ok(Some(out))
}

/// `scope` with each alias name read as its expression.
fn replaced(scope: &[Token], aliases: &[Alias]) -> Vec<Token> {
    let mut out = Vec::with_capacity(scope.len());
    // Depths whose select list is being read.
    let mut depth = 0i32;
    let mut select_lists: Vec<i32> = Vec::new();
    for (i, t) in scope.iter().enumerate() {
        match t {
            Token::LParen | Token::LBracket => depth += 1,
            Token::RParen | Token::RBracket => {
                select_lists.retain(|d| *d < depth);
                depth -= 1;
            }
            _ if is_keyword(t, Keyword::SELECT) => select_lists.push(depth),
            _ if is_keyword(t, Keyword::FROM) => select_lists.retain(|d| *d != depth),
            _ => {}
        }
        let alias = match t {
            Token::Word(w) if w.quote_style.is_none() || w.quote_style == Some('`') || w.quote_style == Some('"') => {
                aliases.iter().find(|a| a.name == w.value)
            }
            _ => None,
        };
        let prev = i.checked_sub(1).map(|p| &scope[p]);
        let next = scope.get(i + 1);
        let qualified = matches!(prev, Some(Token::Period)) || matches!(next, Some(Token::Period));
        let called = matches!(next, Some(Token::LParen));
        let defined = prev.is_some_and(|p| is_keyword(p, Keyword::AS));
        let Some(alias) = alias.filter(|_| !qualified && !called && !defined) else {
            out.push(t.clone());
            continue;
        };
        let single = alias.expr.len() == 1 || matches!(alias.expr.first(), Some(Token::LBracket));
        if !single {
            out.push(Token::LParen);
        }
        out.extend_from_slice(&alias.expr);
        if !single {
            out.push(Token::RParen);
        }
        let item_start = prev.is_some_and(|p| {
            matches!(p, Token::Comma) || is_keyword(p, Keyword::SELECT) || is_keyword(p, Keyword::DISTINCT)
        });
        let item_end = next.is_none_or(|n| {
            matches!(n, Token::Comma | Token::RParen | Token::EOF | Token::SemiColon)
                || is_keyword(n, Keyword::FROM)
                || is_keyword(n, Keyword::FORMAT)
        });
        if select_lists.last() == Some(&depth) && item_start && item_end {
            out.push(Token::make_keyword("AS"));
            out.push(t.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::substitute;

    #[test]
    fn aliases_are_substituted_in_their_query() {
        assert_eq!(
            substitute("WITH 10 AS n, 'acme' AS o SELECT n, count() FROM e WHERE org = o LIMIT n").unwrap(),
            "SELECT 10 AS n , count ( ) FROM e WHERE org = 'acme' LIMIT 10"
        );
        assert_eq!(
            substitute("WITH a + 1 AS b SELECT f(x, b), t.b FROM t").unwrap(),
            "SELECT f ( x , ( a + 1 ) ) , t . b FROM t"
        );
        // Subquery CTEs stay; a nested WITH applies inside its parentheses only.
        assert_eq!(
            substitute("WITH c AS (SELECT 1 AS x), 2 AS two SELECT x * two FROM c").unwrap(),
            "WITH c AS ( SELECT 1 AS x ) SELECT x * 2 FROM c"
        );
        assert_eq!(
            substitute("SELECT y FROM (WITH 3 AS y SELECT y) AS s WHERE y > 0").unwrap(),
            "SELECT y FROM ( SELECT 3 AS y ) AS s WHERE y > 0"
        );
        let plain = "WITH top AS (SELECT 1) SELECT * FROM top";
        assert_eq!(substitute(plain).unwrap(), plain);
        let rollup = "SELECT a, count() FROM t GROUP BY a WITH ROLLUP";
        assert_eq!(substitute(rollup).unwrap(), rollup);
    }
}

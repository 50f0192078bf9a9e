//! The tables a node's SQL reads: names after `FROM` and `JOIN`, found by a scanner that skips
//! strings, comments, template tags and subqueries. It serves project checks (references
//! resolve, no cycles); the query engine resolves tables precisely when it plans.

/// Table names a query reads (unqualified or `db.table`), in order, without duplicates, and
/// without the names its own `WITH name AS (…)` clauses define.
pub fn table_references(sql: &str) -> Vec<String> {
    let tokens = tokenize(&strip_template(sql));
    let mut ctes: Vec<String> = Vec::new();
    let mut out: Vec<String> = Vec::new();
    let is_kw = |t: &Tok, k: &str| matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case(k));
    for (i, t) in tokens.iter().enumerate() {
        // `name AS (` after WITH or a comma defines a CTE.
        if is_kw(t, "AS")
            && matches!(tokens.get(i + 1), Some(Tok::Punct('(')))
            && let Some(Tok::Word(name) | Tok::Quoted(name)) = i.checked_sub(1).and_then(|p| tokens.get(p))
        {
            let before = i.checked_sub(2).and_then(|p| tokens.get(p));
            if matches!(before, Some(Tok::Punct(','))) || before.is_some_and(|b| is_kw(b, "WITH")) {
                ctes.push(name.clone());
            }
        }
        if !(is_kw(t, "FROM") || is_kw(t, "JOIN")) {
            continue;
        }
        let mut j = i + 1;
        loop {
            let name = match tokens.get(j) {
                Some(Tok::Word(w)) if !is_reserved(w) => w.clone(),
                Some(Tok::Quoted(w)) => w.clone(),
                _ => break,
            };
            // A table function (`numbers(10)`) is not a table.
            if matches!(tokens.get(j + 1), Some(Tok::Punct('('))) {
                break;
            }
            let mut full = name;
            let mut k = j + 1;
            while matches!(tokens.get(k), Some(Tok::Punct('.'))) {
                match tokens.get(k + 1) {
                    Some(Tok::Word(w) | Tok::Quoted(w)) => {
                        full.push('.');
                        full.push_str(w);
                        k += 2;
                    }
                    _ => break,
                }
            }
            if !out.contains(&full) {
                out.push(full);
            }
            // `FROM a, b` lists several tables; skip an alias first.
            let mut m = k;
            if matches!(tokens.get(m), Some(t) if is_kw(t, "AS")) {
                m += 1;
            }
            if matches!(tokens.get(m), Some(Tok::Word(w)) if !is_reserved(w)) {
                m += 1;
            }
            if matches!(tokens.get(m), Some(Tok::Punct(','))) && is_kw(t, "FROM") {
                j = m + 1;
                continue;
            }
            break;
        }
    }
    out.retain(|n| !ctes.contains(n));
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn is_reserved(w: &str) -> bool {
    const WORDS: [&str; 24] = [
        "SELECT", "WHERE", "GROUP", "ORDER", "LIMIT", "HAVING", "UNION", "ON", "USING", "AS", "FINAL", "SAMPLE",
        "PREWHERE", "SETTINGS", "FORMAT", "LEFT", "RIGHT", "INNER", "OUTER", "FULL", "CROSS", "ARRAY", "JOIN", "WITH",
    ];
    WORDS.iter().any(|k| k.eq_ignore_ascii_case(w))
}

/// Replaces `{{ … }}` with a placeholder literal and drops `{% … %}` and `{# … #}`.
fn strip_template(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let close = match tail.get(..2) {
            Some("{{") => Some(("}}", " ? ")),
            Some("{%") => Some(("%}", " ")),
            Some("{#") => Some(("#}", " ")),
            _ => None,
        };
        match close.and_then(|(c, r)| tail.find(c).map(|e| (e + 2, r))) {
            Some((end, replacement)) => {
                out.push_str(replacement);
                rest = &tail[end..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn tokenize(sql: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(Tok::Punct('\''));
        } else if c == '`' || c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            out.push(Tok::Quoted(chars[start..i.min(chars.len())].iter().collect()));
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tables() {
        assert_eq!(table_references("SELECT * FROM events WHERE x IN (SELECT y FROM other)"), ["events", "other"]);
        assert_eq!(table_references("SELECT 1 FROM a JOIN b ON a.x = b.x LEFT JOIN `c d` USING x"), ["a", "b", "c d"]);
        assert_eq!(table_references("SELECT * FROM numbers(10)"), Vec::<String>::new());
        assert_eq!(table_references("WITH t AS (SELECT 1 FROM src) SELECT * FROM t"), ["src"]);
        assert_eq!(table_references("SELECT * FROM a AS x, b"), ["a", "b"]);
        assert_eq!(table_references("SELECT * FROM tinybird.pipe_stats_rt"), ["tinybird.pipe_stats_rt"]);
        assert_eq!(
            table_references("%\nSELECT * FROM {{ table(t, 'x') }} JOIN events -- FROM nope\n WHERE s = 'FROM fake'"),
            ["events"]
        );
        assert_eq!(
            table_references("SELECT toStartOfMinute(timestamp) FROM events WHERE x = {{String(y)}}"),
            ["events"]
        );
    }
}

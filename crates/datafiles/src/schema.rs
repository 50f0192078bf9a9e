//! The `SCHEMA >` and `INDEXES >` blocks: columns with types, JSONPaths, defaults and codecs
//! (spec `datafiles.md` §3.2–§3.3), and data-skipping indexes.

use crate::types::ChType;

/// One step of a JSONPath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// `.key` or `.['key']`.
    Key(String),
    /// `[:]`: every element of an array.
    Each,
}

/// A `json:` path: `$`, `$.a.b`, `$.a[:]`, `$.a[:].b`, `$.['key with spaces']`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    /// The path as written.
    pub text: String,
    /// Its steps; empty for `$` (the whole event).
    pub steps: Vec<PathStep>,
}

impl JsonPath {
    /// Parses a path.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let err = || format!("invalid JSONPath '{text}'");
        let rest = text.strip_prefix('$').ok_or_else(err)?;
        let mut steps = Vec::new();
        let mut r = rest;
        while !r.is_empty() {
            if let Some(after) = r.strip_prefix("[:]") {
                steps.push(PathStep::Each);
                r = after;
            } else if let Some(after) = r.strip_prefix(".[") {
                let quote = after.chars().next().filter(|c| *c == '\'' || *c == '"').ok_or_else(err)?;
                let body = &after[1..];
                let end = body.find(quote).ok_or_else(err)?;
                steps.push(PathStep::Key(body[..end].to_string()));
                r = body[end + 1..].strip_prefix(']').ok_or_else(err)?;
            } else if let Some(after) = r.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let key = &after[..end];
                if key.is_empty() {
                    return Err(err());
                }
                steps.push(PathStep::Key(key.to_string()));
                r = &after[end..];
            } else {
                return Err(err());
            }
        }
        Ok(JsonPath { text: text.to_string(), steps })
    }
}

/// How a column gets a value it is not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnDefault {
    /// `DEFAULT expr`: used when the value is missing or null.
    Default(String),
    /// `MATERIALIZED expr`: always computed.
    Materialized(String),
    /// `ALIAS expr`: computed on read.
    Alias(String),
}

/// A column of a data source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// ClickHouse type.
    pub ty: ChType,
    /// The type as written.
    pub type_text: String,
    /// `json:` path, for NDJSON data sources.
    pub json_path: Option<JsonPath>,
    /// `DEFAULT`/`MATERIALIZED`/`ALIAS`.
    pub default: Option<ColumnDefault>,
    /// `CODEC(...)` as written.
    pub codec: Option<String>,
}

/// A data-skipping index (`name expr TYPE type GRANULARITY n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// Index name.
    pub name: String,
    /// Indexed expression.
    pub expr: String,
    /// Index type, e.g. `bloom_filter(0.01)`.
    pub ty: String,
    /// Granularity.
    pub granularity: u32,
}

/// Removes `--` comments outside quotes, keeping line structure.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut quote: Option<char> = None;
        let mut cut = line.len();
        let mut prev = ' ';
        for (i, c) in line.char_indices() {
            match quote {
                Some(q) if c == q && prev != '\\' => quote = None,
                Some(_) => {}
                None if c == '\'' || c == '`' || c == '"' => quote = Some(c),
                None if c == '-' && prev == '-' => {
                    cut = i - 1;
                    break;
                }
                None => {}
            }
            prev = c;
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

/// Splits at top-level commas and newlines (outside parentheses and quotes), keeping the
/// 0-based line where each piece starts.
fn split_columns(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start_line = 0;
    let mut line = 0;
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for c in text.chars() {
        if quote.is_none() && cur.trim().is_empty() && !c.is_whitespace() && c != ',' {
            start_line = line;
        }
        match quote {
            Some(q) => {
                if c == q && prev != '\\' {
                    quote = None;
                }
                cur.push(c);
            }
            None => match c {
                '\'' | '`' | '"' => {
                    quote = Some(c);
                    cur.push(c);
                }
                '(' | '[' => {
                    depth += 1;
                    cur.push(c);
                }
                ')' | ']' => {
                    depth -= 1;
                    cur.push(c);
                }
                ',' | '\n' if depth <= 0 => {
                    if !cur.trim().is_empty() {
                        out.push((start_line, cur.trim().to_string()));
                    }
                    cur.clear();
                }
                c => cur.push(c),
            },
        }
        if c == '\n' {
            line += 1;
        }
        prev = c;
    }
    if !cur.trim().is_empty() {
        out.push((start_line, cur.trim().to_string()));
    }
    out
}

/// Walks `s` outside quoted strings, tracking parenthesis depth, and returns the first index
/// where `stop(index, char, depth)` holds.
fn find_top_level(s: &str, mut stop: impl FnMut(usize, char, i32) -> bool) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => {
                match c {
                    '\'' | '"' => {
                        quote = Some(c);
                        continue;
                    }
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if stop(i, c, depth) {
                    return Some(i);
                }
            }
        }
    }
    None
}

/// Reads a balanced `( … )` group starting at `s[0] == '('`; returns its length.
fn balanced(s: &str) -> Option<usize> {
    find_top_level(s, |_, c, depth| c == ')' && depth == 0).map(|i| i + 1)
}

fn keyword_at(s: &str, kw: &str) -> bool {
    s.len() >= kw.len()
        && s[..kw.len()].eq_ignore_ascii_case(kw)
        && s[kw.len()..].chars().next().is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_')
}

/// Parses one column definition.
fn parse_column(def: &str) -> Result<Column, String> {
    let (name, rest) = if let Some(after) = def.strip_prefix('`') {
        let end = after.find('`').ok_or("unterminated backtick in the column name")?;
        (after[..end].to_string(), &after[end + 1..])
    } else {
        let end = def.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(def.len());
        if end == 0 {
            return Err(format!("wrong value, please check the schema syntax\n{def}\n^"));
        }
        (def[..end].to_string(), &def[end..])
    };
    let rest = rest.trim_start();
    if !rest.is_empty() && !rest.starts_with(char::is_alphabetic) {
        let pos = def.len() - rest.len();
        return Err(format!("wrong value, please check the schema syntax\n{def}\n{}^", " ".repeat(pos)));
    }
    // The type: an identifier with an optional balanced argument list.
    let ident_end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
    if ident_end == 0 {
        return Err(format!("column '{name}' has no type"));
    }
    let mut type_end = ident_end;
    if rest[ident_end..].starts_with('(') {
        type_end +=
            balanced(&rest[ident_end..]).ok_or_else(|| format!("unbalanced parentheses in the type of '{name}'"))?;
    }
    let type_text = rest[..type_end].to_string();
    let ty = ChType::parse(&type_text).map_err(|e| format!("column '{name}': {}", e.0))?;
    let mut column = Column { name, ty, type_text, json_path: None, default: None, codec: None };
    let mut r = rest[type_end..].trim_start();
    let mut seen_codec = false;
    while !r.is_empty() {
        if let Some(after) = r.strip_prefix("`json:") {
            let end = after.find('`').ok_or("unterminated `json:` path")?;
            column.json_path = Some(JsonPath::parse(after[..end].trim())?);
            r = after[end + 1..].trim_start();
        } else if keyword_at(r, "CODEC") {
            let after = r[5..].trim_start();
            let len = if after.starts_with('(') { balanced(after) } else { None }.ok_or("CODEC needs (…)")?;
            column.codec = Some(after[1..len - 1].trim().to_string());
            seen_codec = true;
            r = after[len..].trim_start();
        } else if let Some(kw) = ["DEFAULT", "MATERIALIZED", "ALIAS"].into_iter().find(|k| keyword_at(r, k)) {
            if seen_codec && kw == "MATERIALIZED" {
                return Err("Unexpected MATERIALIZED after CODEC".to_string());
            }
            if column.default.is_some() {
                return Err(format!("column '{}' has more than one DEFAULT, MATERIALIZED or ALIAS", column.name));
            }
            // The expression runs to the next top-level CODEC or json path.
            let body = &r[kw.len()..];
            let end = find_top_level(body, |i, c, depth| {
                depth == 0
                    && ((c == '`' && body[i..].starts_with("`json:"))
                        || (keyword_at(&body[i..], "CODEC") && body[..i].ends_with(' ')))
            })
            .unwrap_or(body.len());
            let expr = body[..end].trim().to_string();
            if expr.is_empty() {
                return Err(format!("{kw} needs an expression"));
            }
            column.default = Some(match kw {
                "DEFAULT" => ColumnDefault::Default(expr),
                "MATERIALIZED" => ColumnDefault::Materialized(expr),
                _ => ColumnDefault::Alias(expr),
            });
            r = body[end..].trim_start();
        } else {
            return Err(format!(
                "unexpected '{}' in column '{}'",
                r.split_whitespace().next().unwrap_or(r),
                column.name
            ));
        }
    }
    Ok(column)
}

/// Parses a `SCHEMA >` block; errors carry the 0-based line within the block.
pub fn parse_schema(block: &str) -> Result<Vec<Column>, (usize, String)> {
    let text = strip_comments(block);
    let mut columns: Vec<Column> = Vec::new();
    for (line, def) in split_columns(&text) {
        let column = parse_column(&def).map_err(|e| (line, e))?;
        if columns.iter().any(|c| c.name == column.name) {
            return Err((line, format!("column '{}' is defined twice", column.name)));
        }
        columns.push(column);
    }
    if columns.is_empty() {
        return Err((0, "the schema has no columns".to_string()));
    }
    if columns.len() > 500 {
        return Err((0, format!("a data source has at most 500 columns, this one has {}", columns.len())));
    }
    Ok(columns)
}

/// Parses an `INDEXES >` block; errors carry the 0-based line within the block.
pub fn parse_indexes(block: &str) -> Result<Vec<Index>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in strip_comments(block).lines().enumerate() {
        let line = line.trim().trim_end_matches(',');
        if line.is_empty() {
            continue;
        }
        let upper = line.to_ascii_uppercase();
        let (Some(t), Some(g)) = (upper.rfind(" TYPE "), upper.rfind(" GRANULARITY ")) else {
            return Err((i, "missing TYPE or GRANULARITY".to_string()));
        };
        let Some((name, expr)) = line[..t].trim().split_once(char::is_whitespace) else {
            return Err((i, "missing the index expression".to_string()));
        };
        if g < t {
            return Err((i, "GRANULARITY must come after TYPE".to_string()));
        }
        let granularity = line[g + 13..].trim().parse().map_err(|_| (i, "GRANULARITY must be a number".to_string()))?;
        out.push(Index {
            name: name.to_string(),
            expr: expr.trim().to_string(),
            ty: line[t + 6..g].trim().to_string(),
            granularity,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_with_paths_defaults_and_codecs() {
        let cols = parse_schema(
            "`timestamp` DateTime64(3) `json:$.timestamp`,\n\
             `path` String `json:$.payload.path` DEFAULT '/',   -- a comment\n\
             `tags` Array(String) `json:$.tags[:]`\n\
             `c` Nullable(String) CODEC(ZSTD(1)) `json:$.c`,\n\
             `t` Tuple(a String, b UInt8) `json:$`,\n\
             `m` String MATERIALIZED lower(path) CODEC(LZ4)",
        )
        .unwrap();
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["timestamp", "path", "tags", "c", "t", "m"]);
        assert_eq!(cols[1].default, Some(ColumnDefault::Default("'/'".to_string())));
        assert_eq!(cols[2].json_path.as_ref().unwrap().steps, [PathStep::Key("tags".into()), PathStep::Each]);
        assert_eq!(cols[3].codec.as_deref(), Some("ZSTD(1)"));
        assert!(cols[4].json_path.as_ref().unwrap().steps.is_empty());
        assert_eq!(cols[5].default, Some(ColumnDefault::Materialized("lower(path)".to_string())));
        assert_eq!(
            parse_schema("`a` String CODEC(LZ4) MATERIALIZED 'x'").unwrap_err().1,
            "Unexpected MATERIALIZED after CODEC"
        );
        assert_eq!(parse_schema("`a` String,\n`b` Strin").unwrap_err().0, 1);
    }

    #[test]
    fn json_paths() {
        let p = JsonPath::parse("$.['key with spaces'].x[:]").unwrap();
        assert_eq!(p.steps, [PathStep::Key("key with spaces".into()), PathStep::Key("x".into()), PathStep::Each]);
        assert!(JsonPath::parse("a.b").is_err());
        assert!(JsonPath::parse("$..b").is_err());
    }

    #[test]
    fn indexes() {
        let idx = parse_indexes("idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 4").unwrap();
        assert_eq!(idx[0].ty, "bloom_filter(0.01)");
        assert_eq!(idx[0].granularity, 4);
        assert!(parse_indexes("broken").is_err());
    }
}

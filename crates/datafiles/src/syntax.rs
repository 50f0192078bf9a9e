//! The line syntax shared by `.datasource` and `.pipe` files: `KEYWORD value…` instructions,
//! `KEYWORD >` blocks, comments, shell-like quoting (spec `datafiles.md` §2).

use crate::error::Problem;

/// One instruction of a datafile.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// The keyword, upper-cased.
    pub keyword: String,
    /// The rest of the line, split like a shell would.
    pub args: Vec<String>,
    /// The rest of the line as written (trimmed).
    pub raw: String,
    /// The content of a `KEYWORD >` block.
    pub block: Option<String>,
    /// 1-based line of the keyword.
    pub line: usize,
}

impl Instruction {
    /// The single value of `KEYWORD value` (quotes removed), or the block's content.
    pub fn value(&self) -> String {
        match &self.block {
            Some(b) => b.clone(),
            None if self.args.len() == 1 => self.args[0].clone(),
            None => self.raw.clone(),
        }
    }
}

/// Keywords that end a block when they start a line at column 0.
pub(crate) fn is_known_keyword(word: &str) -> bool {
    const KEYWORDS: [&str; 38] = [
        "DESCRIPTION",
        "SCHEMA",
        "INDEXES",
        "ENGINE",
        "ENGINE_SORTING_KEY",
        "ENGINE_PARTITION_KEY",
        "ENGINE_PRIMARY_KEY",
        "ENGINE_SAMPLING_KEY",
        "ENGINE_TTL",
        "ENGINE_SETTINGS",
        "ENGINE_VER",
        "ENGINE_IS_DELETED",
        "ENGINE_SIGN",
        "ENGINE_VERSION",
        "ENGINE_COLUMNS",
        "TOKEN",
        "TAGS",
        "VERSION",
        "SHARED_WITH",
        "FORWARD_QUERY",
        "BACKFILL",
        "TENANT_KEY",
        "INCLUDE",
        "NODE",
        "SQL",
        "TYPE",
        "DATASOURCE",
        "TARGET_DATASOURCE",
        "COPY_SCHEDULE",
        "COPY_MODE",
        "MODE",
        "DEPLOYMENT_METHOD",
        "FILTER",
        "RESOURCE",
        "SETTINGS",
        "PARTITION_KEY",
        "SORTING_KEY",
        "TTL",
    ];
    let upper = word.to_ascii_uppercase();
    KEYWORDS.contains(&upper.as_str())
        || ["KAFKA_", "IMPORT_", "EXPORT_", "S3_", "GCS_"].iter().any(|p| upper.starts_with(p))
}

/// Splits a value like a shell: whitespace separates words, `'…'` and `"…"` quote, a backslash
/// escapes the next character outside single quotes.
pub fn shell_split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("No closing quotation".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => cur.push(e),
                            Some(e) => {
                                cur.push('\\');
                                cur.push(e);
                            }
                            None => return Err("No closing quotation".to_string()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("No closing quotation".to_string()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Removes the common leading whitespace of the non-blank lines, and trailing whitespace.
pub(crate) fn dedent(text: &str) -> String {
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    let lines: Vec<&str> =
        text.lines().map(|l| if l.len() >= indent { &l[indent..] } else { l.trim_start() }).collect();
    lines.join("\n").trim_end().trim_start_matches('\n').to_string()
}

/// Replaces `$NAME` and `${NAME}` with environment variables; unknown names stay as written.
pub fn substitute_env(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let (name_start, braced) = if b.get(i + 1) == Some(&b'{') { (i + 2, true) } else { (i + 1, false) };
            let mut j = name_start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            let valid = j > name_start && !b[name_start].is_ascii_digit() && (!braced || b.get(j) == Some(&b'}'));
            if valid {
                let name = &text[name_start..j];
                let end = if braced { j + 1 } else { j };
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&text[i..end]),
                }
                i = end;
                continue;
            }
        }
        let ch = text[i..].chars().next().unwrap_or('$');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Parses a datafile's text into instructions.
pub fn parse(text: &str) -> Result<Vec<Instruction>, Problem> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let (keyword, rest) = match trimmed.split_once(char::is_whitespace) {
            Some((k, r)) => (k, r.trim()),
            None => (trimmed, ""),
        };
        let line_no = i + 1;
        if rest == ">" || rest.starts_with("> ") {
            let mut content: Vec<&str> = Vec::new();
            let first = rest[1..].trim();
            if !first.is_empty() {
                content.push(first);
            }
            i += 1;
            while i < lines.len() {
                let l = lines[i];
                let starts_col0 = !l.starts_with([' ', '\t']) && !l.is_empty();
                let first_word = l.split_whitespace().next().unwrap_or("");
                if starts_col0 && is_known_keyword(first_word) {
                    break;
                }
                content.push(l);
                i += 1;
            }
            let joined = content.join("\n");
            let block = if keyword.eq_ignore_ascii_case("SQL") && joined.trim_start().starts_with('%') {
                joined.trim().to_string()
            } else {
                dedent(&joined)
            };
            out.push(Instruction {
                keyword: keyword.to_ascii_uppercase(),
                args: Vec::new(),
                raw: String::new(),
                block: Some(block),
                line: line_no,
            });
            continue;
        }
        let args = shell_split(rest).map_err(|e| Problem::new(line_no, e))?;
        out.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args,
            raw: rest.to_string(),
            block: None,
            line: line_no,
        });
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_end_at_a_keyword_in_column_zero() {
        let text = "NODE n\nSQL >\n    SELECT 1\nFROM t\n\n    WHERE x\nTYPE endpoint\n";
        let ins = parse(text).unwrap();
        assert_eq!(ins.len(), 3);
        assert_eq!(ins[1].block.as_deref(), Some("    SELECT 1\nFROM t\n\n    WHERE x"));
        assert_eq!(ins[2].keyword, "TYPE");
        assert_eq!(ins[2].line, 7);
    }

    #[test]
    fn quoting_and_env() {
        assert_eq!(shell_split(r#"TOKEN "read api" READ"#).unwrap(), ["TOKEN", "read api", "READ"]);
        assert_eq!(shell_split("'a b' c").unwrap(), ["a b", "c"]);
        let env = |n: &str| (n == "DB").then(|| "prod".to_string());
        assert_eq!(substitute_env("x_$DB ${DB}_y $NOPE $1 $", &env), "x_prod prod_y $NOPE $1 $");
    }
}

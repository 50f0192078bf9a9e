//! The two escaping tables of the spec (§7): string literals and identifiers.
//!
//! Every user value that reaches SQL goes through one of these, so they are the injection
//! boundary: a string literal always unescapes back to exactly its input, and an identifier is
//! its input with `"` removed.

/// Escapes one character for a single-quoted ClickHouse string literal, or `None` to copy it.
fn string_escape(c: char) -> Option<&'static str> {
    Some(match c {
        '\0' => "\\0",
        '\r' => "\\r",
        '\u{8}' => "\\b",
        '\t' => "\\t",
        '\u{1a}' => "\\z",
        '\n' => "\\n",
        '"' => "\\\"",
        '\'' => "\\'",
        '\\' => "\\\\",
        '%' => "\\%",
        '`' => "\\`",
        _ => return None,
    })
}

/// Bytes that need escaping (all ASCII, so scanning bytes never splits a UTF-8 sequence).
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let special = [0u8, b'\r', 8, b'\t', 0x1a, b'\n', b'"', b'\'', b'\\', b'%', b'`'];
    let mut i = 0;
    while i < special.len() {
        t[special[i] as usize] = true;
        i += 1;
    }
    t
};

/// Appends `text` escaped with the string-literal table (no surrounding quotes).
pub fn write_string_escaped(text: &str, out: &mut String) {
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if NEEDS_ESCAPE[usize::from(b)] {
            out.push_str(&text[start..i]);
            out.push_str(string_escape(char::from(b)).unwrap_or_default());
            start = i + 1;
        }
    }
    out.push_str(&text[start..]);
}

/// Appends `'text'` as an escaped single-quoted ClickHouse string literal.
pub fn write_string_literal(text: &str, out: &mut String) {
    out.reserve(text.len() + 2);
    out.push('\'');
    write_string_escaped(text, out);
    out.push('\'');
}

/// `'text'` as an escaped single-quoted ClickHouse string literal.
pub fn string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    write_string_literal(text, &mut out);
    out
}

/// `text` escaped with the identifier table: like strings, but `"` is deleted (no quotes added).
pub fn identifier_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => {}
            c => match string_escape(c) {
                Some(esc) => out.push_str(esc),
                None => out.push(c),
            },
        }
    }
    out
}

/// `` `text` `` as a backtick-quoted identifier.
pub fn quoted_identifier(text: &str) -> String {
    format!("`{}`", identifier_escaped(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        assert_eq!(string_literal("a'b\\c\"d%e`f\n"), r#"'a\'b\\c\"d\%e\`f\n'"#);
        assert_eq!(string_literal("\0\r\u{8}\t\u{1a}"), r"'\0\r\b\t\z'");
        assert_eq!(string_literal("';drop table users;"), r"'\';drop table users;'");
        assert_eq!(quoted_identifier("my`col"), r"`my\`col`");
        assert_eq!(quoted_identifier("a\"b"), "`ab`");
        assert_eq!(string_literal("ñ→😀"), "'ñ→😀'");
    }
}

//! Property tests of the injection boundary (spec §7.3): whatever a caller sends, a string
//! parameter becomes exactly one SQL string literal holding exactly that string, and an
//! identifier exactly one quoted identifier.

use proptest::prelude::*;
use template::{Params, Template};

/// Reads one single-quoted literal written with the §7.1 table; `None` if `sql` is anything
/// else (text after the closing quote, an unknown escape, no closing quote).
fn decode_literal(sql: &str, quote: char, table: &[(char, char)]) -> Option<String> {
    let mut chars = sql.chars();
    if chars.next()? != quote {
        return None;
    }
    let mut out = String::new();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let e = chars.next()?;
            out.push(table.iter().find(|(code, _)| *code == e)?.1);
        } else if c == quote {
            return chars.next().is_none().then_some(out);
        } else {
            out.push(c);
        }
    }
    None
}

const STRING_TABLE: [(char, char); 11] = [
    ('0', '\0'),
    ('r', '\r'),
    ('b', '\u{8}'),
    ('t', '\t'),
    ('z', '\u{1a}'),
    ('n', '\n'),
    ('"', '"'),
    ('\'', '\''),
    ('\\', '\\'),
    ('%', '%'),
    ('`', '`'),
];

fn render(template: &str, name: &str, value: &str) -> String {
    let t = Template::parse(template).expect("template parses");
    let mut params = Params::new();
    params.insert(name, value);
    t.render(&params).expect("renders").sql
}

/// Strings that stress the escaping: quotes, backslashes, control characters, comment and
/// statement separators, template tags and non-ASCII text.
fn hostile() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "'", "\"", "\\", "`", "%", "\0", "\r", "\n", "\t", "\u{8}", "\u{1a}", "--", "/*", "*/", ";", "{{", "}}", "{%",
        " OR 1=1", "é", "中", "🦜", "\u{2028}", "a", "Z", " ",
    ]);
    prop_oneof![".*", prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat()),]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn string_renders_one_literal_holding_the_value(x in hostile()) {
        for template in ["{{String(x)}}", "{{x}}", "{{String(x, 'default')}}"] {
            let sql = render(template, "x", &x);
            prop_assert_eq!(decode_literal(&sql, '\'', &STRING_TABLE), Some(x.clone()), "{} gave {}", template, sql);
        }
    }

    #[test]
    fn symbol_renders_one_identifier_without_double_quotes(x in hostile()) {
        let sql = render("{{symbol(x)}}", "x", &x);
        let ident_table: Vec<(char, char)> = STRING_TABLE.iter().copied().filter(|(c, _)| *c != '"').collect();
        prop_assert_eq!(decode_literal(&sql, '`', &ident_table), Some(x.replace('"', "")), "gave {}", sql);
    }

    #[test]
    fn column_renders_one_identifier_per_dotted_part(x in hostile()) {
        let sql = render("{{column(x, 'd')}}", "x", &x);
        let ident_table: Vec<(char, char)> = STRING_TABLE.iter().copied().filter(|(c, _)| *c != '"').collect();
        // Each part is one backtick identifier; joined by `.` outside the quotes.
        let parts: Vec<&str> = x.split('.').collect();
        let mut rest = sql.as_str();
        for (i, part) in parts.iter().enumerate() {
            let rendered = template::quoted_identifier(part);
            prop_assert!(rest.starts_with(&rendered), "part {} of {:?} in {}", i, x, sql);
            prop_assert_eq!(decode_literal(&rendered, '`', &ident_table), Some(part.replace('"', "")));
            rest = &rest[rendered.len()..];
            if i + 1 < parts.len() {
                prop_assert!(rest.starts_with('.'));
                rest = &rest[1..];
            }
        }
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn array_of_strings_renders_literals_only(items in prop::collection::vec(hostile(), 1..5)) {
        let joined = items.join(",");
        let sql = render("{{Array(x, 'String')}}", "x", &joined);
        prop_assert!(sql.starts_with('[') && sql.ends_with(']'));
        // Walk the literals: `'…'` separated by commas, nothing else.
        let mut decoded = Vec::new();
        let body = &sql[1..sql.len() - 1];
        let mut rest = body;
        while !rest.is_empty() {
            let mut end = 1;
            let bytes = rest.as_bytes();
            while bytes[end] != b'\'' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            decoded.push(decode_literal(&rest[..=end], '\'', &STRING_TABLE).expect("a literal"));
            rest = &rest[end + 1..];
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else {
                prop_assert!(rest.is_empty(), "junk after a literal in {}", sql);
            }
        }
        prop_assert_eq!(decoded, joined.split(',').map(str::to_string).collect::<Vec<_>>());
    }

    #[test]
    fn integers_render_only_validated_digits(x in hostile()) {
        let t = Template::parse("{{Int32(x)}}").unwrap();
        let mut params = Params::new();
        params.insert("x", x.as_str());
        if let Ok(r) = t.render(&params) {
            let inner = r.sql.strip_prefix("toInt32('").and_then(|s| s.strip_suffix("')")).expect("toInt32 form");
            prop_assert!(inner.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn parse_and_render_never_panic(src in ".{0,200}", x in ".{0,20}") {
        if let Ok(t) = Template::parse(&src) {
            let mut params = Params::new();
            params.insert("x", x.as_str());
            let _ = t.render(&params);
        }
    }
}

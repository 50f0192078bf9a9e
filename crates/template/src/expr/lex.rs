//! Tokens of Python's expression syntax.

use std::sync::Arc;

/// A piece of a string literal: plain text, or the raw body of an f-string.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum StrPart {
    Text(String),
    /// The unparsed body of an f-string; `raw` for `rf'…'`.
    Format {
        body: String,
        raw: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Name(Arc<str>),
    Int(i128),
    BigInt(String),
    Float(f64),
    Imag(f64),
    Str(Vec<StrPart>),
    Bytes(Vec<u8>),
    Op(&'static str),
    End,
}

/// Syntax error marker; the caller turns it into the `invalid syntax, line N` message.
#[derive(Debug)]
pub(super) struct Invalid;

const OPS: [&str; 47] = [
    "**=", "//=", ">>=", "<<=", "...", "!=", "==", "<=", ">=", "**", "//", "<<", ">>", ":=", "->", "+=", "-=", "*=",
    "/=", "%=", "&=", "|=", "^=", "@=", "(", ")", "[", "]", "{", "}", ",", ":", ".", ";", "@", "=", "+", "-", "*", "/",
    "%", "&", "|", "^", "~", "<", ">",
];

pub(super) fn tokenize(src: &str) -> Result<Vec<Tok>, Invalid> {
    let b = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' || c == b'\x0c' {
            i += 1;
            continue;
        }
        if c == b'\\' && b.get(i + 1) == Some(&b'\n') {
            i += 2;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        // String prefixes and names.
        if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            let word = &src[start..i];
            if i < b.len() && (b[i] == b'\'' || b[i] == b'"') {
                let lower = word.to_ascii_lowercase();
                if matches!(lower.as_str(), "r" | "b" | "f" | "u" | "rb" | "br" | "fr" | "rf") {
                    let (tok, next) = string(src, i, &lower)?;
                    toks.push(tok);
                    i = next;
                    continue;
                }
            }
            if !word.chars().all(|ch| ch.is_alphanumeric() || ch == '_') {
                return Err(Invalid);
            }
            toks.push(Tok::Name(Arc::from(word)));
            continue;
        }
        if c == b'\'' || c == b'"' {
            let (tok, next) = string(src, i, "")?;
            toks.push(tok);
            i = next;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let (tok, next) = number(src, i)?;
            toks.push(tok);
            i = next;
            continue;
        }
        match OPS.iter().find(|op| src[i..].starts_with(**op)) {
            Some(op) => {
                toks.push(Tok::Op(op));
                i += op.len();
            }
            None => return Err(Invalid),
        }
    }
    // Merge adjacent string literals (Python concatenates them); bytes cannot mix with text.
    let mut merged: Vec<Tok> = Vec::with_capacity(toks.len() + 1);
    for t in toks {
        match (merged.last_mut(), t) {
            (Some(Tok::Str(parts)), Tok::Str(more)) => parts.extend(more),
            (Some(Tok::Bytes(bytes)), Tok::Bytes(more)) => bytes.extend(more),
            (Some(Tok::Str(_)), Tok::Bytes(_)) | (Some(Tok::Bytes(_)), Tok::Str(_)) => {
                return Err(Invalid);
            }
            (_, t) => merged.push(t),
        }
    }
    merged.push(Tok::End);
    Ok(merged)
}

fn number(src: &str, start: usize) -> Result<(Tok, usize), Invalid> {
    let b = src.as_bytes();
    let mut i = start;
    let radix_prefix = b[i] == b'0' && b.get(i + 1).is_some_and(|c| matches!(c | 0x20, b'x' | b'o' | b'b'));
    if radix_prefix {
        let radix = match b[i + 1] | 0x20 {
            b'x' => 16,
            b'o' => 8,
            _ => 2,
        };
        i += 2;
        let s = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let digits: String = src[s..i].chars().filter(|c| *c != '_').collect();
        if digits.is_empty() {
            return Err(Invalid);
        }
        return match i128::from_str_radix(&digits, radix) {
            Ok(v) => Ok((Tok::Int(v), i)),
            Err(_) if digits.chars().all(|c| c.is_digit(radix)) => Ok((Tok::BigInt(src[start..i].to_string()), i)),
            Err(_) => Err(Invalid),
        };
    }
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len()
            && (b[*i].is_ascii_digit() || (b[*i] == b'_' && b.get(*i + 1).is_some_and(u8::is_ascii_digit)))
        {
            *i += 1;
        }
        *i > s
    };
    let int_part = digits(&mut i);
    let mut is_float = false;
    if i < b.len() && b[i] == b'.' {
        is_float = true;
        i += 1;
        digits(&mut i);
    }
    if i < b.len() && (b[i] | 0x20) == b'e' {
        let save = i;
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) {
            is_float = true;
        } else {
            i = save;
        }
    }
    let text: String = src[start..i].chars().filter(|c| *c != '_').collect();
    let imag = i < b.len() && (b[i] | 0x20) == b'j';
    if imag {
        i += 1;
    }
    if i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        return Err(Invalid);
    }
    if imag {
        return Ok((Tok::Imag(text.parse().map_err(|_| Invalid)?), i));
    }
    if is_float || !int_part {
        return Ok((Tok::Float(text.parse().map_err(|_| Invalid)?), i));
    }
    // Python refuses leading zeros in decimal integers ("0005"), except for zero itself.
    if text.len() > 1 && text.starts_with('0') && text.bytes().any(|c| c != b'0') {
        return Err(Invalid);
    }
    match text.parse::<i128>() {
        Ok(v) => Ok((Tok::Int(v), i)),
        Err(_) => Ok((Tok::BigInt(text), i)),
    }
}

fn string(src: &str, start: usize, prefix: &str) -> Result<(Tok, usize), Invalid> {
    let raw = prefix.contains('r');
    let bytes = prefix.contains('b');
    let fmt = prefix.contains('f');
    let b = src.as_bytes();
    let q = b[start];
    let triple = b.get(start + 1) == Some(&q) && b.get(start + 2) == Some(&q);
    let mut i = start + if triple { 3 } else { 1 };
    let body_start = i;
    loop {
        if i >= b.len() {
            return Err(Invalid);
        }
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == b'\n' && !triple {
            return Err(Invalid);
        }
        if b[i] == q && (!triple || (b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q))) {
            break;
        }
        i += 1;
    }
    let body = &src[body_start..i];
    let end = i + if triple { 3 } else { 1 };
    if fmt {
        return Ok((Tok::Str(vec![StrPart::Format { body: body.to_string(), raw }]), end));
    }
    let text = if raw { body.to_string() } else { unescape(body)? };
    if bytes {
        if !text.is_ascii() {
            return Err(Invalid);
        }
        return Ok((Tok::Bytes(text.into_bytes()), end));
    }
    Ok((Tok::Str(vec![StrPart::Text(text)]), end))
}

/// Decodes Python's backslash escapes; unknown escapes keep their backslash, as Python does.
pub(super) fn unescape(body: &str) -> Result<String, Invalid> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            out.push('\\');
            break;
        };
        match e {
            '\n' => {}
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(v).ok_or(Invalid)?);
            }
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v = 0u32;
                for _ in 0..n {
                    let d = chars.next().and_then(|c| c.to_digit(16)).ok_or(Invalid)?;
                    v = v * 16 + d;
                }
                out.push(char::from_u32(v).ok_or(Invalid)?);
            }
            'N' => return Err(Invalid),
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

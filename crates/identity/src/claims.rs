//! The claims of a JWT template (identity-api.md §3.3–§3.5): validation when a template is saved
//! and rendering when a token is minted.
//!
//! A template is parsed once into a tree whose strings are already split into literal text and
//! shortcodes (`{{ user.id || 'anon' }}`), and whose shortcode-free subtrees are kept as ready JSON,
//! so a mint only walks the tree and looks values up. This module owns the shortcode language
//! (roots, dot paths, `||` fallbacks, literals), the reserved claim names and the old shortcode
//! aliases. It does not know where user, organization or session data come from, nor the default
//! claims (§3.4) or signing: the caller builds a [`Context`] from its records and adds the default
//! claims after [`ClaimsTemplate::render`].

use std::fmt::{self, Write as _};

use serde_json::{Map, Value};

/// Top-level claim names a template may not set: the default claims and session-only claims.
pub const RESERVED_CLAIMS: &[&str] = &["azp", "exp", "iat", "iss", "jti", "nbf", "sub", "sid", "v", "pla", "fea"];

/// Shortcode names Clerk renamed in December 2024; templates written before still use the old ones,
/// so they are rewritten at parse time and the caller only provides the new fields.
const USER_ALIASES: &[(&str, &str)] =
    &[("has_verified_email", "email_verified"), ("has_verified_phone", "phone_number_verified")];

/// Longest offending text quoted in an error; a never-closed `{{` would otherwise quote the rest of
/// a possibly long string.
const MAX_QUOTED_CHARS: usize = 80;

/// Why a template's claims were refused (`message` + `long_message` as in spec §3.1's example).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ClaimsError {
    /// Short message, e.g. `'sub' is a reserved claim` (the API error's `message`).
    pub message: String,
    /// A sentence saying what is wrong and where (the API error's `long_message`).
    pub long_message: String,
}

/// The data shortcodes read. Each root is a JSON object whose fields are the shortcode
/// names under that root (e.g. `user` has `id`, `first_name`, `created_at` (seconds), `public_metadata`, ...).
/// `org` and `org_membership` are `None` when the session has no active organization.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Fields read by `{{user.*}}`.
    pub user: &'a Value,
    /// Fields read by `{{org.*}}`: the session's active organization, if any.
    pub org: Option<&'a Value>,
    /// Fields read by `{{org_membership.*}}`: the user's membership in the active organization.
    pub org_membership: Option<&'a Value>,
    /// Fields read by `{{session.*}}`.
    pub session: &'a Value,
}

/// A validated claims template, parsed once at save time (so minting does no parsing).
#[derive(Debug, Clone)]
pub struct ClaimsTemplate {
    claims: Vec<(String, Node)>,
}

impl ClaimsTemplate {
    /// Validates and parses `claims` (must be a JSON object; reserved top-level names refused;
    /// shortcode syntax errors and unknown roots refused, naming the offending text).
    pub fn parse(claims: &Value) -> Result<ClaimsTemplate, ClaimsError> {
        let Value::Object(object) = claims else {
            return Err(ClaimsError {
                message: "claims must be a JSON object".to_owned(),
                long_message: format!("The claims of a JWT template must be a JSON object, not {}.", kind(claims)),
            });
        };
        if let Some(name) = object.keys().find(|name| RESERVED_CLAIMS.contains(&name.as_str())) {
            return Err(ClaimsError {
                message: format!("'{name}' is a reserved claim"),
                long_message: format!("The claim '{name}' is a default claim and cannot be set by a JWT template."),
            });
        }
        let claims = object
            .iter()
            .map(|(name, value)| Ok((name.clone(), parse_node(value, &Location::Key(&Location::Top, name))?)))
            .collect::<Result<_, ClaimsError>>()?;
        Ok(ClaimsTemplate { claims })
    }

    /// Renders the claims for `ctx` (no default claims added; the caller adds them).
    #[must_use]
    pub fn render(&self, ctx: &Context<'_>) -> Map<String, Value> {
        let mut out = Map::with_capacity(self.claims.len());
        for (name, node) in &self.claims {
            out.insert(name.clone(), node.render(ctx));
        }
        out
    }
}

/// One JSON value of the template.
#[derive(Debug, Clone)]
enum Node {
    /// A subtree without shortcodes, copied as is.
    Static(Value),
    /// A string that is exactly one shortcode: replaced by the value, keeping its JSON type.
    Whole(Expr),
    /// A string mixing text and shortcodes: rendered as text, then trimmed.
    Text(Text),
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
}

impl Node {
    fn render(&self, ctx: &Context<'_>) -> Value {
        match self {
            Node::Static(value) => value.clone(),
            Node::Whole(expr) => expr.eval(ctx).cloned().unwrap_or(Value::Null),
            Node::Text(text) => Value::String(text.render(ctx)),
            Node::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (name, node) in fields {
                    out.insert(name.clone(), node.render(ctx));
                }
                Value::Object(out)
            }
            Node::Array(items) => Value::Array(items.iter().map(|node| node.render(ctx)).collect()),
        }
    }
}

#[derive(Debug, Clone)]
struct Text {
    parts: Vec<Part>,
    /// Sum of the literal parts' lengths, to size the output once.
    literal_len: usize,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Shortcode(Expr),
}

impl Text {
    fn render(&self, ctx: &Context<'_>) -> String {
        let mut out = String::with_capacity(self.literal_len + 16 * self.parts.len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Shortcode(expr) => match expr.eval(ctx) {
                    Some(Value::String(s)) => out.push_str(s),
                    // Value's Display is compact JSON, which is the text form the spec picks for
                    // numbers, booleans, null, objects and arrays. Writing to a String cannot fail.
                    Some(other) => {
                        let _ = write!(out, "{other}");
                    }
                    None => out.push_str("null"),
                },
            }
        }
        let trimmed = out.trim();
        if trimmed.len() == out.len() { out } else { trimmed.to_owned() }
    }
}

/// `a || b || 'c'`: never empty.
#[derive(Debug, Clone)]
struct Expr {
    operands: Vec<Operand>,
}

impl Expr {
    /// The first operand that is neither null nor false, else the last one; `None` means missing,
    /// which renders like null.
    fn eval<'v>(&'v self, ctx: &Context<'v>) -> Option<&'v Value> {
        let mut last = None;
        for operand in &self.operands {
            let value = match operand {
                Operand::Path(path) => path.lookup(ctx),
                Operand::Literal(value) => Some(value),
            };
            if !matches!(value, None | Some(Value::Null | Value::Bool(false))) {
                return value;
            }
            last = value;
        }
        last
    }
}

#[derive(Debug, Clone)]
enum Operand {
    Path(Path),
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    User,
    Org,
    OrgMembership,
    Session,
}

impl Root {
    fn from_name(name: &str) -> Option<Root> {
        match name {
            "user" => Some(Root::User),
            "org" => Some(Root::Org),
            "org_membership" => Some(Root::OrgMembership),
            "session" => Some(Root::Session),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Path {
    root: Root,
    /// At least one field: a bare root is not a catalogued value.
    fields: Vec<Field>,
}

#[derive(Debug, Clone)]
struct Field {
    key: String,
    /// The key as an array index, when it is one, so lookups do not parse numbers.
    index: Option<usize>,
}

impl Field {
    fn new(key: &str) -> Field {
        let index = if key.bytes().all(|b| b.is_ascii_digit()) { key.parse().ok() } else { None };
        Field { key: key.to_owned(), index }
    }
}

impl Path {
    fn lookup<'v>(&self, ctx: &Context<'v>) -> Option<&'v Value> {
        let mut value = match self.root {
            Root::User => ctx.user,
            Root::Org => ctx.org?,
            // Membership data only means something for the active organization.
            Root::OrgMembership => ctx.org.and(ctx.org_membership)?,
            Root::Session => ctx.session,
        };
        for field in &self.fields {
            value = match value {
                Value::Object(object) => object.get(&field.key)?,
                Value::Array(items) => items.get(field.index?)?,
                _ => return None,
            };
        }
        Some(value)
    }
}

/// Where a value sits in the claims, for error messages (`scopes[0].fixed_params.org`); built on
/// the stack while parsing and only formatted when something is wrong.
enum Location<'p> {
    Top,
    Key(&'p Location<'p>, &'p str),
    Index(&'p Location<'p>, usize),
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Top => Ok(()),
            Location::Key(Location::Top, key) => f.write_str(key),
            Location::Key(parent, key) => write!(f, "{parent}.{key}"),
            Location::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

fn parse_node(value: &Value, at: &Location<'_>) -> Result<Node, ClaimsError> {
    Ok(match value {
        Value::String(text) => parse_string(text, at)?,
        Value::Array(items) => {
            let nodes = items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_node(item, &Location::Index(at, i)))
                .collect::<Result<Vec<_>, _>>()?;
            if nodes.iter().all(|node| matches!(node, Node::Static(_))) {
                Node::Static(Value::Array(nodes.into_iter().map(into_static).collect()))
            } else {
                Node::Array(nodes)
            }
        }
        Value::Object(object) => {
            let fields = object
                .iter()
                .map(|(key, item)| Ok((key.clone(), parse_node(item, &Location::Key(at, key))?)))
                .collect::<Result<Vec<_>, ClaimsError>>()?;
            if fields.iter().all(|(_, node)| matches!(node, Node::Static(_))) {
                Node::Static(Value::Object(fields.into_iter().map(|(key, node)| (key, into_static(node))).collect()))
            } else {
                Node::Object(fields)
            }
        }
        other => Node::Static(other.clone()),
    })
}

fn into_static(node: Node) -> Value {
    let Node::Static(value) = node else { unreachable!("callers check that every node is static") };
    value
}

fn parse_string(text: &str, at: &Location<'_>) -> Result<Node, ClaimsError> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut pos = 0;
    while let Some(found) = text[pos..].find("{{") {
        let mut start = pos + found;
        // In a run of three or more braces the shortcode opens at the last two, so
        // `{{{user.id}}}` renders as `{user_…}` instead of being refused.
        while text[start + 2..].starts_with('{') {
            start += 1;
        }
        literal.push_str(&text[pos..start]);
        let (expr, end) = parse_shortcode(text, start).map_err(|problem| shortcode_error(text, start, at, &problem))?;
        if !literal.is_empty() {
            parts.push(Part::Literal(std::mem::take(&mut literal)));
        }
        parts.push(Part::Shortcode(expr));
        pos = end;
    }
    literal.push_str(&text[pos..]);
    if parts.is_empty() {
        return Ok(Node::Static(Value::String(literal)));
    }
    if literal.is_empty() && parts.len() == 1 {
        if let Some(Part::Shortcode(expr)) = parts.pop() {
            return Ok(Node::Whole(expr));
        }
        unreachable!("a lone part with no text around it is a shortcode");
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    let literal_len = parts.iter().map(|part| if let Part::Literal(text) = part { text.len() } else { 0 }).sum();
    Ok(Node::Text(Text { parts, literal_len }))
}

fn shortcode_error(text: &str, start: usize, at: &Location<'_>, problem: &Problem) -> ClaimsError {
    let rest = &text[start..];
    let shortcode = &rest[..rest.find("}}").map_or(rest.len(), |end| end + 2)];
    let quoted = if shortcode.chars().count() > MAX_QUOTED_CHARS {
        format!("{}…", shortcode.chars().take(MAX_QUOTED_CHARS - 1).collect::<String>())
    } else {
        shortcode.to_owned()
    };
    ClaimsError {
        message: format!("invalid shortcode '{quoted}' in claims"),
        long_message: format!("The shortcode '{quoted}' in the claim '{at}' {problem}."),
    }
}

/// What is wrong inside one shortcode; completes the sentence "The shortcode '…' in the claim '…'".
#[derive(Debug, thiserror::Error)]
enum Problem {
    #[error("is not closed with '}}}}'")]
    Unclosed,
    #[error("is empty; a shortcode names a value such as {{{{user.id}}}}")]
    Empty,
    #[error("has an empty operand next to '||'")]
    MissingOperand,
    #[error("has unexpected text '{0}'; operands are separated by '||'")]
    Unexpected(String),
    #[error("has a string literal without its closing quote")]
    UnterminatedString,
    #[error("has the escape '\\{0}' in a string literal; only \\' and \\\\ are allowed")]
    BadEscape(char),
    #[error("has the invalid number '{0}'; numbers are written like 42, -7 or 0.5")]
    BadNumber(String),
    #[error("has an empty field name in a dot path")]
    EmptyField,
    #[error("uses the unknown root '{0}'; shortcodes start with user, org, org_membership or session")]
    UnknownRoot(String),
    #[error("names the root '{0}' without a field, e.g. {{{{{0}.id}}}}")]
    BareRoot(String),
}

/// Parses the shortcode whose `{{` is at `start`; returns it and the position after its `}}`.
fn parse_shortcode(src: &str, start: usize) -> Result<(Expr, usize), Problem> {
    let mut p = Parser { src, pos: start + 2 };
    let mut operands = Vec::new();
    loop {
        p.skip_whitespace();
        let rest = p.rest();
        if rest.is_empty() {
            return Err(Problem::Unclosed);
        }
        if rest.starts_with("}}") && operands.is_empty() {
            return Err(Problem::Empty);
        }
        if rest.starts_with("}}") || rest.starts_with("||") {
            return Err(Problem::MissingOperand);
        }
        operands.push(p.operand()?);
        p.skip_whitespace();
        if p.eat("||") {
            continue;
        }
        if p.eat("}}") {
            return Ok((Expr { operands }, p.pos));
        }
        if !p.rest().contains("}}") {
            return Err(Problem::Unclosed);
        }
        return Err(Problem::Unexpected(p.token()));
    }
}

/// Characters of a root, a field name or a keyword: anything but whitespace and the characters
/// the shortcode grammar itself uses, so metadata keys like `first-login` or `Straße` work.
fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '.' | '|' | '\'' | '{' | '}')
}

struct Parser<'s> {
    src: &'s str,
    pos: usize,
}

impl<'s> Parser<'s> {
    fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    fn skip_whitespace(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        let found = self.rest().starts_with(token);
        if found {
            self.pos += token.len();
        }
        found
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'s str {
        let rest = self.rest();
        let len = rest.find(|c| !keep(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// The text at the cursor up to the next space or brace (at least one character), to quote in
    /// an error.
    fn token(&self) -> String {
        let rest = self.rest();
        let len = match rest.find(|c: char| c.is_whitespace() || c == '}') {
            Some(0) => rest.chars().next().map_or(0, char::len_utf8),
            Some(len) => len,
            None => rest.len(),
        };
        rest[..len].to_owned()
    }

    fn operand(&mut self) -> Result<Operand, Problem> {
        match self.rest().chars().next() {
            Some('\'') => self.string_literal(),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            _ => self.path_or_keyword(),
        }
    }

    fn string_literal(&mut self) -> Result<Operand, Problem> {
        let mut text = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' => {
                    self.pos += i + 1;
                    return Ok(Operand::Literal(Value::String(text)));
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('\'' | '\\'))) => text.push(escaped),
                    Some((_, other)) => return Err(Problem::BadEscape(other)),
                    None => break,
                },
                c => text.push(c),
            }
        }
        Err(Problem::UnterminatedString)
    }

    fn number(&mut self) -> Result<Operand, Problem> {
        let text = self.take_while(|c| is_word_char(c) || c == '.');
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        let well_formed = match unsigned.split_once('.') {
            Some((int, frac)) => digits(int) && digits(frac),
            None => digits(unsigned),
        };
        // serde_json also refuses what JSON refuses, e.g. leading zeros.
        match text.parse::<serde_json::Number>() {
            Ok(number) if well_formed => Ok(Operand::Literal(Value::Number(number))),
            _ => Err(Problem::BadNumber(text.to_owned())),
        }
    }

    fn path_or_keyword(&mut self) -> Result<Operand, Problem> {
        let root = self.take_while(is_word_char);
        if root.is_empty() {
            return Err(Problem::Unexpected(self.token()));
        }
        let mut fields = Vec::new();
        loop {
            let before = self.pos;
            self.skip_whitespace();
            if !self.eat(".") {
                self.pos = before;
                break;
            }
            self.skip_whitespace();
            let key = self.take_while(is_word_char);
            if key.is_empty() {
                return Err(Problem::EmptyField);
            }
            fields.push(Field::new(key));
        }
        if fields.is_empty() {
            match root {
                "true" => return Ok(Operand::Literal(Value::Bool(true))),
                "false" => return Ok(Operand::Literal(Value::Bool(false))),
                _ => {}
            }
        }
        let Some(known) = Root::from_name(root) else { return Err(Problem::UnknownRoot(root.to_owned())) };
        if fields.is_empty() {
            return Err(Problem::BareRoot(root.to_owned()));
        }
        if known == Root::User
            && let Some((_, new)) = USER_ALIASES.iter().find(|(old, _)| *old == fields[0].key)
        {
            fields[0] = Field::new(new);
        }
        Ok(Operand::Path(Path { root: known, fields }))
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn user() -> Value {
        json!({
            "id": "user_2x",
            "first_name": "Ana",
            "last_name": null,
            "full_name": "Ana",
            "username": "",
            "created_at": 1764586800,
            "email_verified": true,
            "phone_number_verified": false,
            "two_factor_enabled": false,
            "public_metadata": {
                "plan": "pro",
                "score": 4.5,
                "tags": ["beta", "early"],
                "addresses": {"Home": "1 Main St", "0": "zero key"},
                "items": [{"name": "first"}, {"name": "second"}],
                "padded": "  spaced  ",
                "it's": "quoted key"
            }
        })
    }

    fn org() -> Value {
        json!({"id": "org_2a", "name": "Acme", "slug": "acme", "role": "org:admin", "public_metadata": {}})
    }

    fn membership() -> Value {
        json!({"public_metadata": {"team": "web"}, "permissions": ["org:analytics:read"]})
    }

    fn session() -> Value {
        json!({"actor": null, "reverification_id": null})
    }

    /// Renders `claims` against user `user_2x` (Ana, no last name), in org `acme` when `in_org`.
    fn render_in(claims: Value, in_org: bool) -> Map<String, Value> {
        let (user, org, membership, session) = (user(), org(), membership(), session());
        let ctx = Context {
            user: &user,
            org: in_org.then_some(&org),
            org_membership: in_org.then_some(&membership),
            session: &session,
        };
        ClaimsTemplate::parse(&claims).expect("template is valid").render(&ctx)
    }

    /// Renders one template value (as the claim `claim`), in org `acme`.
    fn value(template: &str) -> Value {
        value_in(template, true)
    }

    fn value_in(template: &str, in_org: bool) -> Value {
        render_in(json!({"claim": template}), in_org).remove("claim").expect("claim rendered")
    }

    fn parse_error(claims: Value) -> ClaimsError {
        ClaimsTemplate::parse(&claims).expect_err("template is refused")
    }

    fn message(template: &str) -> String {
        parse_error(json!({"claim": template})).message
    }

    #[test]
    fn spec_example_table() {
        assert_eq!(value("{{org.slug}}"), json!("acme"));
        assert_eq!(value("frontend_jwt_{{org.slug}}"), json!("frontend_jwt_acme"));
        assert_eq!(value("{{user.last_name}} {{user.first_name}}"), json!("null Ana"));
        assert_eq!(value("{{user.last_name || user.first_name || 'anon'}}"), json!("Ana"));
        assert_eq!(value("{{org_membership.permissions}}"), json!(["org:analytics:read"]));
        assert_eq!(value("{{user.created_at}}"), json!(1764586800));
        assert_eq!(value_in("{{org.slug}}", false), Value::Null);
        assert_eq!(value_in("frontend_jwt_{{org.slug}}", false), json!("frontend_jwt_null"));
    }

    #[test]
    fn tinybird_template_renders_the_spec_payload() {
        let claims = json!({
            "name": "frontend_jwt_{{org.slug}}",
            "limits": {"rps": 10},
            "workspace_id": "5a0c4c1e-1111-2222-3333-444455556666",
            "scopes": [
                {"type": "PIPES:READ", "resource": "top_pages", "fixed_params": {"org": "{{org.slug}}"}},
                {"type": "PIPES:READ", "resource": "user_activity", "fixed_params": {"org": "{{org.slug}}", "user": "{{user.id}}"}}
            ]
        });
        let expected = json!({
            "name": "frontend_jwt_acme",
            "limits": {"rps": 10},
            "workspace_id": "5a0c4c1e-1111-2222-3333-444455556666",
            "scopes": [
                {"type": "PIPES:READ", "resource": "top_pages", "fixed_params": {"org": "acme"}},
                {"type": "PIPES:READ", "resource": "user_activity", "fixed_params": {"org": "acme", "user": "user_2x"}}
            ]
        });
        let rendered = Value::Object(render_in(claims, true));
        // Compared as text so that key order is checked too.
        assert_eq!(rendered.to_string(), expected.to_string());
    }

    #[test]
    fn whole_value_keeps_the_json_type() {
        assert_eq!(value("{{user.public_metadata.addresses}}"), json!({"Home": "1 Main St", "0": "zero key"}));
        assert_eq!(value("{{user.public_metadata.tags}}"), json!(["beta", "early"]));
        assert_eq!(value("{{user.public_metadata.score}}"), json!(4.5));
        assert_eq!(value("{{user.email_verified}}"), json!(true));
        assert_eq!(value("{{user.phone_number_verified}}"), json!(false));
        assert_eq!(value("{{user.id}}"), json!("user_2x"));
        assert_eq!(value("{{user.last_name}}"), Value::Null);
        assert_eq!(value("{{session.actor}}"), Value::Null);
    }

    #[test]
    fn interpolation_converts_values_to_text() {
        assert_eq!(value("at {{user.created_at}}"), json!("at 1764586800"));
        assert_eq!(value("score {{user.public_metadata.score}}"), json!("score 4.5"));
        assert_eq!(value("verified={{user.email_verified}},{{user.two_factor_enabled}}"), json!("verified=true,false"));
        assert_eq!(value("tags={{user.public_metadata.tags}}"), json!(r#"tags=["beta","early"]"#));
        assert_eq!(value("m={{org_membership.public_metadata}}"), json!(r#"m={"team":"web"}"#));
        assert_eq!(value("x-{{user.nope}}-{{session.actor}}"), json!("x-null-null"));
        assert_eq!(value("{{org.slug}}/{{user.id}}"), json!("acme/user_2x"));
    }

    #[test]
    fn interpolated_strings_are_trimmed_but_whole_values_are_not() {
        assert_eq!(value("  {{user.first_name}} {{user.last_name || ''}} "), json!("Ana"));
        assert_eq!(value("{{user.public_metadata.padded}}"), json!("  spaced  "));
        assert_eq!(value("[{{user.public_metadata.padded}}]"), json!("[  spaced  ]"));
        assert_eq!(value(" {{user.public_metadata.padded}}"), json!("spaced"));
        // A string without shortcodes is not interpolated, so it is left alone.
        assert_eq!(value("  plain  "), json!("  plain  "));
    }

    #[test]
    fn shortcodes_render_at_any_depth() {
        let rendered = render_in(
            json!({
                "nested": {"a": [["{{user.id}}", 1, {"b": "{{org.slug}}", "c": [true, null]}]], "static": {"k": [1, "x"]}},
                "list": ["{{user.public_metadata.tags}}", "{{user.created_at}}", "n:{{user.created_at}}"]
            }),
            true,
        );
        assert_eq!(
            Value::Object(rendered),
            json!({
                "nested": {"a": [["user_2x", 1, {"b": "acme", "c": [true, null]}]], "static": {"k": [1, "x"]}},
                "list": [["beta", "early"], 1764586800, "n:1764586800"]
            })
        );
    }

    #[test]
    fn non_string_values_are_copied() {
        let claims = json!({"n": 1, "f": 1.5, "b": false, "z": null, "o": {}, "a": []});
        assert_eq!(Value::Object(render_in(claims.clone(), true)), claims);
    }

    #[test]
    fn fallbacks_pick_the_first_value_that_is_neither_null_nor_false() {
        assert_eq!(value("{{user.username || 'anon'}}"), json!(""), "an empty string is not skipped");
        assert_eq!(value("{{user.two_factor_enabled || 'off'}}"), json!("off"));
        assert_eq!(value("{{user.nope || user.created_at}}"), json!(1764586800));
        assert_eq!(value("{{user.nope || user.public_metadata.tags}}"), json!(["beta", "early"]));
        assert_eq!(value("{{user.last_name || 7}}"), json!(7));
        assert_eq!(value("{{user.last_name || -2.5}}"), json!(-2.5));
        assert_eq!(value("{{user.last_name || true}}"), json!(true));
        assert_eq!(value("{{'first' || 'second'}}"), json!("first"));
        assert_eq!(value("{{user.id || user.first_name}}"), json!("user_2x"));
        assert_eq!(value("{{0 || 'x'}}"), json!(0), "zero is not skipped");
    }

    #[test]
    fn fallbacks_that_all_fail_return_the_last_operand() {
        assert_eq!(value("{{user.last_name || user.two_factor_enabled}}"), json!(false));
        assert_eq!(value("{{user.two_factor_enabled || user.last_name}}"), Value::Null);
        assert_eq!(value("{{user.nope || false}}"), json!(false));
        assert_eq!(value("{{false || user.nope}}"), Value::Null);
        assert_eq!(value("name: {{user.last_name || user.two_factor_enabled}}"), json!("name: false"));
        assert_eq!(value_in("{{org.slug || org_membership.permissions}}", false), Value::Null);
        assert_eq!(value_in("{{org.slug || 'personal'}}", false), json!("personal"));
    }

    #[test]
    fn string_literals_unescape_quotes_and_backslashes() {
        assert_eq!(value(r"{{user.nope || 'it\'s'}}"), json!("it's"));
        assert_eq!(value(r"{{user.nope || 'back\\slash'}}"), json!(r"back\slash"));
        assert_eq!(value(r"{{user.nope || '\\'}}"), json!(r"\"));
        assert_eq!(value("{{user.nope || 'a || b }} {{ c'}}"), json!("a || b }} {{ c"));
        assert_eq!(value("{{ user.nope || '  padded  ' }}"), json!("  padded  "));
        assert_eq!(value("<{{ user.nope || '' }}>"), json!("<>"));
    }

    #[test]
    fn dot_paths_reach_into_objects_and_arrays() {
        assert_eq!(value("{{user.public_metadata.addresses.Home}}"), json!("1 Main St"));
        assert_eq!(value("{{user.public_metadata.tags.0}}"), json!("beta"));
        assert_eq!(value("{{user.public_metadata.tags.1}}"), json!("early"));
        assert_eq!(value("{{user.public_metadata.tags.2}}"), Value::Null);
        assert_eq!(value("{{user.public_metadata.tags.-1}}"), Value::Null);
        assert_eq!(value("{{user.public_metadata.tags.first}}"), Value::Null);
        assert_eq!(value("{{user.public_metadata.items.1.name}}"), json!("second"));
        assert_eq!(value("{{user.public_metadata.addresses.0}}"), json!("zero key"));
        assert_eq!(value("{{user.public_metadata.plan.length}}"), Value::Null);
        assert_eq!(value("{{user.public_metadata.nope.deeper}}"), Value::Null);
    }

    #[test]
    fn unknown_fields_under_known_roots_render_null() {
        assert_eq!(value("{{user.i_dont_exist}}"), Value::Null);
        assert_eq!(value("{{session.reverification_id}}"), Value::Null);
        assert_eq!(value("{{user.primary_email_address_verified}}"), Value::Null);
    }

    #[test]
    fn old_verification_names_are_aliases() {
        assert_eq!(value("{{user.has_verified_email}}"), json!(true));
        assert_eq!(value("{{user.has_verified_phone}}"), json!(false));
        assert_eq!(value("{{org.has_verified_email}}"), Value::Null, "aliases are for user fields only");
    }

    #[test]
    fn whitespace_inside_braces_is_ignored() {
        assert_eq!(value("{{   org.slug   }}"), json!("acme"));
        assert_eq!(value("{{\n\tuser . public_metadata . tags . 0\n}}"), json!("beta"));
        assert_eq!(value("{{user.last_name||user.first_name}}"), json!("Ana"));
    }

    #[test]
    fn no_active_organization_makes_org_shortcodes_null() {
        assert_eq!(value_in("{{org.id}}", false), Value::Null);
        assert_eq!(value_in("{{org.public_metadata.tier}}", false), Value::Null);
        assert_eq!(value_in("{{org_membership.permissions}}", false), Value::Null);
        assert_eq!(value_in("{{org.role}}:{{org_membership.permissions}}", false), json!("null:null"));
        assert_eq!(value_in("{{user.id}}", false), json!("user_2x"));

        let (user, membership, session) = (user(), membership(), session());
        let ctx = Context { user: &user, org: None, org_membership: Some(&membership), session: &session };
        let template = ClaimsTemplate::parse(&json!({"p": "{{org_membership.permissions}}"})).unwrap();
        assert_eq!(template.render(&ctx)["p"], Value::Null, "membership data needs an active org");
    }

    #[test]
    fn keys_are_never_templated() {
        let rendered = render_in(json!({"{{user.id}}": {"{{org.slug}}": "{{org.slug}}"}}), true);
        assert_eq!(Value::Object(rendered), json!({"{{user.id}}": {"{{org.slug}}": "acme"}}));
    }

    #[test]
    fn lone_braces_are_literal_text() {
        assert_eq!(value("{ {user.id} }"), json!("{ {user.id} }"));
        assert_eq!(value("a } b }} c"), json!("a } b }} c"));
        assert_eq!(value(r#"{"a":{"b":1}}"#), json!(r#"{"a":{"b":1}}"#));
        assert_eq!(value("{{{user.id}}}"), json!("{user_2x}"));
        assert_eq!(value("{ {{user.id}} }"), json!("{ user_2x }"));
    }

    #[test]
    fn reserved_claims_are_refused() {
        let error = parse_error(json!({"name": "x", "sub": "{{user.id}}"}));
        assert_eq!(error.message, "'sub' is a reserved claim");
        assert_eq!(error.long_message, "The claim 'sub' is a default claim and cannot be set by a JWT template.");
        assert_eq!(error.to_string(), "'sub' is a reserved claim");

        for name in RESERVED_CLAIMS {
            let claims = Value::Object(Map::from_iter([(name.to_string(), json!(1))]));
            assert_eq!(parse_error(claims).message, format!("'{name}' is a reserved claim"));
        }
        assert_eq!(parse_error(json!({"a": 1, "jti": 1, "exp": 2})).message, "'jti' is a reserved claim");
        // Reserved names are checked before shortcodes, wherever they appear.
        assert_eq!(parse_error(json!({"bad": "{{x.y}}", "iss": 1})).message, "'iss' is a reserved claim");
    }

    #[test]
    fn reserved_names_below_the_top_level_are_allowed() {
        let rendered = render_in(json!({"actor": {"sub": "{{user.id}}", "exp": 1}, "Sub": 2}), true);
        assert_eq!(Value::Object(rendered), json!({"actor": {"sub": "user_2x", "exp": 1}, "Sub": 2}));
    }

    #[test]
    fn unknown_roots_are_refused() {
        let error = parse_error(json!({"scopes": [{"fixed_params": {"org": "{{organization.id}}"}}]}));
        assert_eq!(error.message, "invalid shortcode '{{organization.id}}' in claims");
        assert_eq!(
            error.long_message,
            "The shortcode '{{organization.id}}' in the claim 'scopes[0].fixed_params.org' uses the unknown root \
             'organization'; shortcodes start with user, org, org_membership or session."
        );
        assert_eq!(message("x {{ user.id || member.id }}"), "invalid shortcode '{{ user.id || member.id }}' in claims");
        assert_eq!(message("{{null}}"), "invalid shortcode '{{null}}' in claims");
        assert_eq!(message("{{User.id}}"), "invalid shortcode '{{User.id}}' in claims");
    }

    #[test]
    fn syntax_errors_are_refused_naming_the_text() {
        let error = parse_error(json!({"name": "frontend_jwt_{{user.id"}));
        assert_eq!(error.message, "invalid shortcode '{{user.id' in claims");
        assert_eq!(error.long_message, "The shortcode '{{user.id' in the claim 'name' is not closed with '}}'.");

        let long_message = |template: &str| parse_error(json!({"c": template})).long_message;
        assert_eq!(message("{{}}"), "invalid shortcode '{{}}' in claims");
        assert_eq!(
            long_message("{{ }}"),
            "The shortcode '{{ }}' in the claim 'c' is empty; a shortcode names a value such as {{user.id}}."
        );
        assert!(long_message("{{user.id}").contains("is not closed"));
        assert!(long_message("{{user.id || }}").contains("empty operand"));
        assert!(long_message("{{ || user.id }}").contains("empty operand"));
        assert!(long_message("{{user.id user.first_name}}").contains("unexpected text 'user.first_name'"));
        assert!(long_message("{{user.id | 'x'}}").contains("unexpected text '|'"));
        assert!(long_message("{{'x'.y}}").contains("unexpected text '.y'"));
        assert!(long_message("{{user.nope || 'open}}").contains("without its closing quote"));
        assert!(long_message(r"{{user.nope || 'a\nb'}}").contains(r"the escape '\n'"));
        assert!(long_message("{{user.nope || 1.}}").contains("invalid number '1.'"));
        assert!(long_message("{{user.nope || 007}}").contains("invalid number '007'"));
        assert!(long_message("{{user.nope || 12abc}}").contains("invalid number '12abc'"));
        assert!(long_message("{{user..id}}").contains("empty field name"));
        assert!(long_message("{{user.}}").contains("empty field name"));
        assert!(long_message("{{.id}}").contains("unexpected text '.id'"));
        assert_eq!(
            long_message("{{user}}"),
            "The shortcode '{{user}}' in the claim 'c' names the root 'user' without a field, e.g. {{user.id}}."
        );
        assert_eq!(message("ok {{user.id}} then {{org.slug"), "invalid shortcode '{{org.slug' in claims");
    }

    #[test]
    fn errors_quote_at_most_a_bounded_text() {
        let template = format!("{{{{user.id {}", "x".repeat(500));
        let error = parse_error(json!({ "c": template }));
        assert!(error.message.chars().count() < 120, "{}", error.message);
        assert!(error.message.contains('…'));
    }

    #[test]
    fn claims_must_be_an_object() {
        let error = parse_error(json!(["{{user.id}}"]));
        assert_eq!(error.message, "claims must be a JSON object");
        assert_eq!(error.long_message, "The claims of a JWT template must be a JSON object, not an array.");
    }

    #[test]
    fn empty_claims_render_empty() {
        assert!(render_in(json!({}), true).is_empty());
    }
}

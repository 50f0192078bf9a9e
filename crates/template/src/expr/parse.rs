//! A recursive-descent parser for Python's expression grammar (3.11), producing [`Expr`].
//! It recognises more than the sandbox allows so that rejected constructs are named precisely.

use std::sync::Arc;

use super::lex::{Invalid, StrPart, Tok, tokenize, unescape};
use super::{BinOp, BoolOp, CmpOp, CompKind, Comprehension, Const, Expr, Ident, Keyword, SetOp, Target, UnaryOp};

/// Why parsing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fail {
    /// Not valid Python.
    Syntax,
    /// Nested deeper than the configured limit.
    TooDeep,
}

impl From<Invalid> for Fail {
    fn from(_: Invalid) -> Self {
        Fail::Syntax
    }
}

type PResult<T> = Result<T, Fail>;

const KEYWORDS: [&str; 35] = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    max_depth: usize,
}

/// Parses the content of `{{ … }}`: an expression (or bare tuple), possibly written as an
/// assignment, which the sandbox then rejects.
pub(crate) fn parse_expression(src: &str, max_depth: usize) -> PResult<Expr> {
    let mut p = Parser::new(src, max_depth)?;
    let first = p.star_expressions()?;
    let expr = if p.eat("=") {
        let mut targets = vec![first];
        let mut value = p.star_expressions()?;
        while p.eat("=") {
            targets.push(value);
            value = p.star_expressions()?;
        }
        Expr::Assign { targets, value: Box::new(value) }
    } else {
        first
    };
    p.end()?;
    Ok(expr)
}

/// Parses a condition or other statement expression (`if`, `elif`, `while`).
pub(crate) fn parse_condition(src: &str, max_depth: usize) -> PResult<Expr> {
    let mut p = Parser::new(src, max_depth)?;
    let e = p.named_expression()?;
    p.end()?;
    Ok(e)
}

/// Parses `targets in iterable` (the text after `for`).
pub(crate) fn parse_for(src: &str, max_depth: usize) -> PResult<(Target, Expr)> {
    let mut p = Parser::new(src, max_depth)?;
    let target = p.target_list()?;
    p.expect_name("in")?;
    let iter = p.star_expressions()?;
    p.end()?;
    Ok((target, iter))
}

/// Parses `target = expr`, `target += expr` or `target -= expr` (the text after `set`).
pub(crate) fn parse_set(src: &str, max_depth: usize) -> PResult<(Target, SetOp, Expr)> {
    let mut p = Parser::new(src, max_depth)?;
    let target = p.target_list()?;
    let op = if p.eat("=") {
        SetOp::Assign
    } else if p.eat("+=") {
        SetOp::Add
    } else if p.eat("-=") {
        SetOp::Sub
    } else {
        return Err(Fail::Syntax);
    };
    let value = p.star_expressions()?;
    p.end()?;
    Ok((target, op, value))
}

fn name(n: &Arc<str>) -> Expr {
    Expr::Name(Ident { name: n.clone(), slot: 0 })
}

impl Parser {
    fn new(src: &str, max_depth: usize) -> PResult<Self> {
        Ok(Parser { toks: tokenize(src)?, pos: 0, depth: 0, max_depth })
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.pos]
    }

    fn peek_at(&self, n: usize) -> &Tok {
        self.toks.get(self.pos + n).unwrap_or(&Tok::End)
    }

    fn bump(&mut self) -> Tok {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    fn is_name(&self, n: &str) -> bool {
        matches!(self.peek(), Tok::Name(x) if &**x == n)
    }

    fn eat(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn eat_name(&mut self, n: &str) -> bool {
        if self.is_name(n) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, op: &str) -> PResult<()> {
        if self.eat(op) { Ok(()) } else { Err(Fail::Syntax) }
    }

    fn expect_name(&mut self, n: &str) -> PResult<()> {
        if self.eat_name(n) { Ok(()) } else { Err(Fail::Syntax) }
    }

    fn end(&self) -> PResult<()> {
        if matches!(self.peek(), Tok::End) { Ok(()) } else { Err(Fail::Syntax) }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > self.max_depth { Err(Fail::TooDeep) } else { Ok(()) }
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Whether the next token can start an expression.
    fn starts_expr(&self) -> bool {
        match self.peek() {
            Tok::End => false,
            Tok::Op(o) => matches!(*o, "(" | "[" | "{" | "-" | "+" | "~" | "..." | "*"),
            Tok::Name(n) => {
                !KEYWORDS.contains(&&**n) || matches!(&**n, "not" | "lambda" | "await" | "None" | "True" | "False")
            }
            _ => true,
        }
    }

    /// `expr (, expr)* [,]` — a bare tuple when there is a comma.
    fn star_expressions(&mut self) -> PResult<Expr> {
        let first = self.star_named()?;
        if !self.is_op(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(",") {
            if !self.starts_expr() {
                break;
            }
            items.push(self.star_named()?);
        }
        Ok(Expr::Tuple(items))
    }

    fn star_named(&mut self) -> PResult<Expr> {
        if self.eat("*") {
            return Ok(Expr::Starred(Box::new(self.bitor()?)));
        }
        self.named_expression()
    }

    fn named_expression(&mut self) -> PResult<Expr> {
        if let (Tok::Name(n), Tok::Op(":=")) = (self.peek().clone(), self.peek_at(1).clone()) {
            self.bump();
            self.bump();
            let value = self.expression()?;
            return Ok(Expr::Walrus { target: Box::new(name(&n)), value: Box::new(value) });
        }
        self.expression()
    }

    fn expression(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.expression_inner();
        self.leave();
        r
    }

    fn expression_inner(&mut self) -> PResult<Expr> {
        if self.eat_name("lambda") {
            return self.lambda();
        }
        let body = self.disjunction()?;
        if self.eat_name("if") {
            let test = self.disjunction()?;
            self.expect_name("else")?;
            let orelse = self.expression()?;
            return Ok(Expr::IfExp { test: Box::new(test), body: Box::new(body), orelse: Box::new(orelse) });
        }
        Ok(body)
    }

    fn lambda(&mut self) -> PResult<Expr> {
        let mut args = Vec::new();
        let mut defaults = Vec::new();
        while !self.is_op(":") {
            match self.bump() {
                Tok::Name(n) if !KEYWORDS.contains(&&*n) => args.push(n),
                _ => return Err(Fail::Syntax),
            }
            if self.eat("=") {
                defaults.push(self.expression()?);
            } else if !defaults.is_empty() {
                return Err(Fail::Syntax);
            }
            if !self.eat(",") {
                break;
            }
        }
        self.expect(":")?;
        let body = self.expression()?;
        Ok(Expr::Lambda { args, defaults, body: Box::new(body) })
    }

    fn disjunction(&mut self) -> PResult<Expr> {
        let first = self.conjunction()?;
        if !self.is_name("or") {
            return Ok(first);
        }
        let mut values = vec![first];
        while self.eat_name("or") {
            values.push(self.conjunction()?);
        }
        Ok(Expr::Bool { op: BoolOp::Or, values })
    }

    fn conjunction(&mut self) -> PResult<Expr> {
        let first = self.inversion()?;
        if !self.is_name("and") {
            return Ok(first);
        }
        let mut values = vec![first];
        while self.eat_name("and") {
            values.push(self.inversion()?);
        }
        Ok(Expr::Bool { op: BoolOp::And, values })
    }

    fn inversion(&mut self) -> PResult<Expr> {
        if self.eat_name("not") {
            self.enter()?;
            let operand = self.inversion();
            self.leave();
            return Ok(Expr::Unary { op: UnaryOp::Not, operand: Box::new(operand?) });
        }
        self.comparison()
    }

    fn comp_op(&mut self) -> Option<CmpOp> {
        let op = match self.peek() {
            Tok::Op("==") => CmpOp::Eq,
            Tok::Op("!=") => CmpOp::NotEq,
            Tok::Op("<") => CmpOp::Lt,
            Tok::Op("<=") => CmpOp::LtE,
            Tok::Op(">") => CmpOp::Gt,
            Tok::Op(">=") => CmpOp::GtE,
            Tok::Name(n) if &**n == "in" => CmpOp::In,
            Tok::Name(n) if &**n == "is" => {
                if matches!(self.peek_at(1), Tok::Name(m) if &**m == "not") {
                    self.bump();
                    CmpOp::IsNot
                } else {
                    CmpOp::Is
                }
            }
            Tok::Name(n) if &**n == "not" && matches!(self.peek_at(1), Tok::Name(m) if &**m == "in") => {
                self.bump();
                CmpOp::NotIn
            }
            _ => return None,
        };
        self.bump();
        Some(op)
    }

    fn comparison(&mut self) -> PResult<Expr> {
        let left = self.bitor()?;
        let mut ops = Vec::new();
        let mut comparators = Vec::new();
        while let Some(op) = self.comp_op() {
            ops.push(op);
            comparators.push(self.bitor()?);
        }
        if ops.is_empty() { Ok(left) } else { Ok(Expr::Compare { left: Box::new(left), ops, comparators }) }
    }

    fn binary(&mut self, ops: &[(&'static str, BinOp)], next: fn(&mut Self) -> PResult<Expr>) -> PResult<Expr> {
        let mut left = next(self)?;
        loop {
            let Some(op) = ops.iter().find(|(t, _)| self.is_op(t)).map(|(_, op)| *op) else {
                return Ok(left);
            };
            self.bump();
            let right = next(self)?;
            left = Expr::Bin { left: Box::new(left), op, right: Box::new(right) };
        }
    }

    fn bitor(&mut self) -> PResult<Expr> {
        self.binary(&[("|", BinOp::BitOr)], Self::bitxor)
    }

    fn bitxor(&mut self) -> PResult<Expr> {
        self.binary(&[("^", BinOp::BitXor)], Self::bitand)
    }

    fn bitand(&mut self) -> PResult<Expr> {
        self.binary(&[("&", BinOp::BitAnd)], Self::shift)
    }

    fn shift(&mut self) -> PResult<Expr> {
        self.binary(&[("<<", BinOp::LShift), (">>", BinOp::RShift)], Self::sum)
    }

    fn sum(&mut self) -> PResult<Expr> {
        self.binary(&[("+", BinOp::Add), ("-", BinOp::Sub)], Self::term)
    }

    fn term(&mut self) -> PResult<Expr> {
        self.binary(
            &[("*", BinOp::Mult), ("//", BinOp::FloorDiv), ("/", BinOp::Div), ("%", BinOp::Mod), ("@", BinOp::MatMult)],
            Self::factor,
        )
    }

    fn factor(&mut self) -> PResult<Expr> {
        let op = match self.peek() {
            Tok::Op("-") => UnaryOp::Neg,
            Tok::Op("+") => UnaryOp::Pos,
            Tok::Op("~") => UnaryOp::Invert,
            _ => return self.power(),
        };
        self.bump();
        self.enter()?;
        let operand = self.factor();
        self.leave();
        Ok(Expr::Unary { op, operand: Box::new(operand?) })
    }

    fn power(&mut self) -> PResult<Expr> {
        let base = if self.eat_name("await") { Expr::Await(Box::new(self.primary()?)) } else { self.primary()? };
        if self.eat("**") {
            self.enter()?;
            let exp = self.factor();
            self.leave();
            return Ok(Expr::Bin { left: Box::new(base), op: BinOp::Pow, right: Box::new(exp?) });
        }
        Ok(base)
    }

    fn primary(&mut self) -> PResult<Expr> {
        let mut e = self.atom()?;
        let mut trailers = 0;
        loop {
            if self.eat(".") {
                match self.bump() {
                    Tok::Name(attr) if !KEYWORDS.contains(&&*attr) => {
                        e = Expr::Attribute { value: Box::new(e), attr };
                    }
                    _ => return Err(Fail::Syntax),
                }
            } else if self.eat("(") {
                let (args, keywords) = self.call_args()?;
                e = Expr::Call { func: Box::new(e), args, keywords, plan: None };
            } else if self.eat("[") {
                let slice = self.slices()?;
                self.expect("]")?;
                e = Expr::Subscript { value: Box::new(e), slice: Box::new(slice) };
            } else {
                return Ok(e);
            }
            trailers += 1;
            if trailers > self.max_depth {
                return Err(Fail::TooDeep);
            }
        }
    }

    fn call_args(&mut self) -> PResult<(Vec<Expr>, Vec<Keyword>)> {
        self.enter()?;
        let mut args = Vec::new();
        let mut keywords = Vec::new();
        while !self.is_op(")") {
            if self.eat("**") {
                keywords.push(Keyword { arg: None, value: self.expression()? });
            } else if self.eat("*") {
                args.push(Expr::Starred(Box::new(self.expression()?)));
            } else if let (Tok::Name(n), Tok::Op("=")) = (self.peek().clone(), self.peek_at(1).clone()) {
                if KEYWORDS.contains(&&*n) {
                    return Err(Fail::Syntax);
                }
                self.bump();
                self.bump();
                keywords.push(Keyword { arg: Some(n), value: self.expression()? });
            } else {
                let e = self.named_expression()?;
                if self.is_name("for") {
                    let generators = self.comp_for()?;
                    args.push(Expr::Comp { kind: CompKind::Generator, elt: Box::new(e), value: None, generators });
                } else {
                    if !keywords.is_empty() {
                        return Err(Fail::Syntax);
                    }
                    args.push(e);
                }
            }
            if !self.eat(",") {
                break;
            }
        }
        self.expect(")")?;
        self.leave();
        Ok((args, keywords))
    }

    fn slices(&mut self) -> PResult<Expr> {
        let first = self.slice()?;
        if !self.is_op(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(",") {
            if self.is_op("]") {
                break;
            }
            items.push(self.slice()?);
        }
        Ok(Expr::Tuple(items))
    }

    fn slice(&mut self) -> PResult<Expr> {
        let lower = if self.is_op(":") { None } else { Some(Box::new(self.star_named()?)) };
        if !self.eat(":") {
            return lower.map(|b| *b).ok_or(Fail::Syntax);
        }
        let upper = if self.is_op(":") || self.is_op("]") || self.is_op(",") {
            None
        } else {
            Some(Box::new(self.expression()?))
        };
        let step = if self.eat(":") {
            if self.is_op("]") || self.is_op(",") { None } else { Some(Box::new(self.expression()?)) }
        } else {
            None
        };
        Ok(Expr::Slice { lower, upper, step })
    }

    fn comp_for(&mut self) -> PResult<Vec<Comprehension>> {
        let mut gens = Vec::new();
        while self.eat_name("for") {
            let target = self.target_expr()?;
            self.expect_name("in")?;
            let iter = self.disjunction()?;
            let mut ifs = Vec::new();
            while self.eat_name("if") {
                ifs.push(self.disjunction()?);
            }
            gens.push(Comprehension { target: Box::new(target), iter, ifs });
        }
        Ok(gens)
    }

    /// A comprehension target as an expression (names and tuples).
    fn target_expr(&mut self) -> PResult<Expr> {
        let first = self.bitor()?;
        if !self.is_op(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(",") {
            if self.is_name("in") {
                break;
            }
            items.push(self.bitor()?);
        }
        Ok(Expr::Tuple(items))
    }

    /// A `for`/`set` target: names, tuples of names, parenthesised or not.
    fn target_list(&mut self) -> PResult<Target> {
        let first = self.target_atom()?;
        if !self.is_op(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(",") {
            if !matches!(self.peek(), Tok::Name(n) if !KEYWORDS.contains(&&**n)) && !self.is_op("(") {
                break;
            }
            items.push(self.target_atom()?);
        }
        Ok(Target::Tuple(items))
    }

    fn target_atom(&mut self) -> PResult<Target> {
        if self.eat("(") || self.eat("[") {
            self.enter()?;
            let t = self.target_list()?;
            self.leave();
            if !self.eat(")") && !self.eat("]") {
                return Err(Fail::Syntax);
            }
            return Ok(match t {
                Target::Name(n) => Target::Name(n),
                tuple => tuple,
            });
        }
        match self.bump() {
            Tok::Name(n) if !KEYWORDS.contains(&&*n) => Ok(Target::Name(Ident { name: n, slot: 0 })),
            _ => Err(Fail::Syntax),
        }
    }

    fn atom(&mut self) -> PResult<Expr> {
        match self.bump() {
            Tok::Name(n) => match &*n {
                "None" => Ok(Expr::Const(Const::None)),
                "True" => Ok(Expr::Const(Const::Bool(true))),
                "False" => Ok(Expr::Const(Const::Bool(false))),
                "yield" => {
                    if self.starts_expr() {
                        Ok(Expr::Yield(Some(Box::new(self.star_expressions()?))))
                    } else {
                        Ok(Expr::Yield(None))
                    }
                }
                k if KEYWORDS.contains(&k) => Err(Fail::Syntax),
                _ => Ok(name(&n)),
            },
            Tok::Int(i) => Ok(Expr::Const(Const::Int(i))),
            Tok::BigInt(s) => Ok(Expr::Const(Const::BigInt(s))),
            Tok::Float(f) => Ok(Expr::Const(Const::Float(f))),
            Tok::Imag(f) => Ok(Expr::Const(Const::Imag(f))),
            Tok::Bytes(b) => Ok(Expr::Const(Const::Bytes(b))),
            Tok::Str(parts) => self.string(parts),
            Tok::Op("...") => Ok(Expr::Const(Const::Ellipsis)),
            Tok::Op("(") => self.paren(),
            Tok::Op("[") => self.list(),
            Tok::Op("{") => self.brace(),
            _ => Err(Fail::Syntax),
        }
    }

    fn paren(&mut self) -> PResult<Expr> {
        self.enter()?;
        if self.eat(")") {
            self.leave();
            return Ok(Expr::Tuple(Vec::new()));
        }
        if self.is_name("yield") {
            let e = self.atom()?;
            self.expect(")")?;
            self.leave();
            return Ok(e);
        }
        let first = self.star_named()?;
        let e = if self.is_name("for") {
            let generators = self.comp_for()?;
            Expr::Comp { kind: CompKind::Generator, elt: Box::new(first), value: None, generators }
        } else if self.is_op(",") {
            let mut items = vec![first];
            while self.eat(",") {
                if self.is_op(")") {
                    break;
                }
                items.push(self.star_named()?);
            }
            Expr::Tuple(items)
        } else {
            first
        };
        self.expect(")")?;
        self.leave();
        Ok(e)
    }

    fn list(&mut self) -> PResult<Expr> {
        self.enter()?;
        let mut items = Vec::new();
        if !self.is_op("]") {
            let first = self.star_named()?;
            if self.is_name("for") {
                let generators = self.comp_for()?;
                self.expect("]")?;
                self.leave();
                return Ok(Expr::Comp { kind: CompKind::List, elt: Box::new(first), value: None, generators });
            }
            items.push(first);
            while self.eat(",") {
                if self.is_op("]") {
                    break;
                }
                items.push(self.star_named()?);
            }
        }
        self.expect("]")?;
        self.leave();
        Ok(Expr::List(items))
    }

    fn brace(&mut self) -> PResult<Expr> {
        self.enter()?;
        if self.eat("}") {
            self.leave();
            return Ok(Expr::Dict { keys: Vec::new(), values: Vec::new() });
        }
        let e = if self.eat("**") {
            let first = self.bitor()?;
            self.dict_rest(None, first)?
        } else {
            let first = self.star_named()?;
            if self.eat(":") {
                let value = self.expression()?;
                if self.is_name("for") {
                    let generators = self.comp_for()?;
                    Expr::Comp { kind: CompKind::Dict, elt: Box::new(first), value: Some(Box::new(value)), generators }
                } else {
                    self.dict_rest(Some(first), value)?
                }
            } else if self.is_name("for") {
                let generators = self.comp_for()?;
                Expr::Comp { kind: CompKind::Set, elt: Box::new(first), value: None, generators }
            } else {
                let mut items = vec![first];
                while self.eat(",") {
                    if self.is_op("}") {
                        break;
                    }
                    items.push(self.star_named()?);
                }
                Expr::Set(items)
            }
        };
        self.expect("}")?;
        self.leave();
        Ok(e)
    }

    fn dict_rest(&mut self, first_key: Option<Expr>, first_value: Expr) -> PResult<Expr> {
        let mut keys = vec![first_key];
        let mut values = vec![first_value];
        while self.eat(",") {
            if self.is_op("}") {
                break;
            }
            if self.eat("**") {
                keys.push(None);
                values.push(self.bitor()?);
            } else {
                keys.push(Some(self.expression()?));
                self.expect(":")?;
                values.push(self.expression()?);
            }
        }
        Ok(Expr::Dict { keys, values })
    }

    /// A string literal (possibly several concatenated, possibly f-strings).
    fn string(&mut self, parts: Vec<StrPart>) -> PResult<Expr> {
        if parts.iter().all(|p| matches!(p, StrPart::Text(_))) {
            let text: String = parts
                .into_iter()
                .map(|p| match p {
                    StrPart::Text(t) => t,
                    StrPart::Format { .. } => String::new(),
                })
                .collect();
            return Ok(Expr::Const(Const::Str(Arc::from(text))));
        }
        let mut values: Vec<Expr> = Vec::new();
        let mut text = String::new();
        for part in parts {
            match part {
                StrPart::Text(t) => text.push_str(&t),
                StrPart::Format { body, raw } => self.fstring(&body, raw, &mut text, &mut values)?,
            }
        }
        if !text.is_empty() {
            values.push(Expr::Const(Const::Str(Arc::from(text))));
        }
        Ok(Expr::JoinedStr(values))
    }

    fn fstring(&mut self, body: &str, raw: bool, text: &mut String, values: &mut Vec<Expr>) -> PResult<()> {
        let chars: Vec<char> = body.chars().collect();
        let mut i = 0;
        let mut literal = String::new();
        let flush = |literal: &mut String, text: &mut String| -> PResult<()> {
            let decoded = if raw { std::mem::take(literal) } else { unescape(literal)? };
            literal.clear();
            text.push_str(&decoded);
            Ok(())
        };
        while i < chars.len() {
            let c = chars[i];
            if c == '{' && chars.get(i + 1) == Some(&'{') {
                literal.push('{');
                i += 2;
                continue;
            }
            if c == '}' {
                if chars.get(i + 1) == Some(&'}') {
                    literal.push('}');
                    i += 2;
                    continue;
                }
                return Err(Fail::Syntax);
            }
            if c != '{' {
                literal.push(c);
                i += 1;
                continue;
            }
            flush(&mut literal, text)?;
            if !text.is_empty() {
                values.push(Expr::Const(Const::Str(Arc::from(std::mem::take(text)))));
            }
            // Find the end of the replacement field, respecting nesting and quotes.
            let start = i + 1;
            let mut depth = 0i32;
            let mut j = start;
            let mut quote: Option<char> = None;
            let mut expr_end = None;
            let mut conversion = -1;
            let mut spec_start = None;
            while j < chars.len() {
                let ch = chars[j];
                if let Some(q) = quote {
                    if ch == q {
                        quote = None;
                    }
                } else if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                } else if matches!(ch, '(' | '[' | '{') {
                    depth += 1;
                } else if matches!(ch, ')' | ']') || (ch == '}' && depth > 0) {
                    depth -= 1;
                } else if depth == 0 && ch == '!' && chars.get(j + 1) != Some(&'=') && expr_end.is_none() {
                    expr_end = Some(j);
                    conversion = match chars.get(j + 1) {
                        Some('r') => 114,
                        Some('s') => 115,
                        Some('a') => 97,
                        _ => return Err(Fail::Syntax),
                    };
                    j += 2;
                    continue;
                } else if depth == 0 && ch == ':' && spec_start.is_none() {
                    expr_end.get_or_insert(j);
                    spec_start = Some(j + 1);
                } else if depth == 0 && ch == '}' {
                    break;
                }
                j += 1;
            }
            if j >= chars.len() {
                return Err(Fail::Syntax);
            }
            let expr_src: String = chars[start..expr_end.unwrap_or(j)].iter().collect();
            if expr_src.trim().is_empty() {
                return Err(Fail::Syntax);
            }
            self.enter()?;
            let mut inner = Parser::new(&expr_src, self.max_depth)?;
            inner.depth = self.depth;
            let value = inner.star_expressions()?;
            inner.end()?;
            self.leave();
            let format_spec = match spec_start {
                Some(s) => {
                    let spec: String = chars[s..j].iter().collect();
                    Some(Box::new(Expr::JoinedStr(vec![Expr::Const(Const::Str(Arc::from(spec)))])))
                }
                None => None,
            };
            values.push(Expr::Formatted { value: Box::new(value), conversion, format_spec });
            i = j + 1;
        }
        flush(&mut literal, text)
    }
}

#!/usr/bin/env python3
"""Generate the differential corpus for Aviary's template renderer.

Usage: python3 gen_corpus.py   (plain python3, no dependencies; deterministic)

Writes corpus.jsonl next to this file. Each line:

    {"id": "<group>_<nnn>", "template": "...", "params": {...},
     "match": "exact" | "upto_paren" | "upto_dash",
     "deviation": null | {"reason": "<spec section + why>", "expect": <result>}}

`params` values are strings (as from a query string) or JSON values (as from a JSON body).
`match` says how error messages are compared: exactly, only up to the first "(" (sandbox
messages that embed a Python ast.dump, spec section 4.2), or only up to " - " (JSON parse
messages, spec section 8.5). Rendered SQL is always compared whitespace-insensitively.

`deviation` is set only where shared/spec/template-language.md makes Aviary deliberately differ
from the reference renderer; `expect` is then the result Aviary must produce, in the same shape
reference.py prints: {"ok": sql}, {"error": msg, "kind": "syntax"|"user"} or
{"kind": "custom", "status": int, "body": json}. Every other case must match reference.py.

`build()` also returns, for check_corpus.py, the results the spec itself states for the cases
that reproduce a spec example (`spec_expect`), so the spec's examples can be cross-checked
against the reference.
"""

import json
import os

PREFIX = "Template Syntax Error: "
REQ_TAIL = ". Please provide a value or set a default value in the pipe code."


# ---------------------------------------------------------------------------------------------
# result constructors
# ---------------------------------------------------------------------------------------------


def ok(sql):
    return {"ok": sql}


def syn(msg):
    return {"error": PREFIX + msg, "kind": "syntax"}


def user(msg):
    return {"error": msg, "kind": "user"}


def custom(status, body):
    return {"kind": "custom", "status": status, "body": body}


def req(names):
    return syn("Required parameter is not defined. Check the parameters " + names + REQ_TAIL)


ANY_ERROR = {"error": None, "kind": "syntax"}  # spec says "error" without giving the text


def invalid(value, typ):
    return syn("Error validating '%s' to type %s" % (value, typ))


# ---------------------------------------------------------------------------------------------
# Aviary-side helpers (spec section 7 escaping, section 6 container rendering)
# ---------------------------------------------------------------------------------------------

ESC = {
    "\0": "\\0",
    "\r": "\\r",
    "\b": "\\b",
    "\t": "\\t",
    "\x1a": "\\z",
    "\n": "\\n",
    '"': '\\"',
    "'": "\\'",
    "\\": "\\\\",
    "%": "\\%",
    "`": "\\`",
}
IDENT_ESC = dict(ESC)
IDENT_ESC['"'] = ""


def esc(s):
    return "".join(ESC.get(c, c) for c in s)


def lit(s):
    return "'" + esc(s) + "'"


def ident(s):
    return "`" + "".join(IDENT_ESC.get(c, c) for c in s) + "`"


def aviary_value(v):
    """Spec section 6 rendering of a value inside a container, Aviary decision: strings are SQL
    literals, everything else in Python str() form."""
    if isinstance(v, str):
        return lit(v)
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(aviary_value(x) for x in v) + "]"
    if isinstance(v, tuple):
        return "(" + ", ".join(aviary_value(x) for x in v) + ")"
    if isinstance(v, dict):
        return "{" + ", ".join(aviary_value(k) + ": " + aviary_value(x) for k, x in v.items()) + "}"
    raise TypeError(v)


def py_differs(v):
    """True when Python's str() of a container differs from Aviary's rendering."""
    return str(v) != aviary_value(v)


def is_table_name(s):
    import re

    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?", s) is not None


# Python 3.11 ast.dump() of the expressions used in sandbox messages, written out so the corpus
# does not depend on the Python version that runs this generator (3.13 shortens ast.dump).
DUMPS = {
    "x > 1": "Compare(left=Name(id='x', ctx=Load()), ops=[Gt()], comparators=[Constant(value=1)])",
    "defined(a) and defined(b)": "BoolOp(op=And(), values=[Call(func=Name(id='defined', ctx=Load()), args=[Name(id='a', ctx=Load())], keywords=[]), Call(func=Name(id='defined', ctx=Load()), args=[Name(id='b', ctx=Load())], keywords=[])])",
    "(lambda: 1)()": "Call(func=Lambda(args=arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]), body=Constant(value=1)), args=[], keywords=[])",
    "lambda: 1": "Lambda(args=arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]), body=Constant(value=1))",
    "[c for c in s]": "ListComp(elt=Name(id='c', ctx=Load()), generators=[comprehension(target=Name(id='c', ctx=Store()), iter=Name(id='s', ctx=Load()), ifs=[], is_async=0)])",
    "String(x, 'a')('b')": "Call(func=Call(func=Name(id='String', ctx=Load()), args=[Name(id='x', ctx=Load()), Constant(value='a')], keywords=[]), args=[Constant(value='b')], keywords=[])",
    "[c for c in 'ab']": "ListComp(elt=Name(id='c', ctx=Load()), generators=[comprehension(target=Name(id='c', ctx=Store()), iter=Constant(value='ab'), ifs=[], is_async=0)])",
}


def dump(expr):
    return DUMPS[expr]


# ---------------------------------------------------------------------------------------------
# corpus builder
# ---------------------------------------------------------------------------------------------


class Corpus:
    def __init__(self):
        self.cases = []
        self.spec = {}
        self.counters = {}
        self.templates = set()

    def add(self, group, template, params=None, match="exact", dev=None, spec=None):
        n = self.counters.get(group, 0) + 1
        self.counters[group] = n
        cid = "%s_%03d" % (group, n)
        deviation = None
        if dev is not None:
            reason, expect = dev
            deviation = {"reason": reason, "expect": expect}
        self.cases.append(
            {
                "id": cid,
                "template": template,
                "params": params or {},
                "match": match,
                "deviation": deviation,
            }
        )
        if spec is not None:
            self.spec[cid] = spec
        return cid


# deviation reasons (one phrase per spec decision)
R_KW = "§4.2/§13#1: keyword argument values are checked by the sandbox (reference skips them)"
R_STMT = "§4.5/§13#2: statement expressions use Aviary's grammar/whitelist; anything else is 'wrong syntax'"
R_CONT = "§6/§13#3: string elements of containers render as SQL literals, not Python repr"
R_COLS = "§9.2/§13#4: columns(fn=) alias is a quoted identifier and fn is validated"
R_TABLE = "§9.3/§13#5: table() accepts only [A-Za-z_][A-Za-z0-9_]*(.same)? names"
R_UNESC = "§9.5/§13#6: sql_unescape keeps escaping; ' and \\ can never be unescaped; what is per character"
R_DIGITS = "§8.2/§13#7: testers accept ASCII digits only and reject a trailing newline"
R_SYNTAX = "§4.5/§10.3/§13#10: Python SyntaxError text becomes 'invalid syntax, line N' (template line)"
R_ITER = "§3.2/§10.3: iterating a non-iterable reports '<expr>' is not iterable"
R_OPER = "§4.4/§10.3: unsupported operand wording uses Aviary type names"
R_LIMIT = "§11/§13#11: Aviary limit"
R_LENGTH = "§5.2/§13#13: 'length' is an ordinary name"
R_SETORD = "§2.1: reference prints a Python set (order varies per run); Aviary prints a fixed order"
R_EXCEPT = "§3.4: except never catches custom_error() nor §11 limits"
R_EXCEPT_NAME = "§3.4: '{% except SomeName %}' is treated like a bare except"
R_CUSTOM = "§9.8: custom_error code must be an int 400-599 (else 400); a non-dict body becomes {\"error\": str(body)}"
R_CALLCALL = "§4.2: calling a call result is rejected with 'Invalid function: <dump>'"
R_BUILTIN = "§5.2: Python builtin names are ordinary parameters (missing when not supplied)"
R_DISABLE = "§9.9: disable() accepts only 'analyzer' (reference uses a substring test)"
R_HINT = (
    "§9.9 (Aviary safety decision): a hint argument echoed into its SQL comment has CR/LF replaced by "
    "spaces; the reference copies a newline through, ending the comment and injecting SQL"
)
R_PRECONV = (
    "§5.3/§7.3: Array pre-conversion keeps each string value exactly; the reference re-reads its own "
    "escaped SQL with Python's literal_eval and escapes %, ` and \\x1a twice, breaking the injection "
    "property (the literal no longer unescapes to the input)"
)


def mark_preconversion_deviations(c):
    """Array(p, 'String') over a parameter whose value holds %, ` or \x1a (see R_PRECONV)."""
    for case in c.cases:
        if case["deviation"] is not None:
            continue
        t = case["template"]
        for name in ("a", "s"):
            if t != "{{Array(%s, 'String')}}" % name or name not in case["params"]:
                continue
            v = case["params"][name]
            items = v if isinstance(v, list) else v.split(",")
            if all(isinstance(x, str) for x in items) and any(ch in x for x in items for ch in "%`\x1a"):
                expect = ok("[" + ",".join(lit(x) for x in items) + "]")
                case["deviation"] = {"reason": R_PRECONV, "expect": expect}


def build():
    c = Corpus()
    add = c.add

    # =========================================================================================
    # spec: every input -> output example of shared/spec/template-language.md
    # =========================================================================================
    S = "spec"
    # §1.1
    t = "% SELECT {{Array(click_selector, 'String', 'pre,pro')}}"
    add(S, t, {}, spec=ok("% SELECT ['pre','pro']"))
    add(S, t, {"click_selector": "hi,hello"}, spec=ok("% SELECT ['hi','hello']"))
    # §2
    add(S, "{{! x }}", {}, spec=ok("{{ x }}"))
    add(S, "{%! if x %}", {}, spec=ok("{% if x %}"))
    add(S, "{#! c #}", {}, spec=ok("{# c #}"))
    add(S, "{{x}}|{{  x  }}", {"x": "v"}, spec=ok("'v'|'v'"))
    # §2.1 parse errors
    add(S, "SELECT {{ x", {}, spec=syn("Missing end expression }} at <string>:1"))
    add(S, "SELECT {{ }}", {}, spec=syn("Empty expression at <string>:1"))
    add(S, "SELECT {% if x", {}, spec=syn("Missing end block %} at <string>:1"))
    add(S, "SELECT {% %}", {}, spec=syn("Empty block tag ({% %}) at <string>:1"))
    add(S, "SELECT {# c", {}, spec=syn("Missing end comment #} at <string>:1"))
    add(S, "SELECT {% end %}", {}, spec=syn("Extra {% end %} block at <string>:1"))
    add(S, "SELECT {% if x %} 1", {}, spec=syn("Missing {% end %} block for if at line 1"))
    add(S, "SELECT {% for x in y %} 1", {}, spec=syn("Missing {% end %} block for if at line 1"))
    add(S, "SELECT {% while x %} 1", {}, spec=syn("Missing {% end %} block for if at line 1"))
    add(S, "SELECT {% try %} 1", {}, spec=syn("Missing {% end %} block for if at line 1"))
    aviary_else = syn("else outside {'if', 'for', 'try', 'while'} block at <string>:1")
    add(S, "SELECT {% else %}", {}, dev=(R_SETORD, aviary_else), spec=aviary_else)
    add(S, "SELECT {% elif x %}", {}, spec=syn("elif outside {'if'} block at <string>:1"))
    add(S, "SELECT {% except %}", {}, spec=syn("except outside {'try'} block at <string>:1"))
    add(S, "SELECT {% finally %}", {}, spec=syn("finally outside {'try'} block at <string>:1"))
    add(
        S,
        "{% if x %}{% except %}{% end %}",
        {},
        spec=syn("except block cannot be attached to if block at <string>:1"),
    )
    aviary_break = syn("break outside {'for', 'while'} block at <string>:1")
    add(S, "SELECT {% break %}", {}, dev=(R_SETORD, aviary_break), spec=aviary_break)
    aviary_cont = syn("continue outside {'for', 'while'} block at <string>:1")
    add(S, "SELECT {% continue %}", {}, dev=(R_SETORD, aviary_cont), spec=aviary_cont)
    add(S, "SELECT {% set %}", {}, spec=syn("set missing statement at <string>:1"))
    add(S, "SELECT {% foo %}", {}, spec=syn("unknown operator: 'foo' at <string>:1"))
    add(S, "SELECT {% whitespace bogus %}", {}, spec=syn("invalid whitespace mode bogus"))
    # §3.1
    add(S, "{% if Int32(y, 0) > 1 %}big{% else %}small{% end %}", {"y": "5"}, spec=ok("big"))
    add(S, "{% if x == 'a' %}A{% elif x == 'b' %}B{% else %}C{% end %}", {"x": "b"}, spec=ok("B"))
    add(S, "{% if test %}SELECT 1{% else %} select 2 {% end %}", {}, spec=ok(" select 2 "))
    add(S, "{% if defined(x) and x != '' %}Y{% else %}N{% end %}", {"x": ""}, spec=ok("N"))
    add(
        S,
        '{% if not defined(test) %}error("This is an error"){% end %}',
        {},
        spec=ok('error("This is an error")'),
    )
    # §3.2
    add(S, "{% for x in split_to_array(s) %}{{x}};{% end %}", {"s": "p, q"}, spec=ok("'p';'q';"))
    add(
        S,
        "{% for last, x in enumerate_with_last(split_to_array(s)) %}{{symbol(x)}}{% if not last %},{% end %}{% end %}",
        {"s": "a,b,c"},
        spec=ok("`a`,`b`,`c`"),
    )
    add(S, "{% for x in [1,2,3] %}{% if x == 2 %}{% continue %}{% end %}{{x}}{% end %}", {}, spec=ok("13"))
    add(S, "{% for x in [1,2,3] %}{% if x == 2 %}{% break %}{% end %}{{x}}{% end %}", {}, spec=ok("1"))
    add(
        S,
        "{% for x in y %}{{x}}{% end %}",
        {},
        dev=(R_ITER, syn("'y' is not iterable")),
        spec=syn("'NoneType' object is not iterable"),
    )
    # §3.3
    add(S, "{% set i = 0 %}{% while i < 3 %}{{i}}{% set i = i + 1 %}{% end %}", {}, spec=ok("012"))
    # §3.4
    add(S, "{% try %}{{Int32(x)}}{% except %}fallback{% end %}", {"x": "no"}, spec=ok("fallback"))
    add(S, "{% try %}A{{Int32(x)}}{% except %}fallback{% end %}", {"x": "no"}, spec=ok("Afallback"))
    # §3.5
    add(
        S,
        "{% set n = Int32(n, 10) %}{{n}}",
        {},
        spec=syn("cannot access local variable 'n' where it is not associated with a value"),
    )
    add(
        S,
        "{% set n = Int32(n, 10) %}{{n}}",
        {"n": "3"},
        spec=syn("cannot access local variable 'n' where it is not associated with a value"),
    )
    add(S, "{% set m = Int32(n, 10) %}{{m}}", {}, spec=ok("toInt32('10')"))
    # §3.6
    add(S, "{# c #}A{% comment hi %}B", {}, spec=ok("AB"))
    # §3.7
    add(S, "A  \n\n  B", {}, spec=ok("A  \n\n  B"))
    add(S, "{% whitespace all %}A  \n\n  B", {}, spec=ok("A  \n\n  B"))
    add(S, "{% whitespace single %}A  \n\n  B", {}, spec=ok("A\nB"))
    add(S, "{% whitespace oneline %}A   \n  B", {}, spec=ok("A B"))
    # §3.8
    for op, stmt in [
        ("extends", "{% extends 'base.html' %}"),
        ("include", "{% include 'x.html' %}"),
        ("import", "{% import os %}"),
        ("import", "{% from os import popen %}"),
        ("autoescape", "{% autoescape None %}"),
        ("raw", "{% raw x %}"),
        ("module", "{% module Template('x') %}"),
        ("apply", "{% apply f %}x{% end %}"),
        ("block", "{% block b %}x{% end %}"),
    ]:
        add(S, "SELECT " + stmt, {}, spec=syn("%s is forbidden at <string>:1" % op))
    add(S, "{{ from x }}", {}, spec=syn('"from" is a forbidden word at <string>:1'))
    add(
        S,
        '% SELECT * FROM {% import os %}{{ os.popen("whoami").read() }}',
        {},
        spec=syn("import is forbidden at <string>:1"),
    )
    # §4.2
    add(S, "{{ [1,2] }}", {}, spec=ok("[1, 2]"))
    add(S, "{{f'{s}_x'}}", {"s": "a"}, spec=ok("'a_x'"))
    add(S, "{{ 'a' if defined(x) else 'b' }}", {"x": "1"}, spec=ok("'a'"))
    add(S, "{{ 'a' if defined(x) else 'b' }}", {}, spec=ok("'b'"))
    add(
        S,
        "{{ 'a' if x > 1 else 'b' }}",
        {"x": "1"},
        match="upto_paren",
        spec=syn("Invalid expression type: " + dump("x > 1")),
    )
    add(
        S,
        "{{ x.__class__ }}",
        {"x": "1"},
        match="upto_paren",
        spec=syn(
            "Invalid expression type: Attribute(value=Name(id='x', ctx=Load()), attr='__class__', ctx=Load())"
        ),
    )
    add(S, "{{eval('1')}}", {}, spec=syn("Invalid function name: eval"))
    add(S, "{{1/2}}", {}, spec=syn("Invalid BinOp: Div()"))
    add(S, "{{2**3}}", {}, spec=syn("Invalid BinOp: Pow()"))
    add(S, "{{5%3}}", {}, spec=syn("Invalid BinOp: Mod()"))
    add(S, "{{5//3}}", {}, spec=syn("Invalid BinOp: FloorDiv()"))
    add(S, "{{+x}}", {"x": "1"}, spec=syn("Invalid UnaryOp: UAdd()"))
    add(S, "{{s.upper()}}", {"s": "a"}, spec=syn("Invalid method name: upper"))
    add(
        S,
        "{{Int32(a,1) > 1}}",
        {},
        match="upto_paren",
        spec=syn(
            "Invalid expression type: Compare(left=Call(func=Name(id='Int32', ctx=Load()), args=[Name(id='a', ctx=Load()), Constant(value=1)], keywords=[]), ops=[Gt()], comparators=[Constant(value=1)])"
        ),
    )
    add(S, "{{ defined(a) and defined(b) }}", {}, match="upto_paren", spec=syn("Invalid expression type: " + dump("defined(a) and defined(b)")))
    add(S, "{{ (lambda: 1)() }}", {}, match="upto_paren", spec=syn("Invalid function: " + dump("(lambda: 1)()")))
    add(S, "{{ lambda: 1 }}", {}, match="upto_paren", spec=syn("Invalid expression type: " + dump("lambda: 1")))
    add(S, "{{ [c for c in s] }}", {"s": "ab"}, match="upto_paren", spec=syn("Invalid expression type: " + dump("[c for c in s]")))
    add(S, "{{ String(x, default=len([1])) }}", {}, spec=ok("'1'"))
    add(
        S,
        "{{ String(x, default=eval('1')) }}",
        {},
        dev=(R_KW, syn("Invalid function name: eval")),
        spec=syn("Invalid function name: eval"),
    )
    # §4.3
    for fn in ["str", "eval", "globals", "dir", "whatever", "enum_with_default"]:
        add(S, "{{%s(x)}}" % fn, {"x": "1"}, spec=syn("Invalid function name: " + fn))
    # §4.4
    add(S, "{{Int32(n, 5) + 1}}", {}, spec=ok("6"))
    add(S, "{{Int32(n) * 2}}", {"n": "3"}, spec=ok("6"))
    add(S, "{{Int32(n) - 1}}", {"n": "3"}, spec=ok("2"))
    add(S, "{{-Int32(n)}}", {"n": "3"}, spec=ok("-3"))
    add(S, "{{ 'x' + String(s) }}", {"s": "y"}, spec=ok("'xy'"))
    add(S, "{{ s * 3 }}", {"s": "ab"}, spec=ok("'ababab'"))
    add(
        S,
        "{{ Int32(n) + 'x' }}",
        {"n": "1"},
        dev=(R_OPER, syn("unsupported operand types for +: Int32 and String")),
        spec=syn("unsupported operand type(s) for +: 'Integer' and 'str'"),
    )
    add(
        S,
        "LIMIT {{Int32(page_size, 100)}} OFFSET {{Int32(page, 0) * Int32(page_size, 100)}}",
        {"page": "2"},
        spec=ok("LIMIT toInt32('100') OFFSET 200"),
    )
    add(S, "{{ Int32(lim, 100) }} {{ Int32(page, 0) * Int32(lim, 100) }}", {"page": "2"}, spec=ok("toInt32('100') 200"))
    add(S, "{{len(split_to_array(s))}}", {"s": "a,b"}, spec=ok("2"))
    add(S, "{{max(Int32(a,1),Int32(b,5))}}", {}, spec=ok("toInt32('5')"))
    add(S, "{{min(1,2)}}", {}, spec=ok("1"))
    add(S, "{{int('5')}}", {}, spec=ok("5"))
    add(S, "{{float('5')}}", {}, spec=ok("5.0"))
    add(S, "{{ s.split(',') }}", {"s": "a,b"}, spec=ok("['a', 'b']"))
    add(S, "{{','.join(split_to_array(s))}}", {"s": "a,b"}, spec=ok("'a,b'"))
    add(S, "{{s.replace('a','b')}}", {"s": "aa"}, spec=ok("'bb'"))
    add(S, "{{ JSON(j).get('a') }}", {"j": '{"a":"v"}'}, spec=ok("'v'"))
    add(S, "{{ JSON(j)['a'] }}", {"j": '{"a":5}'}, spec=ok("5"))
    add(S, "{{s[0]}}", {"s": "abc"}, spec=ok("'a'"))
    add(S, "{{s[0:2]}}", {"s": "abc"}, spec=ok("'ab'"))
    add(
        S,
        "{{s[0]}}",
        {"s": ""},
        spec=syn(
            "String index out of range. Check that string parameters have values before accessing specific characters (e.g., param[0]). Provide default values or add length checks in your template."
        ),
    )
    add(S, "{{ (1,2) }}", {}, spec=ok("(1, 2)"))
    add(S, "{{ {1,2} }}", {}, spec=ok("{1, 2}"))
    add(S, "{{ True }}", {}, spec=ok("True"))
    add(S, "{{ not defined(x) }}", {}, spec=ok("True"))
    add(
        S,
        "{% for item in JSON(filters, '[\"test\"]') %} {{item.get('operator')}} {% end %}",
        {},
        spec=syn(
            "'str' object has no attribute 'get'. Make sure you're using an object/dictionary where trying to use .get()"
        ),
    )
    # §4.5
    add(
        S,
        "{% if whatever(x) %}A{% end %}",
        {},
        spec=syn("wrong syntax, you might be using a not valid function inside a control block"),
    )
    add(
        S,
        "{% if defined((x) %}A{% end %}",
        {},
        dev=(R_SYNTAX, syn("invalid syntax, line 1")),
        spec=syn("invalid syntax (<string>.generated.py, line 4)"),
    )
    add(S, "{% set lst = split_to_array(s) %}{{len(lst)}}", {"s": "a,b,c"}, spec=ok("3"))
    t = "% {% if defined(test) %}{% set _groupByCSV = ','.join(test) %} SELECT test as aa, {{Array(test, 'String')}} as test, {{_groupByCSV}} as a {% end %}"
    add(S, t, {"test": "1,2"}, spec=ok("%  SELECT test as aa, ['1','2'] as test, '1,2' as a "))
    add(S, t, {"test": ["1", "2"]}, spec=ok("%  SELECT test as aa, ['1','2'] as test, '1,2' as a "))
    t = "% {% if defined(test) %}{% set _total = sum(test) %} SELECT test as aa, {{Array(test, 'Int32')}} as test, {{_total}} as a {% end %}"
    add(S, t, {"test": "1,2"}, spec=ok("%  SELECT test as aa, [1,2] as test, 3 as a "))
    # §5.1
    add(S, "{% if defined(x) %}Y{% else %}N{% end %}", {"x": ""}, spec=ok("Y"))
    add(S, "{% if defined(x) %}Y{% else %}N{% end %}", {"x": None}, spec=ok("N"))
    add(S, "{{String(x)}}", {"x": None}, spec=req("x"))
    # §5.2
    add(S, "{{q}}", {"q": "1"}, spec=syn('"q" can not be used as a variable name, line 1'))
    add(S, "SELECT\n{{format}}", {}, spec=syn('"format" can not be used as a variable name, line 2'))
    add(S, "{{String(format, 'test')}}", {}, spec=syn('"format" can not be used as a variable name, line 1'))
    add(S, "{{token}}", {"token": "x"}, spec=ok("'x'"))
    add(S, "{% set length = 1 %}{{length}}", {}, spec=ok("1"))
    add(S, "{{id}}", {"id": "5"}, spec=ok("'5'"))
    add(S, "{{open}}", {}, spec=syn('expression "open" evaluated to null'))
    for name in ["open", "close", "print", "input"]:
        add(S, "{%% if defined(%s) %%}ERROR{%% else %%}YEAH!{%% end %%}" % name, {}, spec=ok("YEAH!"))
    # §6
    add(S, "{{s}}", {"s": "x"}, spec=ok("'x'"))
    add(S, "{{s}}", {"s": 'a"b'}, spec=ok("'a\\\"b'"))
    add(S, "{{Int32(n)}}", {"n": "5"}, spec=ok("toInt32('5')"))
    add(S, "{{Float32(n)}}", {"n": "1000"}, spec=ok("toFloat32('1000.0')"))
    add(S, "{{s}}", {"s": 5}, spec=ok("5"))
    add(S, "{{s}}", {"s": 1.5}, spec=ok("1.5"))
    add(S, "{{s}}", {"s": True}, spec=ok("True"))
    add(S, "{{x}}", {}, spec=syn('expression "x" evaluated to null'))
    add(S, "{{column(c, 'a.b')}}", {}, spec=ok("`a`.`b`"))
    add(S, "{{split_to_array(s)}}", {"s": "p, q"}, spec=ok("['p', 'q']"))
    add(
        S,
        "{{testisasuperlongthingandwedontwanttoreturnthefullthing}}",
        {},
        spec=syn('expression "testisasuperlongthin..." evaluated to null'),
    )
    add(S, "{{String(s, defined=False)}}", {}, spec=syn('expression "String(s, defined=Fa..." evaluated to null'))
    for v, r in [
        ("1000", "1000.0"),
        ("0.5", "0.5"),
        ("0.0001", "0.0001"),
        ("16777216", "16777216.0"),
        ("1e16", "1e+16"),
        ("0.00001", "1e-05"),
        ("123456789012345678", "1.2345678901234568e+17"),
        ("1e300", "1e+300"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("-inf", "-inf"),
        ("-0.0", "-0.0"),
    ]:
        add(S, "{{Float64(f)}}", {"f": v}, spec=ok("toFloat64('%s')" % r))
    add(
        S,
        "{{split_to_array(s)}}",
        {"s": "a'b,c"},
        dev=(R_CONT, ok("['a\\'b', 'c']")),
        spec=ok("[\"a'b\", 'c']"),
    )
    add(S, "{{split_to_array(s)}}", {"s": "a\\b,c\nd"}, spec=ok("['a\\\\b', 'c\\nd']"))
    # §7.1
    add(S, "{{String(s)}}", {"s": "a'b\\c\"d%e`f\n"}, spec=ok("'a\\'b\\\\c\\\"d\\%e\\`f\\n'"))
    add(S, "{{String(s)}}", {"s": "\0\r\b\t\x1a"}, spec=ok("'\\0\\r\\b\\t\\z'"))
    add(S, "{{foo}}", {"foo": "';drop table users;"}, spec=ok("'\\';drop table users;'"))
    add(S, "{{String(field_filter)}}", {"field_filter": 'action."test run"'}, spec=ok("'action.\\\"test run\\\"'"))
    # §7.2
    add(S, "{{symbol(c)}}", {"c": "my`col"}, spec=ok("`my\\`col`"))
    add(S, "{{symbol(c)}}", {"c": 'a"b'}, spec=ok("`ab`"))
    add(S, "{{column(c, 'x')}}", {"c": 'a"b'}, spec=ok("`ab`"))
    # §8.1
    add(S, "{{Int32('5')}}", {}, spec=ok("toInt32('5')"))
    add(S, "{{String(foo + 'abcd')}}", {"foo": "x"}, spec=ok("'xabcd'"))
    add(S, "{{Int32(n, 0)}}", {}, spec=ok("toInt32('0')"))
    add(S, "{{Float32(n, 0)}}", {}, spec=ok("toFloat32('0.0')"))
    add(S, "{{String(x, '')}}", {}, spec=ok("''"))
    add(S, "{{String(x, 0)}}", {}, spec=ok("'0'"))
    add(S, "{{Int32(x, '')}}", {}, spec=invalid("", "Int32"))
    add(S, "{{Int32(n, 7)}}", {"n": ""}, spec=invalid("", "Int32"))
    add(S, "{{String(n, 'd')}}", {"n": ""}, spec=ok("''"))
    add(S, "{{String(s, enum=['a','b'])}}", {"s": "c"}, spec=ok("'c'"))
    # §8.2 notes
    for v in [
        "2024-01-01T00:00:00",
        "2024-01-01 00:00:00xyz",
        "2024/01/01 00:00:00",
        "01.02.2024 00:00:00",
        "2024-13-45 99:99:99",
    ]:
        add(S, "{{DateTime(d)}}", {"d": v}, spec=ok("'%s'" % v))
    add(S, "{{DateTime(d)}}", {"d": "2024-01-01 00:00:00' OR 1=1 --"}, spec=ok("'2024-01-01 00:00:00\\' OR 1=1 --'"))
    add(S, "{{Int32(n)}}", {"n": 5}, spec=ok("toInt32('5')"))
    add(S, "{{Int32(n)}}", {"n": 5.5}, spec=invalid("5.5", "Int32"))
    add(S, "{{Int32(n)}}", {"n": True}, spec=invalid("True", "Int32"))
    add(S, "{{Float64(n)}}", {"n": 5}, spec=ok("toFloat64('5.0')"))
    add(S, "{{String(n)}}", {"n": True}, spec=ok("'True'"))
    add(S, "{{String(n)}}", {"n": {"a": 1}}, spec=ok("'{\\'a\\': 1}'"))
    add(S, "{{String(n)}}", {"n": ["a", "b"]}, spec=ok("'[\\'a\\', \\'b\\']'"))
    add(
        S,
        "{{Int32(n)}}",
        {"n": "5\n"},
        dev=(R_DIGITS, invalid("5\n", "Int32")),
        spec=ok("toInt32('5')"),
    )
    # §8.2 table
    add(S, "{{String(s, 'def')}}", {}, spec=ok("'def'"))
    add(S, "{{String(s)}}", {"s": 5}, spec=ok("'5'"))
    add(S, "{{String(s)}}", {"s": ""}, spec=ok("''"))
    add(S, "{{Int(n)}}", {"n": "5"}, spec=ok("5"))
    add(S, "{{Integer(n)}}", {"n": "5"}, spec=ok("5"))
    add(S, "{{Int64(n)}}", {"n": " 5"}, spec=invalid(" 5", "Int64"))
    add(S, "{{Int64(n)}}", {"n": "+5"}, spec=ok("toInt64('5')"))
    add(S, "{{Int64(n)}}", {"n": "-5"}, spec=ok("toInt64('-5')"))
    add(S, "{{Int8(n)}}", {"n": "128"}, spec=ANY_ERROR)
    add(S, "{{Int8(n)}}", {"n": "-128"}, spec=ok("toInt8('-128')"))
    add(S, "{{UInt8(n)}}", {"n": "300"}, spec=invalid("300", "UInt8"))
    add(S, "{{UInt8(n)}}", {"n": "-1"}, spec=ANY_ERROR)
    add(S, "{{UInt8(n)}}", {"n": "+5"}, spec=ANY_ERROR)
    add(S, "{{UInt64(n)}}", {"n": "18446744073709551615"}, spec=ok("toUInt64('18446744073709551615')"))
    add(S, "{{Int32(n)}}", {"n": "99999999999"}, spec=ANY_ERROR)
    add(S, "{{Int32(n)}}", {"n": "1.5"}, spec=ANY_ERROR)
    v = "-170141183460469231731687303715884105728"
    add(S, "{{Int128(foo)}}", {"foo": v}, spec=ok("toInt128('%s')" % v))
    add(S, "{{Float64(f, 1.5)}}", {}, spec=ok("toFloat64('1.5')"))
    add(S, "{{Float32(f)}}", {"f": "1e3"}, spec=ok("toFloat32('1000.0')"))
    add(S, "{{Float32(foo)}}", {"foo": -1}, spec=ok("toFloat32('-1.0')"))
    add(S, "{{Float32(f)}}", {"f": "nan"}, spec=ok("toFloat32('nan')"))
    add(S, "{{Float32(f)}}", {"f": "inf"}, spec=ok("toFloat32('inf')"))
    add(S, "{{Float32(f)}}", {"f": "1e300"}, spec=ok("toFloat32('1e+300')"))
    add(S, "{{Float64(f)}}", {"f": "1_000"}, spec=ANY_ERROR)
    add(S, "{{Float64(f)}}", {"f": "abc"}, spec=ANY_ERROR)
    add(S, "{{Float64(n)}}", {"n": "0.00001"}, spec=ok("toFloat64('1e-05')"))
    add(S, "{{Float64(n)}}", {"n": "1e16"}, spec=ok("toFloat64('1e+16')"))
    add(S, "{{Float64(n)}}", {"n": " 1.5 "}, spec=ok("toFloat64('1.5')"))
    add(S, "{{DateTime(d)}}", {"d": "2024-01-01 00:00:00"}, spec=ok("'2024-01-01 00:00:00'"))
    add(S, "{{DateTime(d)}}", {"d": "2024-01-01"}, spec=invalid("2024-01-01", "DateTime"))
    add(S, "{{DateTime64(d)}}", {"d": "2024-01-01 00:00:00.123"}, spec=ok("'2024-01-01 00:00:00.123'"))
    add(S, "{{DateTime64(d)}}", {"d": "2024-01-01 00:00:00"}, spec=ANY_ERROR)
    add(S, "{{DateTime64(d)}}", {"d": "2024-01-01 00:00:00.1"}, spec=ANY_ERROR)
    add(S, "{{DateTime64(variable, '2020-09-09 10:10:10.000')}}", {}, spec=ok("'2020-09-09 10:10:10.000'"))
    add(S, "{{Date(d)}}", {"d": "2024-01-01"}, spec=ok("'2024-01-01'"))
    add(S, "{{Date(d)}}", {"d": "2024-01-01 00:00:00"}, spec=invalid("2024-01-01 00:00:00", "Date"))
    add(S, "{{Int32(n)}}", {}, spec=req("n"))
    add(S, "{{Int32(n, 7, required=True, description='x', example='3', format='int')}}", {}, spec=ok("toInt32('7')"))
    # §8.3
    for v, r in [("false", "0"), ("FALSE", "0"), ("False", "0"), ("0", "0"), ("", "0"),
                 ("true", "1"), ("True", "1"), ("no", "1"), ("off", "1"),
                 (True, "1"), (False, "0"), (2, "1"), (0, "0")]:
        add(S, "{{Boolean(b)}}", {"b": v}, spec=ok(r))
    add(S, "{{Boolean(b)}}", {}, spec=ok("0"))
    add(S, "{{Boolean(b, True)}}", {}, spec=ok("1"))
    # §8.4
    add(S, "{{Array(a, 'Int32')}}", {"a": "1,2,3"}, spec=ok("[1,2,3]"))
    add(S, "{{Array(a, 'Int32')}}", {"a": ["1", "2"]}, spec=ok("[1,2]"))
    add(S, "{{Array(a, 'Int32')}}", {"a": "1,x"}, spec=syn("Error validating [1,x][1] (x) to type Int32"))
    add(S, "{{Array(a, 'Int32')}}", {"a": "1, 2"}, spec=syn("Error validating [1, 2][1] ( 2) to type Int32"))
    add(S, "{{Array(a, 'Int32')}}", {"a": [1, "x"]}, spec=syn("Error validating [[1, 'x']][1] (x) to type Int32"))
    add(
        S,
        "{{ Array(embedding, 'Float32') }}",
        {"embedding": "1,2,3,4, null"},
        spec=syn("Error validating [1,2,3,4, null][4] ( null) to type Float32"),
    )
    add(S, "{{Array(a, 'Int32')}}", {"a": ""}, spec=syn("Error validating [][0] (empty string) to type Int32"))
    add(S, "{{ Array(embedding, 'Int32', '') }}", {}, spec=syn("Error validating [][0] (empty string) to type Int32"))
    add(S, "{{Array(a, 'String')}}", {"a": ""}, spec=ok("['']"))
    add(S, "% SELECT {{Array(click_selector, 'String', '')}}", {}, spec=ok("% SELECT ['']"))
    add(S, "{{Array(a, 'String')}}", {"a": "x, y"}, spec=ok("['x',' y']"))
    add(S, "{{Array(a, 'String')}}", {"a": "a'b,c"}, spec=ok("['a\\'b','c']"))
    add(S, "{{Array(a, 'String')}}", {"a": [1, 2]}, spec=ok("['1','2']"))
    add(S, "{{Array(a, 'String', default='x,y')}}", {}, spec=ok("['x','y']"))
    add(S, "{{Array(a, 'Int8', '1,2')}}", {}, spec=ok("[1,2]"))
    add(S, "{{Array(a, 'Float32')}}", {"a": "1,2.5"}, spec=ok("[1.0,2.5]"))
    add(S, "{{Array(a, 'Date')}}", {"a": "2024-01-01,2024-01-02"}, spec=ok("['2024-01-01','2024-01-02']"))
    add(S, "{{Array(a, 'DateTime')}}", {"a": "2024-01-01 00:00:00"}, spec=ok("['2024-01-01 00:00:00']"))
    add(S, "{{Array(a, 'Boolean')}}", {"a": "true,0"}, spec=ok("[1,0]"))
    add(S, "{{Array(a, 'UInt8')}}", {"a": "1,300"}, spec=syn("Error validating [1,300][1] (300) to type UInt8"))
    add(S, "{{Array(foo)}}", {"foo": "a,b,c,d"}, spec=ok("['a','b','c','d']"))
    add(S, "{{Array(a)}}", {"a": "p,q"}, spec=ok("['p','q']"))
    add(S, "{{Array(a, 'Int32')}}", {}, spec=req("a"))
    add(S, "{{Array(a, 'Int32')}}", {"a": {"k": 1}}, spec=syn("transform type function Array is not well defined"))
    # §8.5
    add(S, "{{JSON(j)}}", {}, spec=ok("{}"))
    add(S, "{{JSON(j, '[]')}}", {}, spec=ok("[]"))
    add(
        S,
        "{{JSON(j)}}",
        {"j": "notjson"},
        match="upto_dash",
        spec=syn("Error parsing JSON: 'notjson' - Expecting value: line 1 column 1 (char 0)"),
    )
    add(S, "{{JSON(j, '{}')}}", {"j": '{"a":1}'}, spec=ok("{'a': 1}"))
    t = "% SELECT * FROM employees WHERE 0 {% for kv in JSON(payload) %} OR department = {{kv['dp']}} {% end %}"
    add(
        S,
        t,
        {"payload": '[{"dp":"Design"},{"dp":"Marketing"}]'},
        spec=ok("% SELECT * FROM employees WHERE 0  OR department = 'Design'  OR department = 'Marketing' "),
    )
    add(S, t, {}, spec=ok("% SELECT * FROM employees WHERE 0 "))
    add(
        S,
        "{% for item in JSON(filters, '[{}]') %} {{item.get('operand')}} {% end %}",
        {},
        spec=syn("expression \"item.get('operand')\" evaluated to null"),
    )
    # §9.1
    add(S, "{{defined(x)}}", {"x": ""}, spec=ok("True"))
    add(S, "{{defined(x)}}", {}, spec=ok("False"))
    # §9.2
    add(S, "{{column(c, 'ts')}}", {"c": "a.b"}, spec=ok("`a`.`b`"))
    add(S, "{{column(c, 'ts')}}", {}, spec=ok("`ts`"))
    add(S, "{{column(agg)}}", {"agg": '"foo"'}, spec=ok("`foo`"))
    add(S, "{{column(c, 'ts')}}", {"c": "a`b"}, spec=ok("`a\\`b`"))
    add(
        S,
        "{{column(c)}}",
        {},
        spec=syn("Missing column() default value, use `column(column_name, 'default_column_name')`"),
    )
    add(S, "{{columns(c, 'a,b')}}", {}, spec=ok("`a`,`b`"))
    add(S, "{{columns(c, 'a,b')}}", {"c": "x, y.z"}, spec=ok("`x`,`y`.`z`"))
    add(S, "{{columns(agg, 'a,b,c')}}", {"agg": "foo"}, spec=ok("`foo`"))
    add(S, "{{columns('a,b,c')}}", {}, spec=ok("`a`,`b`,`c`"))
    add(
        S,
        "{{columns(c)}}",
        {},
        spec=syn("Missing columns() default value, use `columns(column_names, 'default_column_name')`"),
    )
    add(S, "{{columns(c, 'a,b')}}", {"c": ["a", "b"]}, spec=syn("The 'columns' function expects a String not an Array"))
    add(
        S,
        "{{columns(c, 'a,b', fn='sum')}}",
        {},
        dev=(R_COLS, ok("sum(`a`) as `a`,sum(`b`) as `b`")),
        spec=ok("sum(`a`) as a,sum(`b`) as b"),
    )
    add(S, "{{symbol(c)}}", {"c": "a.b"}, spec=ok("`a.b`"))
    add(S, "{{symbol(split_to_array(c)[0])}}", {"c": "x,y"}, spec=ok("`x`"))
    # §9.3
    add(S, "{{table(t, 'default')}}", {"t": "events"}, spec=ok("events"))
    add(
        S,
        "{{table(t, 'default')}}",
        {"t": "my`tab"},
        dev=(R_TABLE, syn("Invalid table name 'my`tab'")),
        spec=ok("my\\`tab"),
    )
    add(S, "{{table(t)}}", {"t": "a b"}, dev=(R_TABLE, syn("Invalid table name 'a b'")), spec=ok("a b"))
    add(
        S,
        "select * from {{table(foo)}}",
        {"foo": '"table-name"'},
        dev=(R_TABLE, syn("Invalid table name '\"table-name\"'")),
        spec=ok("select * from table-name"),
    )
    # §9.4
    add(S, "{{sql_and(a__in=Array(a), b__gte=Int32(b, 0))}}", {"a": "x,y"}, spec=ok("a in ['x','y'] and b >= toInt32('0')"))
    add(S, "{{sql_and(a=a, b=b)}}", {"a": "1", "b": "2"}, spec=ok("a = '1' and b = '2'"))
    add(S, "{{sql_and(a=a, b=b)}}", {"b": "2"}, spec=ok("b = '2'"))
    add(S, "{{sql_and(a=Int(a, defined=False), b=Int(b, defined=False))}}", {"b": "2"}, spec=ok("b = 2"))
    add(S, "{{sql_and(a__not_in=Array(a), b=b)}}", {"a": "a,b,c", "b": "2"}, spec=ok("a not in ['a','b','c'] and b = '2'"))
    add(
        S,
        "{{sql_and(a__not_in=Array(a, 'Int32'), c__lte=Float32(c, 1), d__gt=Int(d, 2))}}",
        {"a": "1,2"},
        spec=ok("a not in [1,2] and c <= toFloat32('1.0') and d > 2"),
    )
    add(S, "{{sql_and(a__like=String(a))}}", {"a": "x"}, spec=syn("operand like not supported"))
    add(S, "{{sql_and(a=String(a, defined=False))}}", {}, spec=ok(""))
    # §9.5
    add(S, "{{split_to_array(s, 'x,y')}}", {}, spec=ok("['x', 'y']"))
    add(S, "{{split_to_array(s)}}", {}, spec=ok("['']"))
    add(S, "{{split_to_array(s, '', '|')}}", {"s": "a|b"}, spec=ok("['a', 'b']"))
    add(
        S,
        "{{split_to_array(s)}}",
        {"s": 5},
        spec=syn(
            "First argument of split_to_array has to be a value that can be split to a list of elements, but found a PlaceHolder with no value instead"
        ),
    )
    add(S, "{{enumerate_with_last(split_to_array(s))}}", {"s": "a,b"}, spec=ok("[(False, 'a'), (True, 'b')]"))
    add(S, "{{sql_unescape(String(s), '%')}}", {"s": "ab%"}, spec=ok("'ab%'"))
    add(S, "{{sql_unescape(String(s), '%')}}", {"s": "a'b%"}, spec=ok("'a\\'b%'"))
    add(S, "{{sql_unescape(String(pepe), '%')}}", {"pepe": "raul_el_bueno_is_the_best_%"}, spec=ok("'raul_el_bueno_is_the_best_%'"))
    add(S, "{{sql_unescape(String(s), '_')}}", {"s": "a_b%"}, spec=ok("'a_b\\%'"))
    add(S, "{{sql_unescape(String(s))}}", {"s": "a'b"}, dev=(R_UNESC, ok("'a\\'b'")), spec=ok("'a'b'"))
    U = "unescape"
    add(U, """{{sql_unescape(String(s), "'")}}""", {"s": "a'b"}, dev=(R_UNESC, syn("sql_unescape() cannot unescape '''")))
    add(U, r"{{sql_unescape(String(s), '\\')}}", {"s": "a\\b"}, dev=(R_UNESC, syn("sql_unescape() cannot unescape '\\'")))
    add(U, "{{sql_unescape(String(s), '%_')}}", {"s": "a%b_"}, dev=(R_UNESC, ok("'a%b_'")))
    add(U, "{{sql_unescape(String(s), '%_')}}", {"s": "a%_b"})
    add(U, "{{sql_unescape(String(s), '')}}", {"s": "x\\y"}, dev=(R_UNESC, ok(lit("x\\y"))))
    add(U, "{{sql_unescape(String(s), '%')}}", {"s": "a\\%"})
    add(U, "{{sql_unescape(String(s), '`')}}", {"s": "a`b%"})
    add(U, "{{sql_unescape(s, '%')}}", {"s": "50%"})
    add(U, "{{sql_unescape(String(s, 'x%'), '%')}}", {})
    add(U, "{{sql_unescape(String(s), '$')}}", {"s": "testing%"})
    # §9.6
    add(S, "{{day_diff('2024-01-01', '2024-01-31')}}", {}, spec=ok("30"))
    add(S, "{{date_diff_in_hours('2024-01-01 00:00:00', '2024-01-02 00:00:00')}}", {}, spec=ok("24"))
    add(S, "{{date_diff_in_minutes('2024-01-01 00:00:00', '2024-01-01 01:00:00')}}", {}, spec=ok("60"))
    add(S, "{{date_diff_in_seconds('2024-01-01 00:00:00', '2024-01-01 00:01:00')}}", {}, spec=ok("60"))
    add(S, "{{date_diff_in_hours('2022-12-14 18:42:22', '2022-12-19 18:42:22')}}", {}, spec=ok("120"))
    add(
        S,
        "{{date_diff_in_days('2019-01-01', '2019/01/04', backup_date_format='%Y/%m/%d')}}",
        {},
        spec=ok("3"),
    )
    msg_dd = "invalid date format in function `day_diff`, it must be ISO format date YYYY-MM-DD, e.g. 2018-09-26. For other fotmats, try `date_diff_in_days`"
    msg_days = "invalid date format in function `date_diff_in_days`, it must be ISO format date YYYY-MM-DD, e.g. 2018-09-26"
    tail = ", defaults to YYYY-MM-DD hh:mm:ss. Or %Y-%m-%d %H:%M:%S [.ssssss]Z, e.g. ms: 2022-12-19T18:42:22.591Z s:2022-12-19T18:42:22Z"
    msg_hours = "invalid date_format in function `date_diff_in_hours`" + tail
    msg_secs = "invalid date_format in function `date_diff_in_seconds`" + tail
    add(S, "{{day_diff(a, b)}}", {"a": "x", "b": "2024-01-01"}, spec=syn(msg_dd))
    add(S, "{{date_diff_in_days(a, b)}}", {"a": "x", "b": "2024-01-01"}, spec=syn(msg_days))
    add(S, "{{date_diff_in_hours(a, b)}}", {"a": "x", "b": "2024-01-01 00:00:00"}, spec=syn(msg_hours))
    add(S, "{{date_diff_in_minutes(a, b)}}", {"a": "x", "b": "2024-01-01 00:00:00"}, spec=syn(msg_secs))
    add(S, "{{date_diff_in_seconds(a, b)}}", {"a": "x", "b": "2024-01-01 00:00:00"}, spec=syn(msg_secs))
    t = "{% if day_diff(date_from, date_to) > 30 %} FROM daily_rollup {% else %} FROM events {% end %}"
    add(S, t, {"date_from": "2024-01-01", "date_to": "2024-03-01"}, spec=ok(" FROM daily_rollup "))
    add(S, t, {"date_from": "2024-01-01", "date_to": "2024-01-05"}, spec=ok(" FROM events "))
    # §9.7
    add(S, "{{tb_secret('test', 'default_value')}}", {}, spec=ok("'default_value'"))
    add(S, "{{tb_secret('test', '')}}", {}, spec=ok("''"))
    secret_msg = "Cannot access secret 'test'. Check the secret exists in the Workspace and the token has the required scope."
    add(S, "{{tb_secret('test')}}", {}, spec=syn(secret_msg))
    add(S, "{{tb_secret('test')}}", {"test": "1234"}, spec=syn(secret_msg))
    add(S, "{{tb_var('test', 'v')}}", {}, spec=ok("'v'"))
    # §9.8
    add(S, "{{ error('user is required', 400) }}", {}, spec=user("user is required"))
    t = (
        "%\n{% if not defined(tenant_id) %}\n"
        "  {{ custom_error({'error': 'tenant_id is required', 'code': 'MISSING_TENANT'}, 400) }}\n"
        "{% end %}\nSELECT count() FROM page_views WHERE tenant_id = {{ String(tenant_id) }}"
    )
    add(S, t, {}, spec=custom(400, {"error": "tenant_id is required", "code": "MISSING_TENANT"}))
    add(S, t, {"tenant_id": "t1"}, spec=ok("%\n\nSELECT count() FROM page_views WHERE tenant_id = 't1'"))
    # §9.9
    add(S, "{{max_threads(4)}}", {}, spec=ok("-- max_threads 4\n"))
    add(S, "{{max_threads('x')}}", {}, spec=ok("-- max_threads: wrong argument x\n"))
    add(S, "{{cache_ttl('5m')}}", {}, spec=ok("-- cache_ttl 5m\n"))
    add(
        S,
        "{{cache_ttl('2h')}}",
        {},
        spec=syn("Invalid TTL cache expression, valid expressions are ('5s', '1m', '5m', '30m', '1h')"),
    )
    add(S, "{{backend_hint('x')}}", {}, spec=ok("-- backend_hint x\n"))
    add(S, "{{activate('analyzer')}}", {}, spec=ok("-- activate analyzer\n"))
    add(S, "{{activate('foo')}}", {}, spec=syn("'foo' is not a valid 'activate' argument"))
    add(S, "{{disable('analyzer')}}", {}, spec=ok("-- disable analyzer\n"))
    add(S, "{{disable('parallel_replicas')}}", {}, spec=syn("'parallel_replicas' is not a valid 'disable' argument"))
    add(S, "{{max_threads(2)}} SELECT 1", {}, spec=ok("-- max_threads 2\n SELECT 1"))
    # §10.1
    add(
        S,
        "SELECT * FROM t WHERE tenant_id = {{String(tenant_id)}}",
        {},
        spec=req("tenant_id"),
    )
    # §10.2 required-parameter list examples
    t = "{{String(test)}} and {{String(category, 'shirts')}} and {{Int32(color)}}"
    add(S, t, {}, spec=req("test and color"))
    add(S, t, {"color": "1"}, spec=req("test and color"))
    add(S, "{{String(a)}} {{String(b)}} {{String(c)}}", {"b": "x"}, spec=req("a, b and c"))
    add(S, "{{String(test)}} {% if defined(org) %}{{String(org)}}{% end %} {{columns(cols, 'a')}} {{Int32(x, 1)}}", {}, spec=req("test and org"))
    add(S, "{% if defined(x) %}{{x}}{% end %}{{String(y)}}", {}, spec=req("y"))
    add(S, "{% if not defined(x) %}A{% end %}{{String(y)}}", {}, spec=req("y"))
    add(S, "{% if x %}A{% end %}{{String(y)}}", {}, spec=req("x and y"))
    add(S, "{% if defined(x) and x == 'a' %}A{% end %}{{String(y)}}", {}, spec=req("x and y"))
    add(S, "{% set m = Int32(n) %}{{String(y)}}", {}, spec=req("m, n and y"))
    add(S, "{% set m = String(n, 'a') %}{{String(y)}}", {}, spec=req("m and y"))
    add(S, "{% for v in split_to_array(p, 'a') %}{{v}}{% end %}{{String(y)}}", {}, spec=req("v and y"))
    add(
        S,
        "{% for last, v in enumerate_with_last(split_to_array(p, 'a')) %}{{v}}{% end %}{{String(y)}}",
        {},
        spec=req("last, v and y"),
    )
    add(S, "{% if Int32(n, 0) > 1 %}A{% end %}{{String(y)}}", {}, spec=req("y"))
    add(S, "{{Boolean(b)}}{{JSON(j)}}{{String(y)}}", {}, spec=req("b, j and y"))
    add(S, "{{String(y)}}{{sql_and(a=String(a, defined=False))}}", {}, spec=req("y and a"))
    add(S, "{{String(y)}}{{ Int32(x) + 1 }}", {}, spec=req("y and x"))
    add(S, "select columns(cols, 'salary') from table where str = {{String(test)}}", {}, spec=req("test"))

    # =========================================================================================
    # type functions × values
    # =========================================================================================
    T = "type"
    int_types = [
        ("Int8", -(2**7), 2**7 - 1),
        ("Int16", -(2**15), 2**15 - 1),
        ("Int32", -(2**31), 2**31 - 1),
        ("Int64", -(2**63), 2**63 - 1),
        ("Int128", -(2**127), 2**127 - 1),
        ("Int256", -(2**255), 2**255 - 1),
        ("UInt8", 0, 2**8 - 1),
        ("UInt16", 0, 2**16 - 1),
        ("UInt32", 0, 2**32 - 1),
        ("UInt64", 0, 2**64 - 1),
        ("UInt128", 0, 2**128 - 1),
        ("UInt256", 0, 2**256 - 1),
    ]
    for typ, lo, hi in int_types:
        tpl = "{{%s(n)}}" % typ
        add(T, tpl, {"n": "42"})
        add(T, tpl, {"n": str(lo)})
        add(T, tpl, {"n": str(hi)})
        add(T, tpl, {"n": str(hi + 1)})
        add(T, tpl, {"n": str(lo - 1)})
        add(T, tpl, {"n": "abc"})
        add(T, tpl, {"n": "+7"})
        add(T, tpl, {"n": "-0"})
        add(T, tpl, {"n": "007"})
        add(T, tpl, {"n": ""})
        add(T, tpl, {})
        add(T, tpl, {"n": 12})
        add(T, tpl, {"n": False})
        add(T, tpl, {"n": "1e3"})
        add(T, "{{%s(n, 3)}}" % typ, {})
        add(T, "{{%s(n, defined=False)}}" % typ, {})
        add(T, "{{%s(n, '9', required=False, description='d', example='1', format='f', enum=['1'])}}" % typ, {"n": "8"})
        add(T, tpl, {"n": "1" + "\u0663"}, dev=(R_DIGITS, invalid("1\u0663", typ)))
    for typ in ["Int", "Integer"]:
        tpl = "{{%s(n)}}" % typ
        for v in ["5", "+5", "-2147483648", "2147483647", "2147483648", "x", "", "0005"]:
            add(T, tpl, {"n": v})
        add(T, tpl, {})
        add(T, tpl, {"n": 5})
        add(T, "{{%s(n, 3)}}" % typ, {})
        add(T, "{{%s(n) + 1}}" % typ, {"n": "4"})
        add(T, tpl, {"n": "5\n"}, dev=(R_DIGITS, invalid("5\n", "Int32")))
    for typ in ["Float32", "Float64"]:
        tpl = "{{%s(f)}}" % typ
        for v in ["1.5", "0", "-0", ".5", "5.", "1e-7", "1E5", "+1.5", "Infinity", "-nan", "3.5e38",
                  "1e400", "1.7976931348623157e308", "0.1", "123456789.123", "1e15", "1_0", "0x10",
                  "1e", "", "abc", "5e-324"]:
            add(T, tpl, {"f": v})
        add(T, tpl, {"f": 2.5})
        add(T, tpl, {"f": 7})
        add(T, tpl, {"f": True})
        add(T, tpl, {})
        add(T, "{{%s(f, '2')}}" % typ, {})
        add(T, "{{%s(f, defined=False)}}" % typ, {})
        add(T, "{{%s(f) + 1}}" % typ, {"f": "1.5"})
    for v in ["abc", "", "a'b", 5, 1.25, 1e16, False, None, [1, "a"], {"k": "v"}, "é中文🦜"]:
        add(T, "{{String(s)}}", {"s": v})
    add(T, "{{String(s)}}", {})
    add(T, "{{String(s, default='dflt')}}", {})
    add(T, "{{String(s, 5)}}", {})
    add(T, "{{String(s, defined=False)}}", {"s": "x"})
    add(T, "{{String(s, required=True, description='the s')}}", {})
    add(T, "{{String(s)}}", {"s": {"a": "x'y"}})
    for v in ["2024-01-01", "2024-1-1", "2024-01-01x", "x2024-01-01", "", "2024-01-01 00:00:00", "20240101"]:
        add(T, "{{Date(d)}}", {"d": v})
    add(T, "{{Date(d)}}", {})
    add(T, "{{Date(d, '2020-01-01')}}", {})
    add(T, "{{Date(d, 'bad')}}", {})
    add(T, "{{Date(d)}}", {"d": 20240101})
    add(T, "{{Date(d)}}", {"d": "2024-01-01\n"}, dev=(R_DIGITS, invalid("2024-01-01\n", "Date")))
    for v in ["2024-01-01T00:00:00", "2024-01-01\t00:00:00", "2024-01-01 00:00", "2024\n01-01 00:00:00",
              "1.2.2024 1:2:3", "01.02.2024 1:2:3", "2024-01-01 00:00:00.123", "", "x"]:
        add(T, "{{DateTime(d)}}", {"d": v})
    add(T, "{{DateTime(d)}}", {})
    add(T, "{{DateTime(d, '2020-01-01 00:00:00')}}", {})
    for v in ["2024-01-01T00:00:00.123Z", "2024-01-01 00:00:00.123456", "01.02.2024 1:2:3.4",
              "01.02.2024 1:2:3", "2024-01-01 00:00:00,123", ""]:
        add(T, "{{DateTime64(d)}}", {"d": v})
    add(T, "{{DateTime64(d)}}", {})
    for v in ["f", "F", "fAlSe", " false", "0.0", "00", "null", "x"]:
        add(T, "{{Boolean(b)}}", {"b": v})
    for v in [[], [0], {}, 0.0, 1.5, None]:
        add(T, "{{Boolean(b)}}", {"b": v})
    add(T, "{{Boolean(b, 'false')}}", {})
    add(T, "{{Boolean(b, 0)}}", {})
    add(T, "{{Boolean(b) + Boolean(c)}}", {"b": "1", "c": "true"})
    add(T, "{{Int32()}}", {})
    add(T, "{{String()}}", {})
    add(T, "{{Array()}}", {})
    add(T, "{{Int32(n)}}", {"n": ["1"]})
    add(T, "{{Int32(n)}}", {"n": 5.0})
    add(T, "{{Float32(1682892000.0)}}", {})
    add(T, "{{Int32(n, 5.5)}}", {})
    add(T, "{{Int32(n, '5')}}", {})
    add(T, "{{UInt8(n, -1)}}", {})
    add(T, "{{Int8(n) + Int8(m)}}", {"n": "100", "m": "100"})

    # =========================================================================================
    # Array with each element type
    # =========================================================================================
    A = "arr"
    elem_cases = {
        "Int8": ("1,-128,127", "1,128"),
        "Int16": ("1,-32768", "1,32768"),
        "Int32": ("+1,007", "1,1.5"),
        "Int64": ("9223372036854775807", "9223372036854775808"),
        "Int128": ("-170141183460469231731687303715884105728", "170141183460469231731687303715884105728"),
        "Int256": ("1,2", "a"),
        "UInt8": ("0,255", "-1"),
        "UInt16": ("65535", "65536"),
        "UInt32": ("4294967295", "+1"),
        "UInt64": ("18446744073709551615", "18446744073709551616"),
        "UInt128": ("+5,0", "-5"),
        "UInt256": ("1", "-1"),
        "Int": ("1,2", "1,x"),
        "Integer": ("3", "2147483648"),
        "Float32": ("1,2.5,1e16,-0", "1,1_0"),
        "Float64": ("0.1,nan,inf", "1,x"),
        "Date": ("2024-01-01", "2024-01-01,bad"),
        "DateTime": ("2024-01-01 00:00:00,2024-01-01T01:02:03", "2024-01-01"),
        "DateTime64": ("2024-01-01 00:00:00.000", "2024-01-01 00:00:00"),
        "Boolean": ("true,false,0,1,no,", None),
        "bool": ("FALSE,x", None),
        "String": ("a,b", None),
        "Symbol": ("a,b`c", None),
        "Column": ('x,"y"', None),
        "Foo": ("a,b", None),
    }
    for typ, (good, bad) in elem_cases.items():
        add(A, "{{Array(a, '%s')}}" % typ, {"a": good})
        if bad is not None:
            add(A, "{{Array(a, '%s')}}" % typ, {"a": bad})
        add(A, "{{Array(a, '%s')}}" % typ, {"a": ""})
        add(A, "{{Array(a, '%s', defined=False)}}" % typ, {})
    add(A, "{{Array(a, 'Int32')}}", {"a": [1, 2, 3]})
    add(A, "{{Array(a, 'Int32')}}", {"a": []})
    add(A, "{{Array(a, 'String')}}", {"a": []})
    add(A, "{{Array(a, 'String')}}", {"a": ["x", 1, True, None]})
    add(A, "{{Array(a, 'Float32')}}", {"a": [1, 2.5]})
    add(A, "{{Array(a, 'Int32')}}", {"a": 5})
    add(A, "{{Array(a, 'Int32')}}", {"a": "1,2,"})
    add(A, "{{Array(a, 'Int32', '1,x')}}", {})
    add(A, "{{Array(a, 'Int32', default='4,5', required=True, description='ids')}}", {})
    add(A, "{{Array(a, 'String', ['p', 'q'])}}", {})
    add(A, "{{Array(a)}} {{a}}", {"a": "1,2"})
    add(A, "{{a}} {{Array(a)}}", {"a": "1,2"})
    add(A, "{{Array(a, 'Int32')}} {{a}}", {"a": "1,2"})
    add(A, "{{a}} {{Array(a, 'Int32')}}", {"a": "1,2"})
    add(A, "{{Array(a, 'Int32')}} {{len(a)}}", {"a": "1,2,3"})
    add(A, "{{Array(a, 'Int32')}}", {"a": "1,\u0663"}, dev=(R_DIGITS, syn("Error validating [1,\u0663][1] (\u0663) to type Int32")))
    add(A, "{{Array(a, 'Int32')}}", {"a": "1,2\n"}, dev=(R_DIGITS, syn("Error validating [1,2\n][1] (2\n) to type Int32")))
    # Array String pre-conversion (§5.3) of values with characters that escape
    for v in ["a%b", "c`d", "e\"f", "g\\h", "i\x1aj", "k\nl", "m\0n", "o\tp", "q\rs", "t\bu", "v'w"]:
        add(A, "{{Array(a, 'String')}}", {"a": v})
        add(A, "{{Array(a, 'String')}}", {"a": [v]})
    add(A, "{{Array(split_to_array(a), 'String')}}", {"a": "a%b,c"})

    # =========================================================================================
    # JSON
    # =========================================================================================
    J = "json"
    add(J, "{{JSON(j)}}", {"j": '{"a": [1, 2.5, true, null, "x"]}'})
    add(J, "{{JSON(j)}}", {"j": "[1, 2]"})
    add(J, "{{JSON(j)}}", {"j": '"str"'})
    add(J, "{{JSON(j)}}", {"j": "5"})
    add(J, "{{JSON(j)}}", {"j": "1.0"})
    add(J, "{{JSON(j)}}", {"j": "null"})
    add(J, "{{JSON(j)}}", {"j": {"a": 1}})
    add(J, "{{JSON(j)}}", {"j": [{"a": 1}]})
    add(J, "{{JSON(j)}}", {"j": 5})
    add(J, "{{JSON(j)}}", {"j": ""}, match="upto_dash")
    add(J, "{{JSON(j)}}", {"j": "{bad json that is long"}, match="upto_dash")
    add(J, "{{JSON(j)}}", {"j": "[1,"}, match="upto_dash")
    add(J, "{{JSON(j)}}", {"j": "{\"a\": 1} x"}, match="upto_dash")
    add(J, "{{JSON(j, '[1]')}}", {})
    add(J, "{{JSON(j, 5)}}", {})
    add(J, "{{JSON(j, 'bad')}}", {}, match="upto_dash")
    add(J, "{{JSON(j).get('a', 'd')}}", {"j": "{}"})
    add(J, "{{JSON(j).get('a')}}", {"j": "{}"})
    add(J, "{{JSON(j)['a']['b']}}", {"j": '{"a": {"b": "deep"}}'})
    add(J, "{{JSON(j)[1]}}", {"j": "[10, 20]"})
    add(J, "{{len(JSON(j))}}", {"j": "[10, 20, 30]"})
    add(J, "{% for k in JSON(j) %}{{k}};{% end %}", {"j": '{"b": 1, "a": 2}'})
    add(J, "{% for k, v in JSON(j).items() %}{{k}}={{v}};{% end %}", {"j": '{"b": 1, "a": 2}'})
    add(J, "{% for x in JSON(j) %}{{x}};{% end %}", {"j": '["p", "q"]'})
    add(J, "{% set o = JSON(j) %}{% if o.get('on') %}ON{% else %}OFF{% end %}", {"j": '{"on": true}'})
    add(J, "{{String(JSON(j).get('a'))}}", {"j": '{"a": 5}'})
    add(J, "{{JSON(j).get('a')}}", {"j": '{"a": 1.5}'})
    add(J, "{{JSON(j).get('a')}}", {"j": '{"a": false}'})
    add(J, "{{JSON(j)}}", {"j": '{"k": "plain"}'})
    add(J, "{{JSON(j)}}", {"j": '{"k": "x\'y"}'}, dev=(R_CONT, ok("{'k': 'x\\'y'}")))
    add(J, "{{JSON(j)}}", {"j": '["a%b"]'}, dev=(R_CONT, ok("['a\\%b']")))
    add(J, "{{JSON(j)}}", {"j": {"k\"": "v`"}}, dev=(R_CONT, ok("{'k\\\"': 'v\\`'}")))

    # =========================================================================================
    # escaping and injection payloads in every parameter position
    # =========================================================================================
    E = "esc"
    payloads = [
        "'",
        "\\",
        "\\'",
        "`",
        "--",
        ";",
        "*/",
        "/*",
        "' OR 1=1 --",
        "a'); DROP TABLE t; --",
        "\\' OR 1=1 --",
        "é中文🦜",
        "\0",
        "x\0y",
        "\u2028",
        "%",
        '"',
        "\r\n",
        "\t",
        "\x1a",
        "\b",
        "{{x}}",
        "$$",
        "\\N",
        "a\\'b",
        '"); DROP',
        "\u200b",
    ]
    for p in payloads:
        add(E, "{{s}}", {"s": p})
        add(E, "{{String(s)}}", {"s": p})
        add(E, "{{symbol(s)}}", {"s": p})
        add(E, "{{column(s, 'd')}}", {"s": p})
        add(E, "{{columns(s, 'd')}}", {"s": p})
        add(E, "{{sql_and(c=String(s))}}", {"s": p})
        add(E, "{{f'{s}'}}", {"s": p})
        add(E, "{% for x in split_to_array(s) %}[{{x}}]{% end %}", {"s": p})
        add(E, "{{DateTime(s)}}", {"s": "2024-01-01 00:00:00" + p})
        add(E, "{{sql_unescape(String(s), '%')}}", {"s": p})
        add(E, "{{error(s)}}", {"s": p})
        add(E, "{{Array(s, 'String')}}", {"s": p})
        if is_table_name(p):
            add(E, "{{table(s)}}", {"s": p})
        else:
            add(E, "{{table(s)}}", {"s": p}, dev=(R_TABLE, syn("Invalid table name '%s'" % p)))
        if esc(p) != esc(p).replace("\\", ""):
            add(E, "{{sql_unescape(String(s))}}", {"s": p}, dev=(R_UNESC, ok(lit(p))))
        else:
            add(E, "{{sql_unescape(String(s))}}", {"s": p})
        split = [x.strip() for x in p.split(",")]
        if py_differs(split):
            add(E, "{{split_to_array(s)}}", {"s": p}, dev=(R_CONT, ok(aviary_value(split))))
        else:
            add(E, "{{split_to_array(s)}}", {"s": p})
    for p in ["a,b'c", "x\\y,z", "1%,2", "`a`,b", "é'"]:
        add(E, "{{Array(s, 'Symbol')}}", {"s": p})
        add(E, "{{Array(s, 'String')}}", {"s": p})
        parts = p.split(",")
        add(E, "{{ s.split(',') }}", {"s": p}, dev=(R_CONT, ok(aviary_value(parts))) if py_differs(parts) else None)
    add(E, "{{s}}", {"s": "\x01\x1f\x7f"})
    add(E, "{{symbol(s)}}", {"s": '"'})
    add(E, "{{symbol(s)}}", {"s": ""})
    add(E, "{{String(s)}}", {"s": "a" * 300})
    add(E, "{{s + t}}", {"s": "'", "t": "\\"})
    add(E, "{{ 'x' + s }}", {"s": "' OR '1'='1"})
    add(E, "{{s.replace('a', b)}}", {"s": "aa", "b": "'"})
    add(E, "{{ s[0:3] }}", {"s": "\\'x"})
    add(E, "{{ ','.join([s, t]) }}", {"s": "'", "t": "%"})
    add(E, "{{ String(s) + String(t) }}", {"s": "'", "t": "%"})

    # =========================================================================================
    # identifiers: column / columns / symbol / table
    # =========================================================================================
    I = "ident"
    for v in ["a.b.c", ".a", "a.", "a..b", "a b", "a`b.c\"d", " a ", "Ünïcode"]:
        add(I, "{{column(c, 'd')}}", {"c": v})
        add(I, "{{columns(c, 'd')}}", {"c": v})
        add(I, "{{symbol(c)}}", {"c": v})
    add(I, "{{columns(c, 'd')}}", {"c": "a,,b"})
    add(I, "{{columns(c, 'd')}}", {"c": ""})
    add(I, "{{column(c, 'd')}}", {"c": ""})
    add(I, "{{columns(c, 'd')}}", {"c": {"a": 1}})
    add(I, "{{columns(c, 'a, b')}}", {})
    add(I, "{{column(c, 'd')}}", {"c": None})
    add(I, "{{column('lit')}}", {})
    add(I, "{{symbol('lit')}}", {})
    add(I, "{{symbol(String(c))}}", {"c": "q'"})
    add(I, "{{symbol(c, '\"')}}", {"c": "x"})
    add(I, "{{TABLE(t)}}", {"t": "events"})
    add(I, "{{table(t)}}", {"t": "db.events"})
    add(I, "{{table(t)}}", {"t": "_t1"})
    add(I, "{{table('lit')}}", {})
    add(I, "{{table(t)}}", {"t": "1abc"}, dev=(R_TABLE, syn("Invalid table name '1abc'")))
    add(I, "{{table(t)}}", {"t": "a.b.c"}, dev=(R_TABLE, syn("Invalid table name 'a.b.c'")))
    add(I, "{{table(t)}}", {"t": "t; DROP TABLE x"}, dev=(R_TABLE, syn("Invalid table name 't; DROP TABLE x'")))
    add(I, "{{table(t)}}", {"t": "(SELECT 1)"}, dev=(R_TABLE, syn("Invalid table name '(SELECT 1)'")))
    add(I, "{{columns(c, 'a', fn='max')}}", {"c": "x, y"}, dev=(R_COLS, ok("max(`x`) as `x`,max(`y`) as `y`")))
    add(
        I,
        "{{columns(c, 'a', fn='sum')}}",
        {"c": "x from secrets --"},
        dev=(R_COLS, ok("sum(`x from secrets --`) as `x from secrets --`")),
    )
    add(I, "{{columns(c, 'a', fn='sum')}}", {"c": "a`b"}, dev=(R_COLS, ok("sum(`a\\`b`) as `a\\`b`")))
    add(
        I,
        "{{columns(c, 'a,b', fn=f)}}",
        {"f": "x) from secrets --"},
        dev=(R_COLS, syn("Invalid function name in columns(): x) from secrets --")),
    )
    add(
        I,
        "{{columns(c, 'a', fn='count(*) ')}}",
        {},
        dev=(R_COLS, syn("Invalid function name in columns(): count(*) ")),
    )
    add(I, "{{columns(c, 'a', fn=None)}}", {})

    # =========================================================================================
    # sql_and
    # =========================================================================================
    Q = "sqland"
    for suffix in ["", "__in", "__not_in", "__gt", "__lt", "__gte", "__lte"]:
        add(Q, "{{sql_and(col%s=Int32(v, 3))}}" % suffix, {})
        add(Q, "{{sql_and(col%s=Array(v, 'Int32', defined=False))}}" % suffix, {"v": "1,2"})
    for bad in ["like", "eq", "ne", "in_", "IN", "", "between"]:
        add(Q, "{{sql_and(col__%s=1)}}" % bad, {})
    add(Q, "{{sql_and(a__b__in=Array(v))}}", {"v": "x"})
    add(Q, "{{sql_and()}}", {})
    add(Q, "{{sql_and(a=v)}}", {"v": 5})
    add(Q, "{{sql_and(a=v)}}", {"v": True})
    add(Q, "{{sql_and(a=v)}}", {"v": "it's"})
    add(Q, "{{sql_and(a=Float64(v), b=Boolean(w))}}", {"v": "1.5", "w": "true"})
    add(Q, "{{sql_and(a=String(v, defined=False), b=Int32(w, defined=False))}}", {})
    add(Q, "{{sql_and(a__in=split_to_array(v))}}", {"v": "x,y"})
    add(Q, "{{sql_and(a__in=split_to_array(v))}}", {"v": "x'y,z"}, dev=(R_CONT, ok("a in ['x\\'y', 'z']")))
    add(Q, "{{sql_and(a=eval('1'))}}", {}, dev=(R_KW, syn("Invalid function name: eval")))
    add(Q, "{{sql_and(a=v.upper())}}", {"v": "x"}, dev=(R_KW, syn("Invalid method name: upper")))
    add(Q, "WHERE 1 {% if defined(v) %}AND {{sql_and(a=v)}}{% end %}", {})

    # =========================================================================================
    # split_to_array / enumerate_with_last
    # =========================================================================================
    P = "split"
    for v in ["a,b,c", " a , b ", "a,,b", ",", "", "single", "\x1fa\x1f,b", "a\u00a0,\u3000b", "a\u2028"]:
        add(P, "{% for x in split_to_array(s) %}<{{x}}>{% end %}", {"s": v})
    add(P, "{{split_to_array(s)}}", {"s": ["a", "b"]})
    add(P, "{{split_to_array(s, 'd1,d2')}}", {"s": None})
    add(P, "{{split_to_array(s, separator='|')}}", {"s": "a|b,c"})
    add(P, "{{split_to_array(s, '', ';')}}", {"s": "a;b"})
    add(P, "{{split_to_array('x,y')}}", {})
    add(P, "{{split_to_array(s)[1]}}", {"s": "a,b"})
    add(P, "{{len(split_to_array(s))}}", {"s": ""})
    add(P, "{{enumerate_with_last(split_to_array(s))}}", {"s": "only"})
    add(P, "{{enumerate_with_last([])}}", {})
    add(P, "{{enumerate_with_last('ab')}}", {})
    add(P, "{{enumerate_with_last([1, 2, 3])}}", {})
    add(P, "{% for last, x in enumerate_with_last(split_to_array(s)) %}{{x}}{% if not last %} OR {% end %}{% end %}", {"s": "p,q,r"})
    add(P, "{{enumerate_with_last(split_to_array(s))}}", {"s": "a'b"}, dev=(R_CONT, ok("[(True, 'a\\'b')]")))

    # =========================================================================================
    # day_diff / date_diff_*
    # =========================================================================================
    D = "date"
    add(D, "{{day_diff(a, b)}}", {"a": "2024-03-01", "b": "2024-02-01"})
    add(D, "{{day_diff(a, b)}}", {"a": "2024-1-5", "b": "2024-01-01"})
    add(D, "{{day_diff(a, b)}}", {"a": "2024-01-01 00:00:00", "b": "2024-01-02"})
    add(D, "{{day_diff(a, b)}}", {"a": "2024-01-01"})
    add(D, "{{day_diff(a, b, 5)}}", {})
    add(D, "{{date_diff_in_days(a, b)}}", {"a": "2020-02-28", "b": "2020-03-01"})
    add(D, "{{date_diff_in_days(a, b, '%Y-%m-%d %H:%M')}}", {"a": "2024-01-01 10:00", "b": "2024-01-02 09:00"})
    add(D, "{{date_diff_in_days(a, b, backup_date_format='%d/%m/%Y')}}", {"a": "01/01/2024", "b": "2024-01-11"})
    add(D, "{{date_diff_in_days(a, b, backup_date_format='%d/%m/%Y')}}", {"a": "bad", "b": "2024-01-11"})
    add(D, "{{date_diff_in_days(a, b, none_if_error=True)}}", {"a": "bad", "b": "2024-01-11"})
    add(D, "{% if date_diff_in_days(a, b, none_if_error=True) is None %}NONE{% end %}", {"a": "bad", "b": "2024-01-11"})
    add(D, "{{date_diff_in_hours(a, b)}}", {"a": "2024-01-01 00:00:00", "b": "2024-01-01 01:30:00"})
    add(D, "{{date_diff_in_hours(a, b)}}", {"a": "2024-01-01T00:00:00", "b": "2024-01-01 01:30:00"})
    add(D, "{{date_diff_in_hours(a, b, '%Y-%m-%dT%H:%M:%S.%fZ')}}", {"a": "2022-12-19T18:42:22.591Z", "b": "2022-12-19T20:42:22.000Z"})
    add(D, "{{date_diff_in_hours(a, b, '%Y-%m-%dT%H:%M:%SZ', backup_date_format='%Y-%m-%d')}}", {"a": "2022-12-19T18:42:22Z", "b": "2022-12-20"})
    add(D, "{{date_diff_in_minutes(a, b)}}", {"a": "2024-01-01 00:00:00", "b": "2023-12-31 23:00:59"})
    add(D, "{{date_diff_in_minutes(a, b, none_if_error=True)}}", {"a": "x", "b": "y"})
    add(D, "{{date_diff_in_seconds(a, b)}}", {"a": "2024-01-01 00:00:00", "b": "2024-01-02 00:00:01"})
    add(D, "{{date_diff_in_seconds(a, b, '%Y-%m-%d')}}", {"a": "2024-01-01", "b": "2024-01-02"})
    add(D, "{{date_diff_in_seconds(a, b)}}", {"a": "2024-01-01 00:00:00"})
    add(D, "{{date_diff_in_seconds(a, b)}}", {"a": "2024-02-30 00:00:00", "b": "2024-01-01 00:00:00"})
    add(D, "{{day_diff(a, b) + 1}}", {"a": "2024-01-01", "b": "2024-01-03"})

    # =========================================================================================
    # query hints
    # =========================================================================================
    H = "hint"
    for v in ["8", "'8'", "'x'", "0", "-1", "4.7", "None", "True", "Int32(n)", "n"]:
        add(H, "SELECT 1 {{max_threads(%s)}}" % v, {"n": "4"})
    add(H, "{{max_threads(s)}}", {"s": "1\nDROP TABLE t"}, match="verbatim",
        dev=(R_HINT, ok("-- max_threads: wrong argument 1 DROP TABLE t\n")))
    for v in ["5s", "1m", "5m", "30m", "1h", "5S", "", "10m"]:
        add(H, "{{cache_ttl('%s')}}" % v, {})
    add(H, "{{cache_ttl(s)}}", {"s": "1h"})
    for v in ["'x'", "None", "False", "s", "5"]:
        add(H, "{{backend_hint(%s)}}" % v, {"s": "replica-1"})
    add(H, "{{backend_hint(s)}}", {"s": "x\nDROP TABLE t"}, match="verbatim",
        dev=(R_HINT, ok("-- backend_hint x DROP TABLE t\n")))
    add(H, "{{backend_hint(s)}}", {"s": "x\r\nSELECT 1"}, match="verbatim",
        dev=(R_HINT, ok("-- backend_hint x  SELECT 1\n")))
    for v in ["analyzer", "parallel_replicas", "optimize_aggregation_in_order", "Analyzer", "", "x"]:
        add(H, "{{activate('%s')}}" % v, {})
    add(H, "{{activate(s)}}", {"s": "parallel_replicas"})
    add(H, "{{disable(s)}}", {"s": "analyzer"})
    add(H, "{{disable('x')}}", {})
    add(H, "{{disable('anal')}}", {}, dev=(R_DISABLE, syn("'anal' is not a valid 'disable' argument")))
    add(H, "{{disable('')}}", {}, dev=(R_DISABLE, syn("'' is not a valid 'disable' argument")))
    add(H, "{{max_threads(2)}}{{cache_ttl('1m')}}{{activate('analyzer')}}SELECT 1", {})

    # =========================================================================================
    # error / custom_error
    # =========================================================================================
    X = "err"
    add(X, "{{error('boom')}}", {})
    add(X, "{{error('boom', 403)}}", {})  # §13#8: code ignored (reference and Aviary agree)
    add(X, "{{error(s)}}", {"s": "from param"})
    add(X, "{{error('a' + s)}}", {"s": "b"})
    add(X, "{% if not defined(x) %}{{error('x is required')}}{% end %}SELECT {{x}}", {})
    add(X, "{% if not defined(x) %}{{error('x is required')}}{% end %}SELECT {{x}}", {"x": "1"})
    add(X, "{% if False %}{{error('never')}}{% end %}ok", {})
    add(X, "A{{error('mid')}}B", {})
    add(X, "{{custom_error({'error': 'nope'})}}", {})
    add(X, "{{custom_error({'error': 'nope', 'n': 1, 'l': [1, 'a'], 'o': {'x': None} }, 422)}}", {})
    add(X, "{{custom_error({'error': 'bad ' + s}, 401)}}", {"s": "tenant"})
    add(X, "{{custom_error({'error': 'e'}, 599)}}", {})
    add(X, "{{custom_error({'error': 'e'}, 200)}}", {}, dev=(R_CUSTOM, custom(400, {"error": "e"})))
    add(X, "{{custom_error({'error': 'e'}, 600)}}", {}, dev=(R_CUSTOM, custom(400, {"error": "e"})))
    add(X, "{{custom_error({'error': 'e'}, 'x')}}", {}, dev=(R_CUSTOM, custom(400, {"error": "e"})))
    add(X, "{{custom_error('plain text', 404)}}", {}, dev=(R_CUSTOM, custom(404, {"error": "plain text"})))
    add(X, "{% try %}{{error('x')}}{% except %}caught{% end %}", {})
    add(
        X,
        "{% try %}{{custom_error({'error': 'c'}, 403)}}{% except %}caught{% end %}",
        {},
        dev=(R_EXCEPT, custom(403, {"error": "c"})),
    )
    add(X, "{% if defined(x) %}{{custom_error({'error': 'x given'}, 409)}}{% end %}fine", {})

    # =========================================================================================
    # expressions: arithmetic, builtins, methods, subscripts, f-strings, containers
    # =========================================================================================
    V = "expr"
    P_ = "upto_paren"
    # (expression inside {{ }}, params, match, deviation)
    exprs = [
        ("Int32(n) * Int32(m)", {"n": "3", "m": "4"}),
        ("Int32(n) + 0.5", {"n": "3"}),
        ("Float32(f) * 2", {"f": "1.25"}),
        ("Float32(f) - Float32(f)", {"f": "1.25"}),
        ("1 + 2 * 3 - 4", {}),
        ("-(1 - 3)", {}),
        ("not 0", {}),
        ("not s", {"s": ""}),
        ("True + 1", {}),
        ("[1] * 3", {}),
        ("[1] + [2, 3]", {}),
        ("(1,) + (2,)", {}),
        ("3 * 'ab'", {}),
        ("s * 0", {"s": "ab"}),
        ("'a' + 'b' + s", {"s": "c"}),
        ("n + 1", {"n": 41}),
        ("n * 2", {"n": 1.5}),
        ("n - 1", {"n": True}),
        ("2 ** 10", {}),
        ("0.1 + 0.2", {}),
        ("1e16 + 1", {}),
        ("-0.0", {}),
        ("10000000000000000000000 * 10", {}),
        ("len(s)", {"s": "héllo"}),
        ("len([1, 2])", {}),
        ("len(JSON(j))", {"j": '{"a": 1}'}),
        ("min([3, 1, 2])", {}),
        ("max('abc')", {}),
        ("min(Int32(a, 1), 5)", {}),
        ("max(1, 2.5)", {}),
        ("int(' 5 ')", {}),
        ("int(Int32(n))", {"n": "7"}),
        ("int(Float32(f))", {"f": "7.9"}),
        ("int(-2.5)", {}),
        ("float(Int32(n))", {"n": "7"}),
        ("float('1e3')", {}),
        ("float(s)", {"s": " 2.5 "}),
        ("list('ab')", {}),
        ("list(split_to_array(s))", {"s": "a,b"}),
        ("list()", {}),
        ("s.split()", {"s": " a  b "}),
        ("s.split(',', 1)", {"s": "a,b,c"}),
        ("'-'.join(['a', 'b'])", {}),
        ("s.replace('a', 'b', 1)", {"s": "aaa"}),
        ("s[1:]", {"s": "abc"}),
        ("s[:2]", {"s": "abc"}),
        ("s[::2]", {"s": "abcde"}),
        ("s[0:-1]", {"s": "abc"}),
        ("s[1:100]", {"s": "abc"}),
        ("split_to_array(s)[0]", {"s": "a,b"}),
        ("split_to_array(s)[0:1]", {"s": "a,b"}),
        ("[10, 20, 30][split_to_array(s)[0:1][0] and 1]", {"s": "a"}, P_),
        ("JSON(j)['a'][0]", {"j": '{"a": [7]}'}),
        ("f'{s}-{Int32(n)}'", {"s": "a", "n": "5"}),
        ("f'{Int32(n) + 1}'", {"n": "5"}),
        ("f'{s}' + 'x'", {"s": "a"}),
        ("f\"{s}'\"", {"s": "a"}),
        ("f'{s.upper()}'", {"s": "a"}),
        ("f'{x}'", {}),
        ("f'{Float32(f)}'", {"f": "1.5"}),
        ("f'{1.0}'", {}),
        ("[]", {}),
        ("()", {}),
        ("{}", {}),
        ("(1,)", {}),
        ("[1, 'a', None, True, 1.5]", {}),
        ("{'b': 1, 'a': [2, 3]}", {}),
        ("{1: 'x'}", {}),
        ("[[1, 2], (3, 4)]", {}),
        ("[Int32(n)]", {"n": "5"}),
        ("[Float32(f)]", {"f": "5"}),
        ("[s]", {"s": "plain"}),
        ("[s]", {"s": "it's"}, "exact", (R_CONT, ok("['it\\'s']"))),
        ("(s, 1)", {"s": 'say "hi"'}, "exact", (R_CONT, ok("('say \\\"hi\\\"', 1)"))),
        ("{s: 1}", {"s": "k%"}, "exact", (R_CONT, ok("{'k\\%': 1}"))),
        ("[None]", {}),
        ("[defined(x)]", {}),
        ("None", {}),
        ("False", {}),
        ("1 if defined(x) else 2", {}),
        ("'x' if s else 'y'", {"s": ""}),
        ("Int32(n, 1) if defined(n) else Int32(m, 2)", {"n": "9"}),
        ("s[i]", {"s": "abc", "i": "1"}, P_),
        ("s[-1]", {"s": "abc"}, P_),
        ("s[len(s)]", {"s": "ab"}, P_),
        ("s[(0)]", {"s": "ab"}),
        ("s[5]", {"s": "ab"}),
        ("x[0](1)", {"x": "a"}, P_),
        ("b'x'", {}, P_),
        ("...", {}, P_),
        ("1j", {}, P_),
        ("~1", {}),
        ("1 << 2", {}),
        ("1 & 2", {}),
        ("1 | 2", {}),
        ("1 ^ 2", {}),
        ("1 @ 2", {}),
        ("x == 1", {"x": "1"}, P_),
        ("x in [1]", {"x": "1"}, P_),
        ("x is None", {}, P_),
        ("a or b", {}, P_),
        ("(y := 1)", {}, P_),
        ("{c for c in s}", {"s": "ab"}, P_),
        ("{c: 1 for c in s}", {"s": "ab"}, P_),
        ("(c for c in s)", {"s": "ab"}, P_),
        ("[*s]", {"s": "ab"}, P_),
        ("s.__len__()", {"s": "ab"}),
        ("s.format(1)", {"s": "{}"}),
        ("String.__name__", {}, P_),
        ("globals()['x']", {}),
        ("__import__('os')", {}),
        ("open('/etc/passwd')", {}),
        ("getattr(s, 'upper')", {"s": "a"}),
        ("split_to_array(s).pop()", {"s": "a"}),
        ("'a'.join(x).upper()", {"x": "bc"}),
        ("x if a > 1 else y", {}, P_),
        ("f'{x == 1}'", {"x": 1}, P_),
        ("[1 == 1]", {}, P_),
        ("{'k': a and b}", {}, P_),
        ("from x import y", {}, P_),
        ("String(['a'])", {}),
        ("defined([1])", {}),
        ("enumerate_with_last([1, 2])", {}),
        ("len([1, 2, 3])", {}),
    ]
    for entry in exprs:
        e, p = entry[0], entry[1]
        m = entry[2] if len(entry) > 2 else "exact"
        dv = entry[3] if len(entry) > 3 else None
        add(V, "{{ %s }}" % e, p, match=m, dev=dv)
    add(V, "{{ {} }}", {})
    add(V, "{{ {'a': {}} }}", {}, dev=(R_SYNTAX, syn("invalid syntax, line 1")))
    add(V, "{{{'a':1}}}", {}, dev=(R_SYNTAX, syn("invalid syntax, line 1")))
    add(V, "{{{x}}}", {"x": "v"})
    add(V, "{{ (1 }}", {}, dev=(R_SYNTAX, syn("invalid syntax, line 1")))
    add(V, "SELECT\n1,\n{{ 1 + }}", {}, dev=(R_SYNTAX, syn("invalid syntax, line 3")))
    add(V, "{{ x y }}", {}, dev=(R_SYNTAX, syn("invalid syntax, line 1")))
    add(V, "{{ x from y }}", {}, dev=(R_SYNTAX, syn("invalid syntax, line 1")))
    add(V, "{{ fromage + }}", {})
    add(V, "{{from}}", {})
    add(V, "{{ fromage }}", {"fromage": "brie"})
    add(V, "{{ x = 1 }}", {}, match="upto_paren")
    add(V, "{{ x; y }}", {"x": "1", "y": "2"}, dev=(R_SYNTAX, syn("invalid syntax, line 1")))
    add(V, "{{ String(x, 'a')('b') }}", {}, match="upto_paren", dev=(R_CALLCALL, syn("Invalid function: " + dump("String(x, 'a')('b')"))))
    add(V, "{{ String(x, default=1/2) }}", {}, dev=(R_KW, syn("Invalid BinOp: Div()")))
    add(V, "{{ String(x, default=s.upper()) }}", {"s": "ab"}, dev=(R_KW, syn("Invalid method name: upper")))
    add(V, "{{ String(x, default=[c for c in 'ab']) }}", {}, match="upto_paren", dev=(R_KW, syn("Invalid expression type: " + dump("[c for c in 'ab']"))))
    add(V, "{{ Int32(n, default=Int32(m, 2)) }}", {})
    add(V, "{{ 'x' + Int32(n) }}", {"n": "1"}, dev=(R_OPER, syn("unsupported operand types for +: String and Int32")))
    add(V, "{{ str }}", {}, dev=(R_BUILTIN, syn('expression "str" evaluated to null')))
    add(V, "{{ len }}", {}, dev=(R_BUILTIN, syn('expression "len" evaluated to null')))
    add(V, "{{ str }}", {"str": "given"})
    add(V, "{{ zip }}", {"zip": 5})
    add(V, "{{print}}", {"print": "p"})
    add(V, "{{ x }}", {"x": 1e16})
    add(V, "{{ x }}", {"x": 1e-7})
    add(V, "{{ x }}", {"x": -0.0})
    add(V, "{{ x }}", {"x": 123456789012345678})
    add(V, "{{ x }}", {"x": [1, [2, {"a": None}]]})
    add(V, "{{ x }}", {"x": ["a", "b"]})
    add(V, "{{ x }}", {"x": ["it's"]}, dev=(R_CONT, ok("['it\\'s']")))
    add(V, "{{ x }}", {"x": {"a": "%"}}, dev=(R_CONT, ok("{'a': '\\%'}")))
    add(V, "{{ x }}", {"x": ["tab\there", "nul\0"]}, dev=(R_CONT, ok("['tab\\there', 'nul\\0']")))
    add(V, "{{ x }}", {"x": ["\u200b"]}, dev=(R_CONT, ok("['\u200b']")))
    add(V, "{{ x }}", {"x": False})
    add(V, "{{ x }}", {"x": None})
    add(V, "{{ x }}", {"x": {}})

    # =========================================================================================
    # control flow
    # =========================================================================================
    K = "ctl"
    add(K, "{% if a %}A{% elif b %}B{% elif c %}C{% else %}D{% end %}", {"c": "1"})
    add(K, "{% if a %}A{% elif b %}B{% end %}", {})
    add(K, "{% if 0 %}x{% end %}{% if 0.0 %}x{% end %}{% if [] %}x{% end %}{% if {} %}x{% end %}{% if '' %}x{% end %}{% if None %}x{% end %}ok", {})
    add(K, "{% if '0' %}T{% end %}{% if [0] %}T{% end %}{% if -1 %}T{% end %}", {})
    add(K, "{% if x %}T{% else %}F{% end %}", {"x": False})
    add(K, "{% if x %}T{% else %}F{% end %}", {"x": 0})
    add(K, "{% if x %}T{% else %}F{% end %}", {"x": "false"})
    add(K, "{% if x %}T{% else %}F{% end %}", {"x": []})
    add(K, "{% if Boolean(x) %}T{% else %}F{% end %}", {"x": "false"})
    add(K, "{% if 1 < Int32(n) < 10 %}in{% else %}out{% end %}", {"n": "5"})
    add(K, "{% if 1 < Int32(n) < 10 %}in{% else %}out{% end %}", {"n": "50"})
    add(K, "{% if 'a' in split_to_array(s) %}Y{% else %}N{% end %}", {"s": "a,b"})
    add(K, "{% if 'z' not in split_to_array(s) %}Y{% else %}N{% end %}", {"s": "a,b"})
    add(K, "{% if x is None %}none{% end %}{% if x is not None %}some{% end %}", {})
    add(K, "{% if x != 'a' and (y == 'b' or z) %}T{% else %}F{% end %}", {"x": "q", "y": "b"})
    add(K, "{% set v = s or 'dflt' %}{{v}}", {"s": ""})
    add(K, "{% set v = s and 'then' %}{{v}}", {"s": "x"})
    add(K, "{% set v = not s %}{{v}}", {"s": "x"})
    add(K, "{% if s.startswith('ab') and s.endswith('yz') %}T{% end %}", {"s": "abcxyz"})
    add(K, "{% set t = s.strip().lower() %}{{t}}", {"s": "  MiXeD  "})
    add(K, "{% set t = s.upper() %}{{t}}", {"s": "abc"})
    add(K, "{% set t = s.lstrip('x') + s.rstrip('x') %}{{t}}", {"s": "xax"})
    add(K, "{% for k in JSON(j).keys() %}{{k}}{% end %}{% for v in JSON(j).values() %}{{v}}{% end %}", {"j": '{"a": 1, "b": 2}'})
    add(K, "{% for i in range(3) %}{{i}}{% end %}", {})
    add(K, "{% for i in range(1, 10, 3) %}{{i}},{% end %}", {})
    add(K, "{% for i, x in enumerate(split_to_array(s)) %}{{i}}:{{x}} {% end %}", {"s": "a,b"})
    add(K, "{% for a, b in zip([1, 2], split_to_array(s)) %}{{a}}{{b}}{% end %}", {"s": "x,y"})
    add(K, "{% set l = sorted(split_to_array(s)) %}{{l}}", {"s": "b,c,a"})
    add(K, "{% set t = sum([1, 2, 3]) %}{{t}}", {})
    add(K, "{% set t = str(5) + str(len(s)) %}{{t}}", {"s": "ab"})
    add(K, "{% set t = bool(s) %}{{t}}", {"s": ""})
    add(K, "{% set t = abs(-3) %}{{t}}", {})
    add(K, "{% set t = round(2.5) %}{{t}} {% set u = round(2.567, 2) %}{{u}}", {})
    add(K, "{% if any([0, s]) %}any{% end %}{% if all([1, s]) %}all{% end %}", {"s": "x"})
    add(K, "{% for x in [1,2,3] %}{{x}}{% else %}E{% end %}", {})
    add(K, "{% for x in [1,2,3] %}{% if x == 2 %}{% break %}{% end %}{{x}}{% else %}E{% end %}", {})
    add(K, "{% for x in [] %}{{x}}{% else %}empty{% end %}", {})
    add(K, "{% for x in 'abc' %}{{x}}{% end %}", {})
    add(K, "{% for x in s %}{{x}}{% end %}", {"s": "hé"})
    add(K, "{% for x in [1, 2] %}{% for y in [3, 4] %}{% if y == 4 %}{% break %}{% end %}{{x}}{{y}}{% end %}{% end %}", {})
    add(K, "{% for x in [1, 2, 3] %}{% try %}{{Int32(x) * 2}}{% except %}E{% end %}{% end %}", {})
    add(K, "{% set i = 0 %}{% while i < 5 %}{% set i += 1 %}{% if i == 2 %}{% continue %}{% end %}{% if i == 4 %}{% break %}{% end %}{{i}}{% end %}", {})
    add(K, "{% set i = 0 %}{% while i < 2 %}{{i}}{% set i = i + 1 %}{% else %}done{% end %}", {})
    add(K, "{% while False %}x{% end %}ok", {})
    add(K, "{% set i = 10 %}{% set i -= 3 %}{{i}}", {})
    add(K, "{% set x = 1 %}{% set x = x + 1 %}{{x}}", {})
    add(K, "{% set x = [1, 2] %}{% set x = x + [3] %}{{x}}", {})
    add(K, "{% set x = 'a' %}{% if True %}{% set x = 'b' %}{% end %}{{x}}", {})
    add(K, "{% if False %}{% set x = 1 %}{% end %}{{x}}", {"x": "5"})
    add(K, "{{x}}{% for x in [1] %}{% end %}", {"x": "5"})
    add(K, "{% for x in [1, 2] %}{% end %}{{x}}", {})
    add(K, "{% set n = 1 %}{% set m = n %}{{m}}", {"n": "9"})
    add(K, "{% try %}A{{Int32(x)}}{% except %}B{% finally %}C{% end %}", {"x": "no"})
    add(K, "{% try %}A{{Int32(x)}}{% except %}B{% finally %}C{% end %}", {"x": "1"})
    add(K, "{% try %}A{% finally %}C{% end %}", {})
    add(K, "{% try %}{{Int32(x)}}{% except %}B{% else %}E{% end %}", {"x": "1"})
    add(K, "{% try %}{{x}}{% except %}null caught{% end %}", {})
    add(K, "{% try %}{{String(x)}}{% except %}required caught{% end %}", {})
    add(K, "{% try %}{% try %}{{Int32(x)}}{% except %}{{error('inner')}}{% end %}{% except %}outer{% end %}", {"x": "a"})
    add(K, "{% try %}{{Int32(x)}}{% except Exception %}fb{% end %}", {"x": "no"})
    add(K, "{% try %}{{Int32(x)}}{% except ValueError %}fb{% end %}", {"x": "no"})
    add(K, "{% try %}{{Int32(x)}}{% except SomeName %}fb{% end %}", {"x": "no"}, dev=(R_EXCEPT_NAME, ok("fb")))
    add(K, "{% try %}{{Int32(x)}}{% except %}{{x}}{% end %}", {"x": "no"})
    add(K, "{% if x %}\n  A\n{% end %}\n", {"x": "1"})
    add(K, "{% if x %}{% if y %}{% if z %}deep{% end %}{% end %}{% end %}", {"x": 1, "y": 1, "z": 1})
    add(K, "{%if x%}A{%else%}B{%end%}", {"x": "1"})
    add(K, "{%   if   x   %}A{%   end   %}", {"x": "1"})
    add(K, "{% if x %}A{% end anything here %}", {"x": "1"})
    add(K, "{% for x in y %}{{x}}{% end %}", {"y": "ab"})
    add(K, "{% for x in y %}{{x}}{% end %}", {"y": 5}, dev=(R_ITER, syn("'y' is not iterable")))
    add(K, "{% for x in Int32(n) %}{{x}}{% end %}", {"n": "3"}, dev=(R_ITER, syn("'Int32(n)' is not iterable")))
    add(K, "{% if eval('1') %}A{% end %}", {}, dev=(R_STMT, syn("wrong syntax, you might be using a not valid function inside a control block")))
    add(K, "{% if s.__class__ %}A{% end %}", {"s": "x"}, dev=(R_STMT, syn("wrong syntax, you might be using a not valid function inside a control block")))
    add(K, "{% set f = lambda: 1 %}A", {}, dev=(R_STMT, syn("wrong syntax, you might be using a not valid function inside a control block")))
    add(K, "{% for x in [c for c in s] %}{{x}}{% end %}", {"s": "ab"}, dev=(R_STMT, syn("wrong syntax, you might be using a not valid function inside a control block")))
    add(K, "{% if isinstance(s, str) %}A{% end %}", {"s": "x"}, dev=(R_STMT, syn("wrong syntax, you might be using a not valid function inside a control block")))
    add(K, "{% set t = s.title() %}{{t}}", {"s": "ab"}, dev=(R_STMT, syn("wrong syntax, you might be using a not valid function inside a control block")))
    add(K, "{% set c = s[i] %}{{c}}", {"s": "abc", "i": 1})
    add(K, "{% set c = s[-1] %}{{c}}", {"s": "abc"})
    add(K, "{% if defined(x) %}{{x}}{% end", {"x": "1"})
    add(K, "{% if x %}{% for y in z %}", {})
    add(K, "{% if x %}\nA\n{{y}}\nB", {})
    add(K, "{% if x %}\n{% end %}\n{% end %}", {})
    add(K, "line1\n{% for x in y %}{% else %}{% else %}", {})
    add(K, "{% for x in y %}{% except %}{% end %}", {})
    add(K, "{% try %}{% elif x %}{% end %}", {})
    add(K, "{% while x %}{% finally %}{% end %}", {})
    add(K, "{% if x %}{% break %}{% end %}", {}, dev=(R_SETORD, syn("break outside {'for', 'while'} block at <string>:1")))
    add(K, "{% for x in [1] %}{% if 1 %}{% break %}{% end %}{% end %}ok", {})
    add(K, "{% for x in [1] %}{% try %}{% continue %}{% except %}{% end %}{% end %}ok", {})
    add(K, "{% if defined(x) %}{% set y = 1 %}{% end %}{{y}}", {"x": "1"})

    # =========================================================================================
    # lexical: comments, whitespace, escapes, parse errors with line numbers
    # =========================================================================================
    L = "lex"
    add(L, "A{# multi\nline\ncomment #}B", {})
    add(L, "A{# {{ x }} {% if %} #}B", {})
    add(L, "A{% comment {{ x }} %}B", {})
    add(L, "A{% comment %}B", {})
    add(L, "{#}", {})
    add(L, "{# a #} #}", {})
    add(L, "{{! x }} {%! y %} {#! z #}", {})
    add(L, "{{!}}", {})
    add(L, "{%!", {})
    add(L, "a { b } c {x} %} }}", {})
    add(L, "SELECT {", {})
    add(L, "SELECT {{", {})
    add(L, "{{x}}{", {"x": "1"})
    add(L, "{{ x }}}", {"x": "1"})
    add(L, "{{{ x }}", {"x": "1"})
    add(L, "{{\nx\n}}", {"x": "1"})
    add(L, "line1\nline2 {{ x", {})
    add(L, "line1\n\n{{   }}", {})
    add(L, "l1\nl2\n{% %}", {})
    add(L, "l1\n{# x", {})
    add(L, "l1\nl2\n{% end %}", {})
    add(L, "l1\n{% if", {})
    add(L, "l1\n{% bogus x %}", {})
    add(L, "l1\nl2\n{% import os %}", {})
    add(L, "{% block x %}\ny\n{% end %}", {})
    add(L, "{% block x %}y", {})
    add(L, "{% whitespace oneline %}A\t\t B\n\nC{% whitespace all %}  D  \n  E", {})
    add(L, "{% whitespace single %}A \t B\n \n C", {})
    add(L, "{% whitespace single %}{{x}}  \n\n  {{x}}", {"x": "a  \n\n  b"})
    add(L, "{% whitespace oneline %}{% if x %}  A  \n  B  {% end %}", {"x": "1"})
    add(L, "{% whitespace %}A", {})
    add(L, "{% whitespace  single  %}A  \n\n  B", {})
    add(L, "{% whitespace oneline %}<pre>  a\n\n  b</pre>", {})
    add(L, "\n\n  SELECT 1  \n", {})
    add(L, "%\nSELECT 1", {})
    add(L, "SELECT '{{x}}'", {"x": "v"})
    add(L, "SELECT \"{{x}}\"", {"x": "v"})
    add(L, "-- {{x}}\nSELECT 1", {"x": "a\nDROP"})
    add(L, "/* {{x}} */", {"x": "*/ DROP /*"})
    add(L, "{{x}}", {"x": "\u00e9\U0001F99C"})
    add(L, "\u00e9{{x}}\U0001F99C", {"x": "\u4e2d"})
    add(L, "{% set x = '{{' %}{{x}}", {})
    add(L, "{% if '{{' in marker %}Y{% else %}N{% end %}", {"marker": "a{{b"})
    add(L, "{{ '}}' }}", {}, dev=(R_SYNTAX, syn("invalid syntax, line 1")))
    add(L, "{{ '%}' }}", {})
    add(L, "{% set x = '%}' %}{{x}}", {}, dev=(R_SYNTAX, syn("invalid syntax, line 1")))
    add(L, "{{ \"\\x41\\u00e9\\n\\t\\\\\" }}", {})
    add(L, "{{ '\\'' }}", {})

    # =========================================================================================
    # reserved names and warnings
    # =========================================================================================
    W = "reserved"
    for name in ["__tb__semver", "debug_source_tables", "debug", "explain", "finalize_aggregations",
                 "output_format_json_quote_64bit_integers", "output_format_json_quote_denormals",
                 "output_format_parquet_string_as_string", "pipeline", "playground", "query_id",
                 "release_replacements", "tag", "template_parameters", "token"]:
        add(W, "{{%s}}" % name, {name: "v"})
    add(W, "{{job_timestamp}}", {"job_timestamp": "2024-01-01 00:00:00"})
    add(W, "{{DateTime(job_timestamp)}} {{debug}}", {"job_timestamp": "2024-05-06 07:08:09", "debug": "1"})
    add(W, "{{token}}{{token}}{% set debug = 1 %}", {"token": "x"})
    add(W, "{% if defined(tag) %}T{% else %}F{% end %}", {})
    add(W, "{{String(pipeline, 'p')}}", {})
    add(W, "{{q}}", {})
    add(W, "{% set q = 1 %}", {})
    add(W, "{% if defined(format) %}1{% end %}", {})
    add(W, "line\n\n{{ String(q, 'x') }}", {})
    add(W, "{{ 'q' }} {{ 'format' }}", {})
    add(W, "{{ JSON(j).get('format') }}", {"j": '{"format": "csv"}'})
    add(W, "{{length}}", {"length": "5"})
    add(W, "{{len(length)}}", {"length": "abc"})
    add(W, "{% for x in length %}{% end %}", {}, dev=(R_LENGTH, syn("'length' is not iterable")))
    add(W, "{{id}}", {})
    add(W, "{% if defined(id) %}Y{% else %}N{% end %}", {"id": 0})
    add(W, "{{open}}", {"open": "5"})
    add(W, "{{t}}{{to}}{{ok}}", {"t": "1", "to": "2", "ok": "3"})  # §13#9: renderer keeps every name
    add(W, "{{tb_secret_x}}", {})

    # =========================================================================================
    # required-parameter list (§10.2), beyond the spec's own examples
    # =========================================================================================
    R = "req"
    add(R, "{{Int32(a)}}{{Int32(a)}}{{String(b)}}", {})
    add(R, "{{String(y)}} {{x}} {{Int32(x)}}", {})
    add(R, "{% if x %}{{String(y)}}{% end %}{{String(z)}}", {})  # body before condition (reference order)
    add(R, "{% set a = x %}{{String(y)}}", {})
    add(R, "{{String(y)}} {{JSON(j, '{}')}} {{Boolean(b, 1)}}", {})
    add(R, "{{String(y)}} {{String(job_timestamp)}}", {"job_timestamp": "2024-01-01 00:00:00"})
    add(R, "{% if defined(a) %}{{String(b)}}{% end %}{{Int32(c)}}", {})
    add(R, "{% while w %}{% end %}{{String(y)}}", {})
    add(R, "{{String(y)}}{{Array(a, 'Int32', defined=False)}}", {})
    add(R, "{{Int(n)}}{{String(y)}}", {})
    add(R, "{{String(y)}}{{split_to_array(s)}}{{column(c, 'd')}}", {})
    add(R, "{% for x in split_to_array(s) %}{% end %}{% if z > 1 %}{% end %}{{Int32(n)}}", {"z": 5})
    add(R, "{{String(a)}}", {"a": None})
    add(R, "{{DateTime(when)}}", {})
    add(R, "SELECT 1", {"unused": "x"})

    # =========================================================================================
    # §11 limits and §13 rows without a renderer-visible difference
    # =========================================================================================
    M = "limit"
    add(M, "{% for i in range(10001) %}{% end %}x", {}, dev=(R_LIMIT, syn("range() is limited to 10000 elements")))
    add(M, "{% for i in range(10000) %}{% end %}x", {})
    add(
        M,
        "{% for i in range(10000) %}{% for j in range(11) %}{% end %}{% end %}x",
        {},
        dev=(R_LIMIT, syn("template loops exceeded 100000 iterations")),
    )
    add(
        M,
        "{% set i = 0 %}{% while i < 100001 %}{% set i = i + 1 %}{% end %}{{i}}",
        {},
        dev=(R_LIMIT, syn("template loops exceeded 100000 iterations")),
    )
    add(M, "{% if 1 %}" * 70 + "x" + "{% end %}" * 70, {}, dev=(R_LIMIT, syn("template nesting deeper than 64 levels")))
    add(M, "{{ " + "[" * 70 + "1" + "]" * 70 + " }}", {}, dev=(R_LIMIT, syn("template nesting deeper than 64 levels")))
    add(
        M,
        "{% set x = 'ab' * 600000 %}{{len(x)}}",
        {},
        dev=(R_LIMIT, syn("string repetition result is larger than 1048576 bytes")),
    )
    add(
        M,
        "{% set x = 'a' * 1000000 %}{% for i in range(9) %}{{x}}{% end %}",
        {},
        dev=(R_LIMIT, syn("rendered SQL is larger than 8388608 bytes")),
    )
    add(
        M,
        "{% try %}{% for i in range(10001) %}{% end %}{% except %}caught{% end %}",
        {},
        dev=(R_EXCEPT, syn("range() is limited to 10000 elements")),
    )

    mark_preconversion_deviations(c)
    return c


def main():
    corpus = build()
    ids = [case["id"] for case in corpus.cases]
    assert len(ids) == len(set(ids)), "duplicate ids"
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "corpus.jsonl")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for case in corpus.cases:
            f.write(json.dumps(case, ensure_ascii=True, sort_keys=False) + "\n")
    ndev = sum(1 for case in corpus.cases if case["deviation"])
    print("wrote %s: %d cases, %d deviations" % (path, len(corpus.cases), ndev))


if __name__ == "__main__":
    main()

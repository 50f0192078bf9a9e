#!/usr/bin/env python3
"""Run the reference renderer (PyPI tinybird-cli 6.5.5) over a differential corpus.

Usage: python reference.py corpus.jsonl > reference.jsonl

Needs only a virtualenv with `tinybird-cli==6.5.5` (which brings tornado). For every corpus
line `{"id", "template", "params", ...}` it writes one line `{"id": ..., "result": R}`, in
order, where R is one of

    {"ok": "<rendered sql>", "warnings": [...]}
    {"error": "Template Syntax Error: <message>", "kind": "syntax"}
    {"error": "<message>", "kind": "user"}                 raised by error('message')
    {"kind": "custom", "status": <int>, "body": <json>}    raised by custom_error(body, code)

Every failure other than error()/custom_error() is reported as kind "syntax" and its message
always starts with "Template Syntax Error: " (the prefix is added when the reference's own
exception lacks it: tornado ParseError, UnClosedIfError, SecurityException, the ValueError for
reserved names, raw Python exceptions). The harness never crashes on a case.
"""

import copy
import json
import logging
import signal
import sys

from tinybird import sql_template

PREFIX = "Template Syntax Error: "
CASE_TIMEOUT_SECONDS = 20


class UserTemplateError(ValueError):
    """Raised by the template function error('msg'), so it can be told apart from other
    ValueErrors the reference raises. Subclasses ValueError like the original, so a template
    `{% try %}` still catches it exactly as the reference does."""


class CaseTimeout(BaseException):
    pass


def _patched_error(s, code=400):
    raise UserTemplateError(s)


def _patch_reference():
    for table in (
        sql_template.type_fns,
        sql_template.type_fns_check,
        sql_template.function_list,
        sql_template._namespace,
    ):
        if "error" in table:
            table["error"] = _patched_error
    sql_template.error = _patched_error


def _json_safe(value):
    """custom_error bodies are arbitrary template values; make them JSON."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _json_safe(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_json_safe(v) for v in value]
        return str(value)


def _syntax(message):
    message = str(message)
    if not message.startswith(PREFIX):
        message = PREFIX + message
    return {"error": message, "kind": "syntax"}


def render(template, params):
    variables = copy.deepcopy(params)
    try:
        sql, _results, warnings = sql_template.render_sql_template(template, variables)
        return {"ok": sql, "warnings": list(warnings)}
    except KeyboardInterrupt:
        raise
    except UserTemplateError as e:
        return {"error": str(e), "kind": "user"}
    except sql_template.SQLTemplateCustomError as e:
        status = e.code
        if not isinstance(status, int) or isinstance(status, bool):
            status = str(status)
        return {"kind": "custom", "status": status, "body": _json_safe(e.err)}
    except CaseTimeout:
        return _syntax("reference renderer timed out")
    except BaseException as e:  # noqa: BLE001 - the harness must never crash on a case
        try:
            return _syntax(str(e))
        except BaseException:  # noqa: BLE001 - str() of an odd exception failed
            return _syntax(type(e).__name__)


def _on_alarm(signum, frame):
    raise CaseTimeout()


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: python reference.py corpus.jsonl\n")
        return 2
    logging.disable(logging.CRITICAL)  # the reference logs warnings for some failures
    _patch_reference()
    has_alarm = hasattr(signal, "SIGALRM")
    if has_alarm:
        signal.signal(signal.SIGALRM, _on_alarm)
    out = sys.stdout
    with open(argv[1], encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            case = json.loads(line)
            if has_alarm:
                signal.alarm(CASE_TIMEOUT_SECONDS)
            try:
                result = render(case["template"], case.get("params") or {})
            finally:
                if has_alarm:
                    signal.alarm(0)
            out.write(json.dumps({"id": case["id"], "result": result}, ensure_ascii=True) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

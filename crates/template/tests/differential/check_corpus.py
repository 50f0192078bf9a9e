#!/usr/bin/env python3
"""Sanity-check the differential corpus against the reference renderer.

Usage: python3 check_corpus.py [--python /path/to/venv/bin/python] [--keep reference.jsonl]

Runs reference.py over corpus.jsonl with the virtualenv's interpreter (tinybird-cli 6.5.5
installed; default: $AVIARY_REF_PYTHON, else /tmp/refvenv/bin/python, else this interpreter)
and prints:

- the number of cases and the counts by result kind;
- for every deviation case, whether the reference result really differs from the `expect`
  Aviary must produce (a deviation the reference already satisfies is a corpus bug);
- every case whose reference output contains a Python set of strings (order varies between
  runs) or a memory address (such cases cannot be compared; only deviations may contain them);
- the spec examples (gen_corpus.build().spec) that the reference does not reproduce.

Comparison rules are those of the Rust differential test: rendered SQL whitespace-insensitively;
error kind exactly and message exactly, up to the first "(" (match=upto_paren) or up to the
first " - " (match=upto_dash); custom errors by status and body.

Exit status 1 when the corpus has a problem (stale corpus.jsonl, harness failure, a deviation
the reference already matches, an unstable reference output outside a deviation).
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import gen_corpus  # noqa: E402

PREFIX = "Template Syntax Error: "
SET_RE = re.compile(r"\{'[^'{}]*'(?:, '[^'{}]*')+\}")
ADDR_RE = re.compile(r"\bat 0x[0-9a-fA-F]+|0x[0-9a-fA-F]{6,}")


def default_python():
    env = os.environ.get("AVIARY_REF_PYTHON")
    if env:
        return env
    if os.path.exists("/tmp/refvenv/bin/python"):
        return "/tmp/refvenv/bin/python"
    return sys.executable


def norm_sql(s):
    return " ".join(s.split())


def err_key(msg, match):
    if msg is None:
        return None
    if match == "upto_paren":
        return msg.split("(", 1)[0]
    if match == "upto_dash":
        return msg.split(" - ", 1)[0]
    return msg


def same(actual, expected, match):
    """Does `actual` satisfy `expected` under the Rust test's comparison rules?"""
    if "ok" in expected:
        if match == "verbatim":
            return "ok" in actual and actual["ok"] == expected["ok"]
        return "ok" in actual and norm_sql(actual["ok"]) == norm_sql(expected["ok"])
    if expected.get("kind") == "custom":
        return (
            actual.get("kind") == "custom"
            and actual.get("status") == expected.get("status")
            and actual.get("body") == expected.get("body")
        )
    if "error" not in actual or actual.get("kind") != expected.get("kind"):
        return False
    if expected.get("error") is None:  # spec says "error" without a text
        return True
    return err_key(actual["error"], match) == err_key(expected["error"], match)


def kind_of(result):
    if "ok" in result:
        return "ok"
    return result.get("kind", "?")


def show(result, limit=220):
    text = json.dumps(result, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…(%d chars)" % len(text)


def result_text(result):
    if "ok" in result:
        return result["ok"]
    if "error" in result:
        return result["error"]
    return json.dumps(result.get("body"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=default_python())
    ap.add_argument("--corpus", default=os.path.join(HERE, "corpus.jsonl"))
    ap.add_argument("--keep", help="also write the reference results to this file")
    args = ap.parse_args()
    problems = 0

    with open(args.corpus, encoding="utf-8") as f:
        cases = [json.loads(line) for line in f if line.strip()]
    built = gen_corpus.build()
    if [json.dumps(c, sort_keys=True) for c in built.cases] != [json.dumps(c, sort_keys=True) for c in cases]:
        print("PROBLEM: corpus.jsonl is stale; run `python3 gen_corpus.py`")
        problems += 1
    spec_expect = built.spec

    proc = subprocess.run(
        [args.python, os.path.join(HERE, "reference.py"), args.corpus],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=False,
    )
    if proc.returncode != 0:
        print("PROBLEM: reference.py exited with %d\n%s" % (proc.returncode, proc.stderr.decode()[-3000:]))
        return 1
    out_lines = proc.stdout.decode("utf-8").splitlines()
    if args.keep:
        with open(args.keep, "w", encoding="utf-8") as f:
            f.write("\n".join(out_lines) + "\n")
    results = [json.loads(line) for line in out_lines]
    if [r["id"] for r in results] != [c["id"] for c in cases]:
        print("PROBLEM: reference output ids do not match the corpus (%d vs %d lines)" % (len(results), len(cases)))
        return 1
    by_id = {r["id"]: r["result"] for r in results}

    # ---- totals -------------------------------------------------------------------------
    kinds = collections.Counter(kind_of(r["result"]) for r in results)
    groups = collections.Counter(c["id"].rsplit("_", 1)[0] for c in cases)
    matches = collections.Counter(c["match"] for c in cases)
    devs = [c for c in cases if c["deviation"]]
    print("total cases: %d" % len(cases))
    print("reference result kinds: " + ", ".join("%s=%d" % kv for kv in sorted(kinds.items())))
    print("groups: " + ", ".join("%s=%d" % kv for kv in sorted(groups.items())))
    print("match modes: " + ", ".join("%s=%d" % kv for kv in sorted(matches.items())))
    print("deviation cases: %d" % len(devs))

    # ---- harness sanity ------------------------------------------------------------------
    for c in cases:
        r = by_id[c["id"]]
        if r.get("kind") == "syntax" and not r["error"].startswith(PREFIX):
            print("PROBLEM: %s syntax error without prefix: %s" % (c["id"], show(r)))
            problems += 1
        if "reference renderer timed out" in json.dumps(r):
            print("PROBLEM: %s timed out in the reference" % c["id"])
            problems += 1
        if c["match"] == "upto_paren" and not ("error" in r and "(" in r["error"]) and not c["deviation"]:
            print("NOTE: %s has match=upto_paren but the reference result has no '(' message: %s" % (c["id"], show(r)))
        if c["match"] == "upto_dash" and not ("error" in r and " - " in r["error"]) and not c["deviation"]:
            print("NOTE: %s has match=upto_dash but the reference result has no ' - ' message: %s" % (c["id"], show(r)))

    # ---- deviations ---------------------------------------------------------------------
    print("\n== deviations: does the reference differ from what Aviary must produce? ==")
    reasons = collections.Counter()
    for c in devs:
        r = by_id[c["id"]]
        exp = c["deviation"]["expect"]
        reason = c["deviation"]["reason"]
        reasons[reason] += 1
        if same(r, exp, c["match"]):
            if reason == gen_corpus.R_SETORD:
                status = "same this run (set order is random; fine)"
            else:
                status = "SAME -> corpus bug"
                problems += 1
        else:
            status = "differs"
        print("%-12s %-44s ref=%s" % (c["id"], status, show(r, 120)))
        if status.startswith("SAME"):
            print("             expect=%s" % show(exp, 160))
    print("\ndeviation reasons:")
    for reason, n in sorted(reasons.items()):
        print("  %3d  %s" % (n, reason))

    # ---- unstable outputs ---------------------------------------------------------------
    print("\n== reference outputs with a Python set of strings or a memory address ==")
    unstable = 0
    for c in cases:
        r = by_id[c["id"]]
        text = result_text(r)
        hits = []
        if SET_RE.search(text):
            hits.append("python-set")
        if ADDR_RE.search(text):
            hits.append("address")
        if hits:
            unstable += 1
            ok_dev = bool(c["deviation"])
            print("%-12s %s%s %s" % (c["id"], "+".join(hits), "" if ok_dev else " (NOT a deviation!)", show(r, 140)))
            if not ok_dev:
                problems += 1
    if not unstable:
        print("(none)")

    # ---- spec cross-check ---------------------------------------------------------------
    print("\n== spec examples the reference does NOT reproduce ==")
    bad = 0
    for cid, exp in spec_expect.items():
        case = next(c for c in cases if c["id"] == cid)
        r = by_id[cid]
        if not same(r, exp, case["match"]):
            if case["deviation"] and exp == case["deviation"]["expect"]:
                continue  # the spec's example is Aviary's (deviating) behaviour
            bad += 1
            print("%s  template=%s params=%s" % (cid, json.dumps(case["template"]), json.dumps(case["params"])))
            print("    spec:      %s" % show(exp))
            print("    reference: %s" % show(r))
    if not bad:
        print("(none)")
    print("\nspec examples checked: %d" % len(spec_expect))

    print("\n%s" % ("OK" if problems == 0 else "PROBLEMS: %d" % problems))
    return 0 if problems == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

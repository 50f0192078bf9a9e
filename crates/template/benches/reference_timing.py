"""Times the reference renderer (PyPI tinybird-cli, tinybird.sql_template) on the nodes and
parameters given as JSON on stdin: {"nodes": [sql, ...], "params": {...}, "seconds": s}.
Prints the mean microseconds per render of all nodes (one "render" = every node once), as JSON.
The reference caches parsed templates itself (lru_cache), so this measures render from a parsed
template, like the Rust side."""

import json
import sys
import time

from tinybird.sql_template import render_sql_template

spec = json.load(sys.stdin)
nodes, params, budget = spec["nodes"], spec["params"], spec.get("seconds", 3.0)


def once():
    for sql in nodes:
        render_sql_template(sql, dict(params))


for _ in range(200):  # warm the caches
    once()
n, start = 0, time.perf_counter()
while time.perf_counter() - start < budget:
    for _ in range(100):
        once()
    n += 100
elapsed = time.perf_counter() - start
print(json.dumps({"renders": n, "micros_per_render": elapsed / n * 1e6}))

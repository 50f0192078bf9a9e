"""Tinybird's Python clients reading pipe endpoints of a running Aviary: `tinybird-python-sdk`
(PyPI, module `tb`) buffers events into a data source and calls an endpoint through its API
class; `verdin` queries endpoints with parameters, pages through one with `q=… FROM _`, runs
SQL over one, and gets a PipeError for a missing pipe. Prints one JSON line with what they saw;
the Rust test checks it. Usage: sdk_pipes.py <base url> <admin token>"""

import json
import sys

from tb.api import API
from tb.datasource import Datasource
from verdin.client import Client
from verdin.pipe import PipeError

url, token = sys.argv[1], sys.argv[2]

with Datasource("events", token, api_url=url) as ds:
    for i in range(30):
        ds << {
            "timestamp": f"2026-11-02 10:00:{i:02d}.000",
            "org": "sdk",
            "user": f"u{i % 7}",
            "event": "page_view",
            "path": f"/p{i % 3}",
            "country": "ES",
            "duration_ms": 10 * i,
            "tags": [],
        }

api = API(token, url)
kpis = api.get("/pipes/kpis.json", params={"org": "sdk"}).json()

client = Client(token, api=url)
pipe = client.pipe("top_pages")
top = pipe.query({"org": "sdk", "limit": "2"})
pages = [len(p.data) for p in client.pipe("top_pages").pages(page_size=2)]
over = pipe.sql("select count() as c from _")
try:
    client.pipe("nope").query()
    missing = None
except PipeError as e:
    missing = [e.response.status_code, e.description]

print(
    json.dumps(
        {
            "kpis": {k: kpis["data"][0][k] for k in ("events", "visitors", "page_views")},
            "top": top.data,
            "top_meta": top.meta,
            "pages": pages,
            "over": over.data,
            "missing": missing,
        }
    )
)

"""Tinybird's Python client `verdin` (PyPI) against a running Aviary: events with wait,
NDJSON and CSV appends, then the rows read back with verdin's SQL query. Prints one JSON line
with what it saw; the Rust test checks it. Usage: verdin_ingest.py <base url> <admin token>"""

import json
import sys

from verdin.client import Client

url, token = sys.argv[1], sys.argv[2]
client = Client(token, api=url)
ds = client.datasource("events")

event = {
    "timestamp": "2026-11-01 10:00:00.000",
    "org": "verdin",
    "user": "u1",
    "event": "page_view",
    "path": "/",
    "country": "ES",
    "duration_ms": 10,
    "tags": ["a"],
}
events = ds.send_events([event, dict(event, user="u2"), dict(event, duration_ms=-1)], wait=True)
ndjson = ds.append_ndjson([dict(event, user="u3"), dict(event, user="u4")])
csv = ds.append_csv([["2026-11-01 10:00:01.000", "verdin", "u5", "click", "/x", "DE", 7, "['b']"]])

query = client.sql("SELECT count(*) AS c FROM events WHERE org = 'verdin'")
result = query.json()
print(
    json.dumps(
        {
            "events": {"status": events.status_code if hasattr(events, "status_code") else None,
                       "successful_rows": getattr(events, "successful_rows", None),
                       "quarantined_rows": getattr(events, "quarantined_rows", None)},
            "ndjson_status": ndjson.status_code,
            "csv_status": csv.status_code,
            "count": result.data[0]["c"],
        }
    )
)

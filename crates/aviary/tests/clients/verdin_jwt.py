"""verdin (PyPI) querying an endpoint with a tenant JWT: the token's fixed `org` wins over the
`org` verdin sends, and paging through the endpoint stays inside the tenant. Prints one JSON
line. Usage: verdin_jwt.py <base url> <jwt>"""

import json
import sys

from verdin.client import Client

url, jwt = sys.argv[1], sys.argv[2]
client = Client(jwt, api=url)
kpis = client.pipe("kpis").query({"org": "globex"})
pages = [len(p.data) for p in client.pipe("top_pages").pages(page_size=2)]
print(json.dumps({"events": kpis.data[0]["events"], "pages": pages}))

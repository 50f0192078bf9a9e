// Tinybird's data generator `@tinybirdco/mockingbird` (npm) streaming fake events into a
// running Aviary through its TinybirdGenerator, as users point it at Tinybird.
// Usage: node mockingbird.mjs <node_modules dir> <base url> <admin token> <rows>
import { pathToFileURL } from "node:url";
import path from "node:path";

const [modules, url, token, rows] = process.argv.slice(2);
const entry = pathToFileURL(path.join(modules, "@tinybirdco/mockingbird/dist/index.js")).href;
const { TinybirdGenerator } = await import(entry);

const generator = new TinybirdGenerator({
  endpoint: url,
  datasource: "page_views",
  token,
  eps: 2000,
  limit: Number(rows),
  logs: true,
  schema: {
    timestamp: { type: "mockingbird.timestampNow" },
    org: { type: "mockingbird.pick", params: [{ values: ["acme", "globex", "initech"] }] },
    session_id: { type: "string.uuid" },
    duration_ms: { type: "number.int", params: [{ min: 1, max: 5000 }] },
  },
});
let sent = 0;
await generator.generate((batch) => {
  sent += batch.length;
});
console.log(JSON.stringify({ sent }));

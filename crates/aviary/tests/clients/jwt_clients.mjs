// Tinybird's npm client and `jose` with JWTs against a running Aviary: `@tinybirdco/sdk`'s
// `createJWT` mints a tenant token through `POST /v0/tokens?expiration_time=…` and its
// `query` reads an endpoint with it; a token signed locally by `jose` (as the seed's first
// version did) is accepted too; each asks for another tenant's rows in its parameters.
// Prints one JSON line. Usage: node jwt_clients.mjs <node_modules> <base url> <admin token> <workspace id>
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modules, url, admin, workspaceId] = process.argv.slice(2);
// The packages are ES modules in a folder of their own: import each by its `exports` entry.
const load = async (name) => {
  const dir = path.join(modules, name);
  const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
  const root = pkg.exports?.["."];
  const entry = (typeof root === "string" ? root : root?.import ?? root?.default) ?? pkg.module ?? pkg.main;
  return import(pathToFileURL(path.join(dir, entry)).href);
};
const sdk = await load("@tinybirdco/sdk");
const jose = await load("jose");

const scopes = [{ type: "PIPES:READ", resource: "kpis", fixed_params: { org: "acme" } }];
const expiresAt = new Date(Date.now() + 10 * 60 * 1000);
const { token: minted } = await sdk.createJWT(
  { baseUrl: url, token: admin },
  { name: "frontend_jwt_acme", expiresAt, scopes, limits: { rps: 50 } },
);
const asTenant = sdk.createClient({ baseUrl: url, token: minted });
const viaSdk = await asTenant.query("kpis", { org: "globex" });

const signed = await new jose.SignJWT({ workspace_id: workspaceId, name: "jose_acme", scopes })
  .setProtectedHeader({ alg: "HS256", typ: "JWT" })
  .setIssuedAt()
  .setExpirationTime("5m")
  .sign(new TextEncoder().encode(admin));
const r = await fetch(`${url}/v0/pipes/kpis.json?org=globex`, { headers: { Authorization: `Bearer ${signed}` } });
const viaJose = await r.json();

let refused = null;
try {
  await sdk.createJWT({ baseUrl: url, token: minted }, { name: "x", expiresAt, scopes });
} catch (e) {
  refused = e.status ?? String(e);
}
console.log(JSON.stringify({
  sdk_events: viaSdk.data[0].events,
  jose_status: r.status,
  jose_events: viaJose.data[0].events,
  jwt_cannot_mint: refused,
}));

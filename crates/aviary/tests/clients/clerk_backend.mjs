// Clerk's official server SDK `@clerk/backend` (npm, unchanged) against a running Aviary, with
// `apiUrl` pointed at it: users, an organization with a custom role and permission, a
// Tinybird JWT template, a session, template and session tokens, `verifyToken` (JWKS fetched
// from Aviary) and `authenticateRequest` (Bearer header and cookie paths), then the failures:
// tampered, expired, template-as-session, revoked, unknown ids, wrong secret key.
// Prints one JSON line; any failed check exits non-zero with the reason on stderr.
// Usage: node clerk_backend.mjs <node_modules dir> <aviary base url> <secret key>
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modules, baseUrl, secretKey] = process.argv.slice(2);
if (!modules || !baseUrl || !secretKey) {
  console.error("usage: node clerk_backend.mjs <node_modules dir> <aviary base url> <secret key>");
  process.exit(2);
}
process.env.CLERK_TELEMETRY_DISABLED = "1";

// The packages are ES modules in a folder of their own: import each by its `exports` entry,
// resolving nested conditions (`@clerk/backend` has {"import": {"types", "default"}, …}).
const pick = (e) => {
  if (typeof e === "string") return e;
  if (Array.isArray(e)) return e.map(pick).find(Boolean) ?? null;
  if (e && typeof e === "object") {
    for (const c of ["node", "import", "default"]) if (c in e) { const r = pick(e[c]); if (r) return r; }
  }
  return null;
};
const pkgJson = (name) => JSON.parse(readFileSync(path.join(modules, name, "package.json"), "utf8"));
const load = async (name, sub = ".") => {
  const pkg = pkgJson(name);
  const ex = pkg.exports;
  const root = ex && typeof ex === "object" && !Array.isArray(ex) && Object.keys(ex).some((k) => k.startsWith(".")) ? ex[sub] : sub === "." ? ex : undefined;
  const entry = pick(root) ?? (sub === "." ? pkg.module ?? pkg.main : null);
  assert.ok(entry, `cannot resolve ${name} ${sub}`);
  return import(pathToFileURL(path.join(modules, name, entry)).href);
};
const { createClerkClient, verifyToken } = await load("@clerk/backend");
const { isClerkAPIResponseError } = await load("@clerk/backend", "./errors");
const jose = await load("jose");
const sdkVersion = pkgJson("@clerk/backend").version;

// ---------------------------------------------------------------- helpers
let step = "start";
const check = async (name, fn) => {
  step = name;
  return fn();
};
const b64urlJson = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const decode = (jwt) => ({ header: jose.decodeProtectedHeader(jwt), payload: jose.decodeJwt(jwt) });
// Expect a BAPI call to fail with ClerkAPIResponseError of this status (and code).
const rejectsApi = async (promise, status, code) => {
  try {
    await promise;
  } catch (e) {
    assert.ok(isClerkAPIResponseError(e), `expected ClerkAPIResponseError, got ${e?.stack ?? e}`);
    assert.equal(e.status, status, `status; errors=${JSON.stringify(e.errors)}`);
    if (code) assert.equal(e.errors?.[0]?.code, code, `error code; errors=${JSON.stringify(e.errors)}`);
    return e;
  }
  assert.fail(`expected HTTP ${status}${code ? ` ${code}` : ""}, the call succeeded`);
};
// Expect verifyToken to throw a TokenVerificationError (optionally with this reason).
const rejectsVerify = async (promise, reason) => {
  try {
    await promise;
  } catch (e) {
    if (reason) assert.equal(e.reason, reason, `verifyToken reason (${e.message})`);
    return e.reason;
  }
  assert.fail(`verifyToken accepted a token it should refuse${reason ? ` (${reason})` : ""}`);
};
// Run `fn` with the process clock (Date.now, which the SDK's exp/nbf/iat checks read) moved
// forward by `ms`. Used to see tokens expire without sleeping for their lifetime.
const withClockShift = async (ms, fn) => {
  const real = Date.now;
  Date.now = () => real() + ms;
  try {
    return await fn();
  } finally {
    Date.now = real;
  }
};
const bearer = (token, headers = {}) =>
  new Request("https://app.example.com/api/data", { headers: { Authorization: `Bearer ${token}`, Accept: "application/json", ...headers } });
// §7.2: pk_live_ + base64("<frontend api host>$"); the host must contain a dot.
const publishableKeyFor = (host) => `pk_live_${Buffer.from(`${host}$`).toString("base64")}`;
const publishableKey = publishableKeyFor("identity.aviary.localhost");
assert.equal(publishableKey, "pk_live_aWRlbnRpdHkuYXZpYXJ5LmxvY2FsaG9zdCQ=");

const clerk = createClerkClient({ secretKey, apiUrl: baseUrl, publishableKey, telemetry: { disabled: true } });
const run = Math.random().toString(16).slice(2, 8);
const summary = { ok: true, sdk_version: sdkVersion };

try {
  // ------------------------------------------------------------ wire basics
  await check("Content-Type is exactly application/json (the SDK parses JSON only then)", async () => {
    const r = await fetch(`${baseUrl}/v1/users/count`, { headers: { Authorization: `Bearer ${secretKey}` } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-type"), "application/json");
    const body = await r.json();
    assert.equal(body.object, "total_count");
  });
  await check("wrong secret key → 401 authentication_invalid", async () => {
    const bad = createClerkClient({ secretKey: "sk_live_" + "A".repeat(43), apiUrl: baseUrl, telemetry: { disabled: true } });
    await rejectsApi(bad.users.getUserList(), 401, "authentication_invalid");
  });

  // ------------------------------------------------------------ users
  const password = "correct-horse-battery-staple-9";
  const email1 = `ana.${run}@acme.example`;
  const email2 = `bo.${run}@acme.example`;
  const [user1, user2] = await check("users.createUser ×2", async () => {
    const u1 = await clerk.users.createUser({ emailAddress: [email1], password, firstName: "Ana" });
    const u2 = await clerk.users.createUser({ emailAddress: [email2], password, firstName: "Bo", lastName: "Ek" });
    for (const [u, email] of [[u1, email1], [u2, email2]]) {
      assert.match(u.id, /^user_/);
      assert.equal(u.passwordEnabled, true);
      assert.equal(u.primaryEmailAddress?.emailAddress, email);
      assert.equal(typeof u.createdAt, "number");
      assert.equal(u.raw.object, "user");
      assert.ok(!("deleted" in u.raw), "a live object must not carry `deleted` (the SDK would parse it as DeletedObject)");
      assert.ok(!JSON.stringify(u.raw).includes(password), "password echoed back");
    }
    assert.equal(u2.fullName, "Bo Ek");
    return [u1, u2];
  });
  await check("users.getUser", async () => {
    const u = await clerk.users.getUser(user2.id);
    assert.equal(u.id, user2.id);
    assert.equal(u.firstName, "Bo");
    assert.equal(u.emailAddresses[0].emailAddress, email2);
    await rejectsApi(clerk.users.getUser("user_" + "0".repeat(27)), 404, "resource_not_found");
  });

  // ------------------------------------------------------------ organization, role, permission
  const org = await check("organizations.createOrganization (created_by user 1)", async () => {
    const o = await clerk.organizations.createOrganization({ name: "Acme Inc", slug: "acme", createdBy: user1.id });
    assert.match(o.id, /^org_/);
    assert.equal(o.slug, "acme");
    assert.equal(o.name, "Acme Inc");
    assert.equal(o.createdBy, user1.id);
    assert.equal(o.raw.object, "organization");
    return o;
  });
  await check("organizations.createOrganizationMembership (user 2, org:member)", async () => {
    const m = await clerk.organizations.createOrganizationMembership({ organizationId: org.id, userId: user2.id, role: "org:member" });
    assert.match(m.id, /^orgmem_/);
    assert.equal(m.role, "org:member");
    assert.equal(m.organization.id, org.id);
    assert.equal(m.publicUserData.userId, user2.id);
  });
  const perm = await check("organizationPermissions.createOrganizationPermission", async () => {
    const p = await clerk.organizationPermissions.createOrganizationPermission({
      name: "Read analytics", key: "org:analytics:read", description: "Read the analytics dashboards",
    });
    assert.match(p.id, /^perm_/);
    assert.equal(p.key, "org:analytics:read");
    return p;
  });
  const role = await check("organizationRoles.createOrganizationRole + assignPermissionToOrganizationRole", async () => {
    const r = await clerk.organizationRoles.createOrganizationRole({ name: "Analyst", key: "org:analyst", description: "Reads dashboards" });
    assert.match(r.id, /^role_/);
    assert.equal(r.key, "org:analyst");
    const r2 = await clerk.organizationRoles.assignPermissionToOrganizationRole({ organizationRoleId: r.id, permissionId: perm.id });
    assert.equal(r2.id, r.id);
    assert.ok(r2.permissions.some((p) => p.key === "org:analytics:read"), "role lacks the permission");
    return r2;
  });
  await check("organizations.updateOrganizationMembership (user 2 → org:analyst)", async () => {
    const m = await clerk.organizations.updateOrganizationMembership({ organizationId: org.id, userId: user2.id, role: role.key });
    assert.equal(m.role, "org:analyst");
    assert.ok(m.permissions.includes("org:analytics:read"), `membership permissions ${JSON.stringify(m.permissions)}`);
  });
  await check("organizations.getOrganization by slug and by id", async () => {
    const bySlug = await clerk.organizations.getOrganization({ slug: "acme" });
    assert.equal(bySlug.id, org.id);
    assert.equal(bySlug.membersCount, 2);
    const byId = await clerk.organizations.getOrganization({ organizationId: org.id, includeMembersCount: true });
    assert.equal(byId.slug, "acme");
    assert.equal(byId.membersCount, 2);
  });
  await check("organizations.getOrganizationMembershipList", async () => {
    const { data, totalCount } = await clerk.organizations.getOrganizationMembershipList({ organizationId: org.id });
    assert.equal(totalCount, 2);
    assert.equal(data.length, 2);
    const roles = Object.fromEntries(data.map((m) => [m.publicUserData.userId, m.role]));
    assert.deepEqual(roles, { [user1.id]: "org:admin", [user2.id]: "org:analyst" });
    for (const m of data) assert.equal(m.organization.slug, "acme");
    summary.memberships_total = totalCount;
  });
  await check("users.getUserList (GET /v1/users + /v1/users/count) and its filters", async () => {
    const all = await clerk.users.getUserList({ limit: 100 });
    assert.ok(Array.isArray(all.data), "data is not an array: /v1/users must answer a bare array");
    assert.equal(typeof all.totalCount, "number", "totalCount: /v1/users/count must answer {object: total_count, total_count}");
    assert.equal(all.totalCount, all.data.length);
    for (const u of [user1, user2]) assert.ok(all.data.some((x) => x.id === u.id), `${u.id} missing from the list`);
    summary.users_total = all.totalCount;
    // The SDK sends array filters as repeated `email_address=…` / `organization_id=…` (no `[]`).
    const byEmail = await clerk.users.getUserList({ emailAddress: [email2] });
    assert.deepEqual(byEmail.data.map((u) => u.id), [user2.id]);
    assert.equal(byEmail.totalCount, 1);
    const byOrg = await clerk.users.getUserList({ organizationId: [org.id] });
    assert.deepEqual(byOrg.data.map((u) => u.id).sort(), [user1.id, user2.id].sort());
    assert.equal(byOrg.totalCount, 2);
  });

  // ------------------------------------------------------------ JWT template (spec §3.6)
  const S = `p.tinybird-admin-${run}`;
  const claims = {
    name: "frontend_jwt_{{org.slug}}",
    limits: { rps: 10 },
    workspace_id: "5a0c4c1e-1111-2222-3333-444455556666",
    scopes: [
      { type: "PIPES:READ", resource: "top_pages", fixed_params: { org: "{{org.slug}}" } },
      { type: "PIPES:READ", resource: "user_activity", fixed_params: { org: "{{org.slug}}", user: "{{user.id}}" } },
    ],
  };
  const template = await check("jwtTemplates.create / get / list", async () => {
    const t = await clerk.jwtTemplates.create({
      name: "tinybird", claims, lifetime: 300, allowedClockSkew: 5,
      customSigningKey: true, signingAlgorithm: "HS256", signingKey: S,
    });
    assert.match(t.id, /^jtmp_/);
    assert.equal(t.name, "tinybird");
    assert.deepEqual(t.claims, claims);
    assert.equal(t.lifetime, 300);
    assert.equal(t.allowedClockSkew, 5);
    assert.equal(t.customSigningKey, true);
    assert.equal(t.signingAlgorithm, "HS256");
    const got = await clerk.jwtTemplates.get(t.id);
    assert.equal(got.name, "tinybird");
    const list = await clerk.jwtTemplates.list();
    assert.equal(list.totalCount, 1, "GET /v1/jwt_templates?paginated=true must answer {data, total_count}");
    assert.equal(list.data[0].id, t.id);
    const raw = await (await fetch(`${baseUrl}/v1/jwt_templates/${t.id}`, { headers: { Authorization: `Bearer ${secretKey}` } })).text();
    assert.ok(!raw.includes(S) && !("signing_key" in JSON.parse(raw)), "the signing key is returned");
    return t;
  });

  // ------------------------------------------------------------ session
  const session = await check("sessions.createSession (user 2, active org acme) / getSession", async () => {
    const s = await clerk.sessions.createSession({ userId: user2.id, activeOrganizationId: org.id });
    assert.match(s.id, /^sess_/);
    assert.equal(s.userId, user2.id);
    assert.equal(s.status, "active");
    assert.equal(s.lastActiveOrganizationId, org.id);
    const again = await clerk.sessions.getSession(s.id);
    assert.equal(again.id, s.id);
    assert.equal(again.lastActiveOrganizationId, org.id);
    return s;
  });

  // ------------------------------------------------------------ template token
  const checkTinybird = async (jwt) => {
    const { payload, protectedHeader } = await jose.jwtVerify(jwt, new TextEncoder().encode(S), { algorithms: ["HS256"] });
    assert.deepEqual(protectedHeader, { alg: "HS256", typ: "JWT", cat: "cl_B7d4PD222AAA" });
    assert.deepEqual(Object.keys(payload).sort(), ["exp", "iat", "iss", "jti", "limits", "name", "nbf", "scopes", "sub", "workspace_id"]);
    assert.equal(payload.name, "frontend_jwt_acme");
    assert.deepEqual(payload.limits, { rps: 10 });
    assert.equal(payload.workspace_id, "5a0c4c1e-1111-2222-3333-444455556666");
    assert.deepEqual(payload.scopes, [
      { type: "PIPES:READ", resource: "top_pages", fixed_params: { org: "acme" } },
      { type: "PIPES:READ", resource: "user_activity", fixed_params: { org: "acme", user: user2.id } },
    ]);
    assert.equal(payload.sub, user2.id);
    assert.equal(payload.exp - payload.iat, 300);
    assert.equal(payload.nbf, payload.iat - 5);
    assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 60, "iat is not now");
    assert.equal(typeof payload.iss, "string");
    assert.ok(payload.iss.length > 0);
    assert.match(payload.jti, /^[0-9a-f]{20}$/);
    return payload;
  };
  const tinybird = await check("sessions.getToken(sid, 'tinybird') → HS256 template token", async () => {
    const { jwt } = await clerk.sessions.getToken(session.id, "tinybird");
    await checkTinybird(jwt);
    // The SDK refuses it wherever a session token is expected.
    await rejectsVerify(verifyToken(jwt, { secretKey, apiUrl: baseUrl }));
    return jwt;
  });

  // ------------------------------------------------------------ session token + JWKS
  const { jwt: sessionToken } = await check("sessions.getToken(sid) → session token", () => clerk.sessions.getToken(session.id));
  const claimsSeen = await check("session token claims (spec §5.1) and JWKS", async () => {
    const { header, payload } = decode(sessionToken);
    assert.equal(header.alg, "RS256");
    assert.equal(header.typ, "JWT");
    assert.equal(header.cat, "cl_B7d4PD111AAA");
    assert.match(header.kid, /^ins_/);
    const { keys } = await clerk.jwks.getJwks();
    const jwk = keys.find((k) => k.kid === header.kid);
    assert.ok(jwk, `kid ${header.kid} not in GET /v1/jwks`);
    assert.equal(jwk.kty, "RSA");
    assert.equal(jwk.alg, "RS256");
    assert.equal(jwk.use, "sig");
    assert.equal(jwk.e, "AQAB");
    assert.equal(Buffer.from(jwk.n, "base64url").length, 256, "RSA-2048 expected");
    for (const k of keys) for (const priv of ["d", "p", "q", "dp", "dq", "qi", "k"]) assert.ok(!(priv in k), `JWKS leaks ${priv}`);
    const pub = await fetch(`${baseUrl}/.well-known/jwks.json`);
    assert.equal(pub.status, 200);
    assert.ok((await pub.json()).keys.some((k) => k.kid === header.kid), "kid missing from /.well-known/jwks.json");
    assert.equal(payload.sub, user2.id);
    assert.equal(payload.sid, session.id);
    assert.equal(payload.exp - payload.iat, 60);
    assert.equal(payload.nbf, payload.iat - 10);
    assert.equal(typeof payload.iss, "string");
    assert.equal(typeof payload.azp, "string", "session tokens always carry azp (spec §8.3)");
    assert.equal(payload.v, undefined, "v1 session tokens carry no `v`");
    assert.equal(payload.sts, undefined);
    assert.ok(Array.isArray(payload.fva) && payload.fva.length === 2, `fva ${JSON.stringify(payload.fva)}`);
    return payload;
  });
  await check("verifyToken(token, {secretKey, apiUrl}) fetches the JWKS and accepts it", async () => {
    const payload = await verifyToken(sessionToken, { secretKey, apiUrl: baseUrl });
    assert.equal(payload.sub, user2.id);
    assert.equal(payload.sid, session.id);
    assert.equal(payload.org_id, org.id);
    assert.equal(payload.org_slug, "acme");
    assert.equal(payload.org_role, "org:analyst");
    assert.deepEqual(payload.org_permissions, ["org:analytics:read"]);
    summary.session_org_role = payload.org_role;
    summary.session_org_permissions = payload.org_permissions;
  });
  await check("sessions.getToken(sid, undefined, 30) → expires_in_seconds", async () => {
    const { jwt } = await clerk.sessions.getToken(session.id, undefined, 30);
    const { payload } = decode(jwt);
    assert.equal(payload.exp - payload.iat, 30);
    await verifyToken(jwt, { secretKey, apiUrl: baseUrl });
  });

  // ------------------------------------------------------------ authenticateRequest
  await check("authenticateRequest, Bearer header → signed-in; toAuth()", async () => {
    const state = await clerk.authenticateRequest(bearer(sessionToken));
    assert.equal(state.status, "signed-in", `status ${state.status} reason ${state.reason} ${state.message}`);
    assert.equal(state.isAuthenticated, true);
    const auth = state.toAuth();
    assert.equal(auth.userId, user2.id);
    assert.equal(auth.sessionId, session.id);
    assert.equal(auth.orgId, org.id);
    assert.equal(auth.orgSlug, "acme");
    assert.equal(auth.orgRole, "org:analyst");
    assert.deepEqual(auth.orgPermissions, ["org:analytics:read"]);
    assert.equal(auth.has({ permission: "org:analytics:read" }), true);
    assert.equal(auth.has({ role: "org:analyst" }), true);
    assert.equal(auth.has({ role: "org:admin" }), false);
    assert.equal(await auth.getToken(), sessionToken);
    // getToken({template}) on the auth object mints through POST /v1/sessions/{sid}/tokens/{name}.
    await checkTinybird(await auth.getToken({ template: "tinybird" }));
    summary.auth_status = state.status;
    summary.auth = { orgSlug: auth.orgSlug, orgRole: auth.orgRole, orgPermissions: auth.orgPermissions };
  });
  await check("authenticateRequest with authorizedParties (azp)", async () => {
    const ok = await clerk.authenticateRequest(bearer(sessionToken), { authorizedParties: [claimsSeen.azp] });
    assert.equal(ok.status, "signed-in", `${ok.reason} ${ok.message}`);
    const no = await clerk.authenticateRequest(bearer(sessionToken), { authorizedParties: ["https://evil.example"] });
    assert.equal(no.status, "signed-out");
    assert.equal(no.reason, "token-invalid-authorized-parties");
  });
  await check("authenticateRequest, cookie path (__session + __client_uat, pk for the token's iss host)", async () => {
    // The SDK uses the unsuffixed cookies only when `iss` minus its scheme equals the
    // publishable key's host, so the key is built from `iss` here.
    const host = claimsSeen.iss.replace(/https?:\/\//gi, "");
    assert.ok(host.includes(".") && !host.includes("$"), `iss ${claimsSeen.iss}: its host must contain a dot (spec §7.2)`);
    const pk = publishableKeyFor(host);
    const c = createClerkClient({ secretKey, apiUrl: baseUrl, publishableKey: pk, telemetry: { disabled: true } });
    const req = new Request("https://app.example.com/dashboard", {
      headers: { Cookie: `__session=${sessionToken}; __client_uat=${claimsSeen.iat}`, Accept: "application/json" },
    });
    const state = await c.authenticateRequest(req);
    assert.equal(state.status, "signed-in", `${state.reason} ${state.message}`);
    assert.equal(state.toAuth().orgSlug, "acme");
  });

  // ------------------------------------------------------------ refusals
  summary.refused = {};
  await check("tampered payload (org_role → org:admin) fails verifyToken", async () => {
    const [h, p, s] = sessionToken.split(".");
    const forged = `${h}.${b64urlJson({ ...JSON.parse(Buffer.from(p, "base64url")), org_role: "org:admin" })}.${s}`;
    summary.refused.tampered_payload = await rejectsVerify(verifyToken(forged, { secretKey, apiUrl: baseUrl }), "token-invalid-signature");
  });
  await check("flipped signature character → authenticateRequest signed-out", async () => {
    const [h, p, s] = sessionToken.split(".");
    const i = 20; // not the last character, whose low bits may be padding
    const flipped = `${h}.${p}.${s.slice(0, i)}${s[i] === "A" ? "B" : "A"}${s.slice(i + 1)}`;
    const state = await clerk.authenticateRequest(bearer(flipped));
    assert.equal(state.status, "signed-out");
    assert.equal(state.reason, "token-invalid-signature");
    assert.equal(state.toAuth().userId, null);
    summary.refused.tampered_signature = state.status;
  });
  await check("template token as a session token → signed-out (token-type-mismatch)", async () => {
    const state = await clerk.authenticateRequest(bearer(tinybird));
    assert.equal(state.status, "signed-out");
    assert.equal(state.reason, "token-type-mismatch");
    summary.refused.template_as_session = state.reason;
  });
  // Expiry: waiting out the 60 s lifetime (or the 30 s minimum of expires_in_seconds) would
  // dominate the run, and a token with a past `exp` cannot be made without the instance key.
  // The SDK's exp/nbf/iat checks read Date.now(), so the script moves this process's clock past
  // exp + the 5 s default skew instead: deterministic, and it is the server-issued token and
  // JWKS key that are judged. (One second before exp + skew the same token still verifies.)
  await check("expired session token (clock moved past exp + skew)", async () => {
    const { exp } = claimsSeen;
    const beforeMs = exp * 1000 + 5000 - 1000 - Date.now();
    await withClockShift(beforeMs, () => verifyToken(sessionToken, { secretKey, apiUrl: baseUrl }).catch((e) => {
      // nbf/iat cannot fail at a later clock; anything else is a real failure
      throw new Error(`token refused 1 s before exp + skew: ${e.reason} ${e.message}`);
    }));
    const afterMs = exp * 1000 + 5000 + 1000 - Date.now();
    await withClockShift(afterMs, async () => {
      summary.refused.expired = await rejectsVerify(verifyToken(sessionToken, { secretKey, apiUrl: baseUrl }), "token-expired");
      const api = await clerk.authenticateRequest(bearer(sessionToken));
      assert.equal(api.status, "signed-out", `${api.status} ${api.reason}`);
      assert.match(api.reason, /^session-token-expired/);
      // A document request (Accept: text/html) gets the handshake redirect to the Frontend API.
      const doc = await clerk.authenticateRequest(bearer(sessionToken, { Accept: "text/html" }));
      assert.equal(doc.status, "handshake", `${doc.status} ${doc.reason}`);
      assert.match(doc.headers.get("location"), /^https:\/\/identity\.aviary\.localhost\/v1\/client\/handshake\?/);
    });
  });
  await check("sessions.revokeSession → status revoked; minting then 404", async () => {
    const s = await clerk.sessions.revokeSession(session.id);
    assert.equal(s.id, session.id);
    assert.equal(s.status, "revoked");
    assert.equal((await clerk.sessions.getSession(session.id)).status, "revoked");
    await rejectsApi(clerk.sessions.getToken(session.id), 404, "resource_not_found");
    await rejectsApi(clerk.sessions.getToken(session.id, "tinybird"), 404, "resource_not_found");
    await rejectsApi(clerk.sessions.getToken("sess_" + "0".repeat(27)), 404, "resource_not_found");
    summary.refused.revoked_mint = 404;
  });
} catch (e) {
  console.error(`clerk_backend.mjs: check failed: ${step}\n${e?.stack ?? e}`);
  if (e?.errors) console.error(`errors: ${JSON.stringify(e.errors)} status: ${e.status}`);
  process.exit(1);
}
console.log(JSON.stringify(summary));

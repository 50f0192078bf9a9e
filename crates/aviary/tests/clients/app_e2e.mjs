// The app end to end in a real headless Chromium (Debian's, driven by playwright-core): sign up,
// create an organization, see only its numbers (checked against /v0/sql with the admin token),
// see the chart move after new events, switch organization, use the token panel's curl, see the
// same token refused for another organization's data, XSS and CSRF checks, sign out.
// Screenshots of each page go to the given directory.
// Usage: node app_e2e.mjs <node_modules> <base url> <admin token> <secret key> <workspace id> <screenshot dir>
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modules, base, admin, secretKey, workspaceId, shots] = process.argv.slice(2);
const { chromium } = await import(pathToFileURL(path.join(modules, "playwright-core", "index.mjs")).href);
mkdirSync(shots, { recursive: true });

let step = "start";
const summary = { screenshots: [] };
const api = async (method, url, { token = admin, body, headers = {} } = {}) => {
  const r = await fetch(base + url, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }), ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: r.status, json, text };
};
const sql = async (q) => (await api("GET", `/v0/sql?q=${encodeURIComponent(q + " FORMAT JSON")}`)).json.data;
const eventsOf = async (org) => Number((await sql(`SELECT count() AS c FROM events WHERE org = '${org}'`))[0].c);
const ts = (ms) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");
const ingest = async (org, n, user = "visitor_e2e") => {
  const lines = [];
  for (let i = 0; i < n; i++) {
    lines.push(JSON.stringify({ timestamp: ts(Date.now() - i * 1000), org, user, event: i % 3 ? "page_view" : "click", path: `/${org}/page${i % 4}`, country: "ES", duration_ms: 100 + i, tags: [] }));
  }
  const r = await api("POST", "/v0/events?name=events&wait=true", { body: lines.join("\n") });
  assert.equal(r.status, 200, r.text);
};

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
const dialogs = [];
try {
  step = "the tinybird template and events for two organizations";
  const template = {
    name: "tinybird", lifetime: 300, allowed_clock_skew: 5, custom_signing_key: true, signing_algorithm: "HS256", signing_key: admin,
    claims: {
      name: "frontend_jwt_{{org.slug}}", limits: { rps: 10 }, workspace_id: workspaceId,
      scopes: ["top_pages", "events_per_minute", "kpis"].map((p) => ({ type: "PIPES:READ", resource: p, fixed_params: { org: "{{org.slug}}" } }))
        .concat([{ type: "PIPES:READ", resource: "user_activity", fixed_params: { org: "{{org.slug}}", user: "{{user.id}}" } }]),
    },
  };
  const created = await api("POST", "/v1/jwt_templates", { token: secretKey, body: template });
  assert.equal(created.status, 200, created.text);
  await ingest("umbrella", 30);
  await ingest("initech", 12);

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  const shot = async (name) => {
    const file = path.join(shots, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    summary.screenshots.push(`${name}.png`);
  };

  step = "signed out: the dashboard redirects to sign in, and the page holds no token";
  let resp = await page.goto(base + "/");
  assert.match(page.url(), /\/sign-in\?next=%2F|\/sign-in\?next=\//);
  assert.equal(await page.locator('meta[name="aviary-tenant-token"]').count(), 0);
  assert.equal(resp.headers()["x-tinybird-token"], undefined);
  assert.match(resp.headers()["content-security-policy"], /script-src 'self'/);
  await shot("sign-in");

  step = "sign up (a first name with markup renders as text)";
  await page.goto(base + "/sign-up");
  await shot("sign-up");
  await page.fill('input[name="first_name"]', '<img src=x onerror=alert(1)>');
  await page.fill('input[name="last_name"]', "Tester");
  await page.fill('input[name="email"]', "e2e@umbrella.example");
  // The browser enforces the length (minlength); the server refuses a common password.
  await page.fill('input[name="password"]', "password123");
  await page.click('main button[type="submit"]');
  assert.match(await page.textContent(".flash.error"), /data breach/);
  assert.equal(await page.inputValue('input[name="email"]'), "e2e@umbrella.example", "the form keeps what was typed");
  await page.fill('input[name="password"]', "a long e2e passphrase");
  await page.click('main button[type="submit"]');
  await page.waitForURL(/\/orgs/);
  assert.match(await page.textContent("header.top"), /<img src=x onerror=alert\(1\)> Tester/);
  await shot("organizations-empty");

  step = "an organization name with markup is refused and shown escaped";
  await page.fill('input[name="name"]', "<script>alert(1)</script>");
  await page.click('form[action="/orgs"] button[type="submit"]');
  assert.match(await page.textContent(".flash.error"), /may not contain URLs or HTML/);

  step = "create Umbrella: the dashboard shows only its numbers";
  await page.fill('input[name="name"]', "Umbrella");
  await page.fill('input[name="slug"]', "umbrella");
  resp = await Promise.all([page.waitForNavigation(), page.click('form[action="/orgs"] button[type="submit"]')]).then(([r]) => r);
  assert.equal(new URL(page.url()).pathname, "/");
  const metaToken = await page.getAttribute('meta[name="aviary-tenant-token"]', "content");
  assert.equal(resp.headers()["x-tinybird-token"], metaToken, "the header and the page carry the same token");
  await page.waitForSelector('#kpis [data-kpi="events"]');
  const umbrellaEvents = await eventsOf("umbrella");
  assert.equal(Number((await page.textContent('#kpis [data-kpi="events"]')).replace(/[^0-9]/g, "")), umbrellaEvents);
  await page.waitForSelector("#events-per-minute svg rect.series");
  await page.waitForSelector("#top-pages ol.bars li");
  const paths = await page.$$eval("#top-pages .bar-label", (els) => els.map((e) => e.textContent));
  assert.ok(paths.length > 0 && paths.every((p) => p.startsWith("/umbrella/")), JSON.stringify(paths));
  await page.waitForSelector("#my-activity .panel-body p.muted");
  await shot("dashboard");
  summary.umbrella_events = umbrellaEvents;

  step = "the chart and numbers update after new events";
  // The chart's total: the sum of its bars' counts (each bar's <title> ends with the count).
  const charted = () => page.$$eval("#events-per-minute rect.series title", (ts) => ts.reduce((a, t) => a + Number(t.textContent.split(": ").pop().replace(/[^0-9]/g, "")), 0));
  const before = await charted();
  assert.equal(before, umbrellaEvents, "every event of the window is in the chart");
  await ingest("umbrella", 7);
  await page.waitForFunction((n) => Number(document.querySelector('#kpis [data-kpi="events"]')?.textContent.replace(/[^0-9]/g, "")) === n, umbrellaEvents + 7, { timeout: 20000 });
  await page.waitForFunction(
    (n) => [...document.querySelectorAll("#events-per-minute rect.series title")].reduce((a, t) => a + Number(t.textContent.split(": ").pop().replace(/[^0-9]/g, "")), 0) === n,
    before + 7,
    { timeout: 20000 },
  );

  step = "a token the API refuses (403) is renewed once and the calls retried";
  const renewals = [];
  page.on("request", (r) => { if (r.url().endsWith("/app/token")) renewals.push(r.url()); });
  await page.evaluate(() => {
    const s = window.aviary.state;
    s.token = s.token.slice(0, -6) + (s.token.endsWith("AAAAAA") ? "BBBBBB" : "AAAAAA");
  });
  const refused = await page.waitForResponse((r) => r.url().includes("/v0/pipes/") && r.status() === 403, { timeout: 20000 });
  assert.ok(refused);
  await page.waitForResponse((r) => r.url().endsWith("/app/token") && r.status() === 200, { timeout: 20000 });
  await page.waitForResponse((r) => r.url().includes("/v0/pipes/") && r.status() === 200, { timeout: 20000 });
  await page.waitForTimeout(500);
  assert.equal(renewals.length, 1, "four panels refused at once share one renewal");
  assert.equal(await page.locator("#dashboard .panel[data-state=error]").count(), 0, "the retried calls succeeded");
  assert.ok(!(await page.content()).includes(admin), "the admin token never reaches a page");

  step = "a second organization, Initech: the numbers change";
  await page.goto(base + "/orgs");
  await page.fill('input[name="name"]', "Initech");
  await page.fill('input[name="slug"]', "initech");
  await Promise.all([page.waitForNavigation(), page.click('form[action="/orgs"] button[type="submit"]')]);
  await page.waitForFunction((n) => document.querySelector('#kpis [data-kpi="events"]')?.textContent.replace(/[^0-9]/g, "") === String(n), await eventsOf("initech"), { timeout: 20000 });
  summary.initech_events = await eventsOf("initech");
  assert.notEqual(summary.initech_events, umbrellaEvents + 7);

  step = "switch back with the header's organization switcher";
  await page.selectOption("#org-switch", { label: "Umbrella" });
  await Promise.all([page.waitForNavigation(), page.click('form.org-switch button[type="submit"]')]);
  await page.waitForFunction((n) => document.querySelector('#kpis [data-kpi="events"]')?.textContent.replace(/[^0-9]/g, "") === String(n), umbrellaEvents + 7, { timeout: 20000 });
  await page.selectOption("#org-switch", { label: "Initech" });
  await Promise.all([page.waitForNavigation(), page.click('form.org-switch button[type="submit"]')]);

  step = "the token panel's curl works; the token is refused for another organization";
  await page.goto(base + "/token");
  await page.waitForSelector("[data-claims]:not(:empty)");
  const claims = JSON.parse(await page.textContent("[data-claims]"));
  assert.equal(claims.name, "frontend_jwt_initech");
  assert.equal(claims.scopes[0].fixed_params.org, "initech");
  await shot("token");
  const curl = await page.textContent("[data-curl]");
  const out = JSON.parse(execFileSync("sh", ["-c", curl], { encoding: "utf8" }));
  assert.ok(out.data.length > 0 && out.data.every((r) => r.path.startsWith("/initech/")), JSON.stringify(out.data));
  const token = await page.textContent("[data-token]");
  const crossed = await api("GET", "/v0/pipes/top_pages.json?org=umbrella", { token });
  assert.equal(crossed.status, 200);
  assert.ok(crossed.json.data.every((r) => r.path.startsWith("/initech/")), "the fixed org wins over ?org=umbrella");
  assert.equal((await api("GET", `/v0/sql?q=${encodeURIComponent("SELECT count() FROM events")}`, { token })).status, 403);
  summary.curl_rows = out.data.length;

  step = "account and organization pages";
  await page.goto(base + "/orgs");
  await shot("organizations");
  await page.goto(base + "/account");
  await shot("account");

  step = "CSRF: a form post from another origin, or without the token, is refused";
  const cookies = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
  const csrf = await page.getAttribute('input[name="csrf"]', "value");
  const post = (headers, body) => fetch(base + "/orgs", { method: "POST", redirect: "manual", headers: { Cookie: cookies, "Content-Type": "application/x-www-form-urlencoded", ...headers }, body });
  assert.equal((await post({ Origin: "http://evil.example" }, `csrf=${csrf}&name=Evil`)).status, 403);
  assert.equal((await post({ Origin: new URL(base).origin }, "name=Evil")).status, 403);
  assert.equal((await post({ Origin: new URL(base).origin }, `csrf=${csrf}&name=Fine`)).status, 303);
  assert.equal((await fetch(base + "/app/token", { headers: { Cookie: cookies, Origin: "http://evil.example" } })).headers.get("access-control-allow-origin"), null);

  step = "sign out: the dashboard redirects to sign in";
  await page.goto(base + "/");
  await Promise.all([page.waitForNavigation(), page.click('header.top button.link')]);
  assert.match(page.url(), /\/sign-in/);
  await page.goto(base + "/");
  assert.match(page.url(), /\/sign-in/);
  assert.equal((await fetch(base + "/app/token", { headers: { Cookie: cookies } })).status, 401, "the old cookies are dead");
  assert.deepEqual(dialogs, [], "no script ran from user input");
  await context.close();
} catch (e) {
  console.error(`app_e2e.mjs: check failed: ${step}\n${e?.stack ?? e}`);
  await browser.close();
  process.exit(1);
}
await browser.close();
summary.ok = true;
console.log(JSON.stringify(summary));

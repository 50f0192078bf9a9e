// Aviary's app script: the dashboard's live data and the tenant token's life. No dependencies,
// no inline handlers (the Content-Security-Policy forbids them): everything is wired here.
//
// The page carries the tenant token in <meta> tags. Every call to /v0 uses it; the token is
// renewed from /app/token shortly before it expires, and once after a 403 (then the call is
// retried once). A renewed token for another organization (switched in another tab) reloads the
// page instead of mixing tenants. 429s wait for Retry-After.
"use strict";

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute("content") ?? "";
const state = {
  token: meta("aviary-tenant-token"),
  exp: Number(meta("aviary-tenant-token-exp")) || 0,
  iat: Math.floor(Date.now() / 1000),
  org: meta("aviary-org"),
  api: meta("aviary-api-base") || location.origin,
  renewing: null,
};

const now = () => Date.now() / 1000;

/** Seconds before expiry at which the token is renewed: 30, or a quarter of its life if shorter. */
function renewalMargin() {
  const life = Math.max(1, state.exp - state.iat);
  return Math.min(30, life / 4);
}

async function renew() {
  if (!state.renewing) {
    state.renewing = (async () => {
      const r = await fetch("/app/token", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (r.status === 401) {
        location.assign("/sign-in");
        throw new Error("signed out");
      }
      if (r.status === 409) {
        location.assign("/orgs");
        throw new Error("no active organization");
      }
      if (!r.ok) throw new Error(`token renewal failed (${r.status})`);
      const j = await r.json();
      if (j.org !== state.org) {
        location.reload();
        throw new Error("organization changed");
      }
      state.token = j.token;
      state.iat = Math.floor(now());
      state.exp = j.exp;
      document.dispatchEvent(new CustomEvent("aviary:token", { detail: j }));
    })().finally(() => {
      state.renewing = null;
    });
  }
  return state.renewing;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The rows of a pipe endpoint, with the tenant token. */
async function pipe(name, params = {}) {
  if (state.exp - now() < renewalMargin()) await renew();
  const url = new URL(`/v0/pipes/${name}.json`, state.api);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const call = () => fetch(url, { headers: { Authorization: `Bearer ${state.token}` }, cache: "no-store" });
  let r = await call();
  if (r.status === 403) {
    await renew();
    r = await call();
  }
  for (let i = 0; r.status === 429 && i < 3; i++) {
    const wait = Number(r.headers.get("Retry-After")) || 1;
    await sleep(wait * 1000);
    r = await call();
  }
  if (!r.ok) {
    let message = `${r.status}`;
    try {
      message = (await r.json()).error ?? message;
    } catch (_) {
      /* not JSON */
    }
    throw new Error(message);
  }
  return (await r.json()).data;
}

// ---------------------------------------------------------------- drawing (SVG)

const SVG = "http://www.w3.org/2000/svg";
function el(name, attrs = {}, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function html(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const fmt = new Intl.NumberFormat();
const number = (v) => (typeof v === "number" ? fmt.format(Math.round(v * 100) / 100) : String(v ?? "—"));

/** A panel's body shows one of: loading, empty, error, or content. */
function show(panel, kind, content) {
  const body = panel.querySelector(".panel-body");
  panel.setAttribute("aria-busy", String(kind === "loading"));
  // A refresh keeps what is shown until the new data is there: no flicker every few seconds.
  if (kind === "loading" && panel.dataset.loaded) return;
  panel.dataset.state = kind;
  body.replaceChildren();
  if (kind === "loading") body.append(html("p", { class: "muted" }, "Loading…"));
  else if (kind === "empty") body.append(html("p", { class: "muted" }, content ?? "No data yet."));
  else if (kind === "error") body.append(html("p", { class: "error", role: "alert" }, `Could not load: ${content}`));
  else if (content) {
    panel.dataset.loaded = "1";
    body.append(content);
  }
}

function kpis(rows) {
  const r = rows[0] ?? {};
  const dl = html("dl", { class: "kpis" });
  for (const [key, label] of [
    ["events", "Events"],
    ["visitors", "Visitors"],
    ["page_views", "Page views"],
    ["median_duration_ms", "Median duration (ms)"],
    ["p90_duration_ms", "p90 duration (ms)"],
  ]) {
    const d = html("div", { class: "kpi" });
    d.append(html("dt", {}, label), html("dd", { "data-kpi": key }, number(r[key])));
    dl.append(d);
  }
  return dl;
}

/** Stacked bars of events per minute and event type, one bar per minute of the window. */
function perMinute(rows, minutes) {
  const width = 720, height = 220, left = 40, bottom = 24, top = 10;
  const end = Math.floor(Date.now() / 60000) * 60000;
  const start = end - (minutes - 1) * 60000;
  const buckets = new Map();
  const types = [...new Set(rows.map((r) => r.event))].sort();
  for (const r of rows) {
    const t = Date.parse(r.minute.replace(" ", "T") + "Z");
    if (t < start || t > end) continue;
    const b = buckets.get(t) ?? {};
    b[r.event] = (b[r.event] ?? 0) + Number(r.events);
    buckets.set(t, b);
  }
  const totals = [...buckets.values()].map((b) => Object.values(b).reduce((a, c) => a + c, 0));
  const max = Math.max(1, ...totals);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-label": `Events per minute over the last ${minutes} minutes` });
  const plotW = width - left - 8, plotH = height - top - bottom, barW = plotW / minutes;
  for (const frac of [0, 0.5, 1]) {
    const y = top + plotH * (1 - frac);
    svg.append(el("line", { x1: left, x2: width - 8, y1: y, y2: y, class: "grid" }));
    svg.append(el("text", { x: left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, number(Math.round(max * frac))));
  }
  for (let i = 0; i < minutes; i++) {
    const t = start + i * 60000;
    const b = buckets.get(t);
    let y = top + plotH;
    if (b) {
      types.forEach((type, k) => {
        const v = b[type] ?? 0;
        if (!v) return;
        const h = (v / max) * plotH;
        y -= h;
        const rect = el("rect", { x: left + i * barW + 1, y, width: Math.max(1, barW - 2), height: h, class: `series s${k % 6}` });
        rect.append(el("title", {}, `${new Date(t).toISOString().slice(11, 16)} UTC — ${type}: ${number(v)}`));
        svg.append(rect);
      });
    }
    if (i % Math.ceil(minutes / 6) === 0) {
      svg.append(el("text", { x: left + i * barW, y: height - 6, class: "axis" }, new Date(t).toISOString().slice(11, 16)));
    }
  }
  const wrap = html("div");
  wrap.append(svg);
  const legend = html("ul", { class: "legend" });
  types.forEach((type, k) => {
    const li = html("li");
    li.append(html("span", { class: `swatch s${k % 6}` }), document.createTextNode(type));
    legend.append(li);
  });
  wrap.append(legend);
  return wrap;
}

function topPages(rows) {
  const max = Math.max(1, ...rows.map((r) => Number(r.views)));
  const list = html("ol", { class: "bars" });
  for (const r of rows) {
    const li = html("li");
    const label = html("span", { class: "bar-label" }, r.path);
    const bar = html("span", { class: "bar" });
    bar.style.setProperty("--w", `${(Number(r.views) / max) * 100}%`);
    const plural = (n, word) => `${number(n)} ${word}${Number(n) === 1 ? "" : "s"}`;
    li.append(label, bar, html("span", { class: "bar-value" }, `${plural(r.views, "view")} · ${plural(r.visitors, "visitor")}`));
    list.append(li);
  }
  return list;
}

function activity(rows) {
  const table = html("table");
  const head = html("tr");
  for (const h of ["When (UTC)", "Event", "Path", "Duration (ms)"]) head.append(html("th", { scope: "col" }, h));
  table.append(html("thead"), html("tbody"));
  table.tHead.append(head);
  for (const r of rows) {
    const tr = html("tr");
    for (const v of [String(r.timestamp).slice(0, 19), r.event, r.path, number(r.duration_ms)]) tr.append(html("td", {}, v));
    table.tBodies[0].append(tr);
  }
  return table;
}

async function refresh(panel, load, draw, emptyText) {
  show(panel, "loading");
  try {
    const rows = await load();
    if (!rows.length || (panel.id === "kpis" && !Number(rows[0]?.events))) show(panel, "empty", emptyText);
    else show(panel, "ready", draw(rows));
  } catch (e) {
    if (String(e.message).match(/organization changed|signed out|no active organization/)) return;
    show(panel, "error", e.message);
  }
}

function dashboard() {
  const root = document.getElementById("dashboard");
  if (!root) return;
  const every = Number(root.dataset.refreshSeconds) || 5;
  const minutes = Number(root.dataset.minutes) || 30;
  const panels = {
    kpis: () => refresh(document.getElementById("kpis"), () => pipe("kpis"), kpis, "No events yet for this organization."),
    minute: () =>
      refresh(document.getElementById("events-per-minute"), () => pipe("events_per_minute", { minutes }), (rows) => perMinute(rows, minutes), `No events in the last ${minutes} minutes.`),
    pages: () => refresh(document.getElementById("top-pages"), () => pipe("top_pages", { limit: 8 }), topPages, "No page views yet."),
    mine: () => refresh(document.getElementById("my-activity"), () => pipe("user_activity", { limit: 10 }), activity, "You have no events yet."),
  };
  const tick = async () => {
    await Promise.all(Object.values(panels).map((p) => p()));
    root.dataset.updatedAt = String(Date.now());
    const stamp = document.getElementById("updated");
    if (stamp) stamp.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  };
  tick();
  setInterval(tick, every * 1000);
}

// ---------------------------------------------------------------- token panel

function b64json(part) {
  const s = part.replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(decodeURIComponent(escape(atob(s + "===".slice((s.length + 3) % 4)))));
}

function tokenPanel() {
  const panel = document.getElementById("token-panel");
  if (!panel) return;
  const render = () => {
    const [h, p] = state.token.split(".");
    panel.querySelector("[data-token]").textContent = state.token;
    panel.querySelector("[data-header]").textContent = JSON.stringify(b64json(h), null, 2);
    panel.querySelector("[data-claims]").textContent = JSON.stringify(b64json(p), null, 2);
    panel.querySelector("[data-curl]").textContent =
      `curl -H "Authorization: Bearer ${state.token}" "${state.api}/v0/pipes/top_pages.json?limit=5"`;
  };
  const countdown = () => {
    const left = Math.max(0, Math.round(state.exp - now()));
    panel.querySelector("[data-expires]").textContent = left > 0 ? `expires in ${left} s` : "expired — renewing…";
  };
  document.addEventListener("aviary:token", render);
  render();
  countdown();
  setInterval(countdown, 1000);
  // Keep the shown token fresh even when no panel is fetching.
  setInterval(() => {
    if (state.exp - now() < renewalMargin()) renew().catch(() => {});
  }, 5000);
  for (const button of panel.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const target = panel.querySelector(`[data-${button.dataset.copy}]`);
      try {
        await navigator.clipboard.writeText(target.textContent);
        button.textContent = "Copied";
      } catch (_) {
        button.textContent = "Select and copy";
      }
      setTimeout(() => (button.textContent = "Copy"), 1500);
    });
  }
}

// Forms that ask for confirmation (data-confirm) — no inline handlers.
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (e) => {
    if (!confirm(form.dataset.confirm)) e.preventDefault();
  });
}

if (state.token) {
  dashboard();
  tokenPanel();
}
window.aviary = { state, renew, pipe };

// Townhall's operator dashboard: plain DOM, no framework, no third-party code, served
// from the binary under a strict Content-Security-Policy (no inline script or style).
// Everything shown comes from the admin API with the signed-in administrator's token;
// every value is written with textContent, never parsed as HTML.

const REFRESH_MS = 5000;
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2451b3", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490", "#a16207", "#be185d"];
const TOKEN_KEY = "townhall.admin.token";
const NAME_KEY = "townhall.admin.name";

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

class SignedOut extends Error {}

async function api(method, path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const response = await fetch(path, {
    method,
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    cache: "no-store",
  });
  if (response.status === 401) {
    signOut("Your session ended; sign in again.");
    throw new SignedOut();
  }
  const type = response.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  return { status: response.status, body };
}

function problemText(result) {
  if (result.body && typeof result.body === "object" && result.body.detail) return result.body.detail;
  return `HTTP ${result.status}`;
}

// ---- sign-in -------------------------------------------------------------------------

function showSignIn(message = "") {
  $("console").hidden = true;
  $("who").hidden = true;
  $("sign-in-panel").hidden = false;
  $("sign-in-error").textContent = message;
}

function signOut(message = "") {
  const token = sessionStorage.getItem(TOKEN_KEY);
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(NAME_KEY);
  if (token && !message)
    fetch("/api/v1/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  stopRefresh();
  showSignIn(message);
}

async function signIn(event) {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  const email = $("email").value.trim();
  const password = $("password").value;
  let response;
  try {
    response = await fetch("/api/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email, password }),
    });
  } catch {
    $("sign-in-error").textContent = "The server did not answer.";
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (response.status !== 200 || !body.token) {
    $("sign-in-error").textContent = body.detail || `Sign-in failed (HTTP ${response.status}).`;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, body.token);
  const principal = body.principal || {};
  sessionStorage.setItem(NAME_KEY, principal.name || principal.email || email);
  $("password").value = "";
  await enterConsole();
}

async function enterConsole() {
  // An account without the admin permission is told so instead of seeing empty tables.
  let probe;
  try {
    probe = await api("GET", "/admin/bus");
  } catch (error) {
    if (!(error instanceof SignedOut)) showSignIn("The server did not answer.");
    return;
  }
  if (probe.status === 403) {
    signOut("This account is not an administrator (the bus:admin permission is needed).");
    return;
  }
  $("sign-in-panel").hidden = true;
  $("console").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = `Signed in as ${sessionStorage.getItem(NAME_KEY) || "administrator"}`;
  await Promise.all([refresh(), loadGraph(), loadConsistency()]);
  startRefresh();
}

// ---- periodic refresh: modules, feeds, outboxes, chart, dead letters ----------------------

let timer = null;
function startRefresh() {
  stopRefresh();
  timer = setInterval(() => refresh().catch(() => {}), REFRESH_MS);
}
function stopRefresh() {
  if (timer) clearInterval(timer);
  timer = null;
}

let lastBus = null;
let lastHistory = null;

async function refresh() {
  try {
    const [ready, bus, history] = await Promise.all([
      fetch("/readyz", { cache: "no-store" }).then((r) => r.json()),
      api("GET", "/admin/bus"),
      api("GET", "/admin/bus/history"),
    ]);
    if (bus.status === 200) lastBus = bus.body;
    if (history.status === 200) lastHistory = history.body;
    renderModules(ready, lastBus);
    renderFeeds(lastBus);
    renderChart();
    await loadLetters();
    $("status-line").textContent = `Updated ${new Date().toLocaleTimeString()} · server ${ready.status}`;
  } catch (error) {
    if (error instanceof SignedOut) return;
    $("status-line").textContent = `Refresh failed: ${error.message}`;
  }
}

function cell(text, className) {
  return el("td", className ? { class: className, text: String(text) } : { text: String(text) });
}

function replaceRows(table, rows) {
  const body = table.querySelector("tbody");
  body.replaceChildren(...rows);
}

function renderModules(ready, bus) {
  const outboxes = new Map((bus?.outboxes || []).map((o) => [o.module, o]));
  const rows = Object.entries(ready.modules || {}).map(([name, state]) => {
    const outbox = outboxes.get(name);
    const known = outbox && outbox.readable;
    return el(
      "tr",
      { "data-module": name },
      cell(name),
      cell(state.state, state.state === "up" ? "up" : state.state === "degraded" ? "degraded" : "down"),
      cell(state.detail || ""),
      cell(known ? outbox.head : "–", "num"),
      cell(known ? outbox.pending : "–", "num"),
      cell(known ? outbox.held : "–", "num"),
    );
  });
  replaceRows($("modules"), rows);
  moduleStates = new Map(Object.entries(ready.modules || {}).map(([name, s]) => [name, s.state]));
  drawGraph();
}

function renderFeeds(bus) {
  const rows = (bus?.feeds || []).map((f) =>
    el(
      "tr",
      {},
      cell(f.consumer),
      cell(f.subscription),
      cell(f.source),
      cell(f.consumer_up ? "up" : "down", f.consumer_up ? "up" : "down"),
      cell(f.cursor, "num"),
      cell(f.source_head, "num"),
      cell(f.lag_events, "num"),
      cell(f.lag_seconds.toFixed(1), "num"),
    ),
  );
  replaceRows($("feeds"), rows);
}

// ---- lag chart: one line per subscription, from the server's sampled history -------------

function chartUnit() {
  return document.querySelector("input[name=lag-unit]:checked").value;
}

function renderChart() {
  const chart = $("lag-chart");
  const legend = $("lag-legend");
  const samples = lastHistory?.samples || [];
  const unit = chartUnit();
  const W = 800, H = 220, left = 48, right = 10, top = 10, bottom = 24;
  chart.replaceChildren();
  legend.replaceChildren();
  const keys = [...new Set(samples.flatMap((s) => Object.keys(s.feeds)))].sort();
  $("chart-caption").textContent = samples.length
    ? `${samples.length} samples, one every ${lastHistory.interval_seconds} s`
    : `no samples yet (one every ${lastHistory?.interval_seconds ?? "?"} s)`;
  let max = 0;
  for (const s of samples) for (const k of keys) max = Math.max(max, s.feeds[k]?.[unit] ?? 0);
  max = max > 0 ? max : 1;
  const x = (i) => left + (samples.length > 1 ? (i * (W - left - right)) / (samples.length - 1) : 0);
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  chart.append(
    svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: H - bottom }),
    svg("line", { class: "axis", x1: left, y1: H - bottom, x2: W - right, y2: H - bottom }),
    svg("text", { class: "axis-label", x: 4, y: top + 10 }, unit === "lag_events" ? String(max) : max.toFixed(1)),
    svg("text", { class: "axis-label", x: 4, y: H - bottom }, "0"),
  );
  if (samples.length) {
    const first = new Date(samples[0].at), last = new Date(samples[samples.length - 1].at);
    chart.append(
      svg("text", { class: "axis-label", x: left, y: H - 6 }, first.toLocaleTimeString()),
      svg("text", { class: "axis-label", x: W - right - 60, y: H - 6 }, last.toLocaleTimeString()),
    );
  }
  keys.forEach((key, index) => {
    const color = COLORS[index % COLORS.length];
    const points = samples.map((s, i) => `${x(i).toFixed(1)},${y(s.feeds[key]?.[unit] ?? 0).toFixed(1)}`).join(" ");
    chart.append(svg("polyline", { points, fill: "none", stroke: color, "stroke-width": 1.6 }));
    const swatch = svg("svg", { class: "swatch", viewBox: "0 0 10 10" });
    swatch.append(svg("rect", { width: 10, height: 10, fill: color }));
    legend.append(el("li", {}, swatch, key));
  });
}

// ---- dead letters ---------------------------------------------------------------------

async function loadLetters() {
  const state = $("letter-state").value;
  const result = await api("GET", `/admin/dead-letters?state=${encodeURIComponent(state)}`);
  if (result.status !== 200) {
    $("letters-message").textContent = problemText(result);
    return;
  }
  const rows = result.body.items.map((letter) => {
    const actions = el("td", {});
    actions.append(el("button", { type: "button", text: "Show", onclick: () => showLetter(letter) }));
    if (letter.state === "pending") {
      actions.append(
        el("button", { type: "button", text: "Replay", onclick: () => act(letter, "replay") }),
        el("button", { type: "button", class: "danger", text: "Discard", onclick: () => act(letter, "discard") }),
      );
    }
    return el(
      "tr",
      { "data-letter": `${letter.module}/${letter.id}` },
      cell(letter.module),
      cell(letter.id, "num"),
      cell(letter.subscription),
      cell(letter.event_id),
      cell(letter.attempts, "num"),
      cell(letter.last_failed_at),
      cell(letter.error),
      cell(letter.state),
      actions,
    );
  });
  replaceRows($("dead-letters"), rows);
  if (!rows.length) replaceRows($("dead-letters"), [el("tr", {}, el("td", { colspan: "9", class: "muted", text: `No ${state === "all" ? "" : state + " "}dead letters.` }))]);
}

function showLetter(letter) {
  const detail = $("letter-detail");
  detail.hidden = false;
  detail.textContent = JSON.stringify(letter, null, 2);
}

async function act(letter, action) {
  if (action === "discard" &&
      !confirm(`Discard dead letter #${letter.id} of ${letter.module}? Its event (${letter.event_id}) will never be applied.`))
    return;
  const message = $("letters-message");
  message.textContent = `${action === "replay" ? "Replaying" : "Discarding"} #${letter.id}…`;
  try {
    const result = await api("POST", `/admin/dead-letters/${encodeURIComponent(letter.module)}/${letter.id}/${action}`);
    message.textContent = result.status === 200
      ? `Dead letter #${letter.id} of ${letter.module}: ${result.body.state}.`
      : `Dead letter #${letter.id}: ${problemText(result)}`;
  } catch (error) {
    if (!(error instanceof SignedOut)) message.textContent = `Failed: ${error.message}`;
    return;
  }
  await loadLetters();
}

// ---- consistency --------------------------------------------------------------------

async function loadConsistency() {
  const result = await api("GET", "/admin/consistency");
  if (result.status === 404) {
    $("check-summary").textContent = "No consistency check has run yet.";
    replaceRows($("check-caches"), []);
  } else if (result.status === 200) {
    renderReport(result.body);
  } else {
    $("check-summary").textContent = problemText(result);
  }
}

function renderReport(report) {
  $("check-summary").textContent =
    `${report.consistent ? "Consistent" : "NOT consistent"} · started ${report.started_at}` +
    ` · missing ${report.missing}, stale ${report.stale}, extra ${report.extra}, repaired ${report.repaired}` +
    ` · ${report.repair ? "with repair" : "check only"} · ${report.duration_seconds.toFixed(3)} s` +
    (report.rewound && report.rewound.length ? ` · SOURCE RESTORED, rewound: ${report.rewound.join(", ")}` : "");
  $("check-summary").className = report.consistent ? "up" : "down";
  replaceRows(
    $("check-caches"),
    report.caches.map((c) =>
      el(
        "tr",
        {},
        cell(c.cache),
        cell(c.source),
        cell(c.source_rows, "num"),
        cell(c.cache_rows, "num"),
        cell(c.missing, "num"),
        cell(c.stale, "num"),
        cell(c.extra, "num"),
        cell(c.repaired, "num"),
        cell(c.duration_seconds.toFixed(3), "num"),
      ),
    ),
  );
}

async function runCheck(repair) {
  const message = $("check-message");
  message.textContent = repair ? "Checking and repairing…" : "Checking…";
  $("check-now").disabled = $("check-repair").disabled = true;
  try {
    const result = await api("POST", `/admin/consistency?repair=${repair}`);
    if (result.status === 200) {
      renderReport(result.body);
      message.textContent = "Done.";
    } else {
      message.textContent = problemText(result);
    }
  } catch (error) {
    if (!(error instanceof SignedOut)) message.textContent = `Failed: ${error.message}`;
  } finally {
    $("check-now").disabled = $("check-repair").disabled = false;
  }
}

// ---- module graph ---------------------------------------------------------------------

let graph = null;
let moduleStates = new Map();

async function loadGraph() {
  const result = await api("GET", "/admin/registry");
  if (result.status === 200) graph = result.body;
  drawGraph();
}

function drawGraph() {
  const canvas = $("graph");
  canvas.replaceChildren();
  if (!graph) return;
  const W = 800, H = 420, boxW = 150, boxH = 54;
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#6b7280" }));
  defs.append(marker);
  canvas.append(defs);
  // The module with the most connections (auth, whose citizens everyone caches) in the
  // middle when there are four or more, the others on an ellipse around it.
  const degree = new Map(graph.modules.map((m) => [m.name, 0]));
  for (const e of graph.edges) {
    degree.set(e.from, (degree.get(e.from) || 0) + 1);
    degree.set(e.to, (degree.get(e.to) || 0) + 1);
  }
  const hub = graph.modules.length >= 4
    ? [...graph.modules].sort((a, b) => degree.get(b.name) - degree.get(a.name))[0].name
    : null;
  const ring = graph.modules.filter((m) => m.name !== hub);
  // Unit positions first, then stretched to fill the canvas.
  const centre = new Map();
  if (hub) centre.set(hub, { x: 0, y: 0 });
  ring.forEach((m, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(ring.length, 1);
    centre.set(m.name, { x: Math.cos(angle), y: Math.sin(angle) });
  });
  const fit = (values, low, high) => {
    const min = Math.min(...values), max = Math.max(...values);
    return (v) => (max > min ? low + ((v - min) * (high - low)) / (max - min) : (low + high) / 2);
  };
  const points = [...centre.values()];
  const fx = fit(points.map((c) => c.x), boxW / 2 + 20, W - boxW / 2 - 20);
  const fy = fit(points.map((c) => c.y), boxH / 2 + 12, H - boxH / 2 - 12);
  for (const c of points) {
    c.x = fx(c.x);
    c.y = fy(c.y);
  }
  // One curve per (from, to, kind), labels joined; opposite directions bend apart.
  const grouped = new Map();
  for (const e of graph.edges) {
    const key = `${e.from}|${e.to}|${e.kind}`;
    if (!grouped.has(key)) grouped.set(key, { ...e, labels: [] });
    if (e.kind === "events") grouped.get(key).labels.push(e.label);
  }
  const labels = [];  // drawn over every curve
  for (const e of grouped.values()) {
    const a = centre.get(e.from), b = centre.get(e.to);
    if (!a || !b) continue;
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
    const bend = e.kind === "api" ? 50 : 26;
    const cx = (a.x + b.x) / 2 - (dy / len) * bend, cy = (a.y + b.y) / 2 + (dx / len) * bend;
    // Stop at the box edge: shorten by the box's half-extent along the direction.
    const trim = (p, q) => {
      const ux = q.x - p.x, uy = q.y - p.y, l = Math.hypot(ux, uy) || 1;
      const t = Math.min((boxW / 2) / Math.abs(ux / l || 1e-9), (boxH / 2) / Math.abs(uy / l || 1e-9));
      return { x: p.x + (ux / l) * t, y: p.y + (uy / l) * t };
    };
    const start = trim(a, { x: cx, y: cy }), end = trim(b, { x: cx, y: cy });
    canvas.append(svg("path", {
      class: `edge ${e.kind}`,
      d: `M${start.x.toFixed(1)},${start.y.toFixed(1)} Q${cx.toFixed(1)},${cy.toFixed(1)} ${end.x.toFixed(1)},${end.y.toFixed(1)}`,
      "marker-end": "url(#arrow)",
      "data-edge": `${e.from}->${e.to}:${e.kind}`,
    }));
    const label = e.kind === "api" ? "Api" : e.labels.join(", ");
    // On the curve itself (its t = 0.5 point), not at the control point.
    const mx = 0.25 * start.x + 0.5 * cx + 0.25 * end.x, my = 0.25 * start.y + 0.5 * cy + 0.25 * end.y;
    // Beside a steep curve (on the side it bends to), centred on a flat one.
    const nx = -dy / len;
    const anchor = Math.abs(nx) > 0.5 ? (nx < 0 ? "end" : "start") : "middle";
    const lx = mx + (anchor === "middle" ? 0 : Math.sign(nx) * 4);
    labels.push(svg("text", { class: "edge-label", x: lx.toFixed(1), y: (my + 3).toFixed(1), "text-anchor": anchor }, label));
  }
  canvas.append(...labels);
  for (const m of graph.modules) {
    const c = centre.get(m.name);
    const state = moduleStates.get(m.name);
    const group = svg("g", { class: `node${state && state !== "up" ? " down" : ""}`, "data-module": m.name });
    group.append(
      svg("rect", { x: c.x - boxW / 2, y: c.y - boxH / 2, width: boxW, height: boxH, rx: 6 }),
      svg("text", { x: c.x, y: c.y - 6, "text-anchor": "middle" }, m.name),
      svg("text", { class: "detail", x: c.x, y: c.y + 10, "text-anchor": "middle" }, m.db_file),
      svg("text", { class: "detail", x: c.x, y: c.y + 22, "text-anchor": "middle" }, m.route_prefix),
    );
    canvas.append(group);
  }
}

// ---- wiring -----------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("letter-state").addEventListener("change", () => loadLetters().catch(() => {}));
  $("check-now").addEventListener("click", () => runCheck(false));
  $("check-repair").addEventListener("click", () => runCheck(true));
  for (const radio of document.querySelectorAll("input[name=lag-unit]")) radio.addEventListener("change", renderChart);
  if (sessionStorage.getItem(TOKEN_KEY)) enterConsole();
  else showSignIn();
});

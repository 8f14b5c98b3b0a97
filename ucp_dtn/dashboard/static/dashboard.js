// ucp-dtn dashboard: draws the snapshots the node streams at /api/v1/events (server-sent
// events, one "snapshot" event per interval). Plain DOM, no libraries, nothing from elsewhere.
// Everything that comes from the network (node IDs, job names, details) is set as text, never
// parsed as HTML.
"use strict";

const STATES = ["queued", "dispatched", "running", "done", "failed", "rejected", "cancelled"];
const ROLE_ORDER = ["broker", "executor", "datastore"];
const SVG = "http://www.w3.org/2000/svg";
const filters = { states: new Set(), text: "" };
let latest = null;

// -- formatting ------------------------------------------------------------------------------

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return (unit === 0 ? value.toFixed(0) : value.toFixed(value < 10 ? 1 : 0)) + " " + units[unit];
}
function rate(n) { return n === null || n === undefined ? "–" : bytes(n) + "/s"; }
function perSecond(n) {
  if (n === null || n === undefined) return "–";
  return (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)) + "/s";
}
function count(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en"); }
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 1) return (seconds * 1000).toFixed(0) + " ms";
  if (seconds < 60) return seconds.toFixed(seconds < 10 ? 2 : 1) + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
  if (seconds < 86400) return Math.floor(seconds / 3600) + " h " + Math.round((seconds % 3600) / 60) + " min";
  return Math.floor(seconds / 86400) + " d " + Math.round((seconds % 86400) / 3600) + " h";
}
function ago(at, now) {
  if (at === null || at === undefined) return "–";
  return duration(Math.max(0, now - at)) + " ago";
}
function shortNode(id) {
  if (!id) return "–";
  const m = /^dtn:\/\/([^/]+)\/?$/.exec(id);
  return m ? m[1] : id;
}
function primaryRole(roles) {
  for (const role of ROLE_ORDER) if (roles.includes(role)) return role;
  return "none";
}

// -- DOM helpers -----------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "title") node.title = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}
function fill(id, rows, columns, emptyText) {
  const body = document.getElementById(id);
  if (!rows.length) {
    body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: columns }, emptyText)));
    return;
  }
  body.replaceChildren(...rows);
}
function bar(fraction, small) {
  const inner = el("div");
  inner.style.width = Math.max(0, Math.min(100, fraction * 100)).toFixed(1) + "%";
  const cls = "bar" + (small ? " small" : "") + (fraction >= 0.95 ? " full" : fraction >= 0.8 ? " warn" : "");
  return el("div", { class: cls }, inner);
}
function figures(id, items) {
  document.getElementById(id).replaceChildren(
    ...items.map(([label, value]) => el("div", {}, el("dt", {}, label), el("dd", {}, value))));
}

// -- sections --------------------------------------------------------------------------------

function renderHeader(s) {
  document.getElementById("node-id").textContent = s.node_id;
  document.getElementById("node-roles").replaceChildren(
    ...s.roles.map((role) => el("span", { class: role }, role)));
  document.title = shortNode(s.node_id) + " · ucp-dtn";
  document.getElementById("software").textContent = s.software;
  document.getElementById("uptime").textContent = duration(s.taken_at - s.started_at);
  document.getElementById("updated").textContent = new Date(s.taken_at * 1000).toLocaleTimeString();
}

function renderRates(s) {
  const c = s.counters, r = s.rates;
  figures("rates", [
    ["received", perSecond(r.received)], ["forwarded", perSecond(r.forwarded)],
    ["delivered", perSecond(r.delivered)], ["created", perSecond(r.created)],
    ["received total", count(c.received)], ["forwarded total", count(c.forwarded)],
    ["delivered total", count(c.delivered)], ["duplicates", count(c.duplicates)],
    ["custody retransmitted", count(c.custody_retransmitted)],
    ["fragments made", count(c.fragments_created)],
    ["deleted", count(Object.values(c.deleted || {}).reduce((a, b) => a + b, 0))],
    ["sessions opened", count(c.sessions_opened)],
  ]);
}

function renderStore(s) {
  const st = s.store;
  const fraction = st.quota_bytes ? st.bytes / st.quota_bytes : 0;
  const storeBar = document.getElementById("store-bar");
  storeBar.style.width = Math.min(100, fraction * 100).toFixed(1) + "%";
  storeBar.parentElement.className = "bar" + (fraction >= 0.95 ? " full" : fraction >= 0.8 ? " warn" : "");
  document.getElementById("store-text").textContent =
    `${bytes(st.bytes)} of ${bytes(st.quota_bytes)} (${(fraction * 100).toFixed(1)}%) in ${count(st.bundles)} bundles`;
  figures("store-figures", [
    ["to forward", count(st.pending_forward)], ["to deliver", count(st.pending_delivery)],
    ["awaiting custody", count(st.custody_wait)], ["no route yet", count(st.unrouted)],
  ]);
  const rows = Object.entries(st.waiting_by_hop).map(([hop, n]) =>
    el("tr", { "data-hop": hop }, el("td", { class: "mono" }, hop), el("td", { class: "num" }, count(n))));
  if (st.unrouted) rows.push(el("tr", {}, el("td", {}, "no usable route"), el("td", { class: "num" }, count(st.unrouted))));
  fill("waiting", rows, 2, "nothing waiting");
}

function transferText(t) {
  const arrow = t.direction === "out" ? "↑" : "↓";
  if (!t.total) return `${arrow} ${bytes(t.done)}`;
  return `${arrow} ${bytes(t.done)} / ${bytes(t.total)} (${((t.done / t.total) * 100).toFixed(0)}%)`;
}

function renderPeers(s) {
  const rows = s.peers.map((p) => {
    const transfers = el("td", {});
    for (const t of p.transfers) {
      const line = el("div", { class: "transfer" }, transferText(t));
      if (t.total) line.append(bar(t.done / t.total, true));
      transfers.append(line);
    }
    if (p.transfers_in_progress > p.transfers.length) {
      transfers.append(el("div", { class: "transfer" }, `+ ${p.transfers_in_progress - p.transfers.length} more`));
    }
    if (!p.transfers_in_progress) transfers.append("–");
    return el("tr", { "data-peer": p.node_id },
      el("td", {}, el("div", { class: "mono" }, p.node_id), el("div", { class: "muted" }, p.address)),
      el("td", {}, `${p.state}, ${p.direction}${p.tls ? ", TLS" : ""}`, el("div", { class: "muted" }, ago(p.since, s.taken_at))),
      el("td", { class: "num" }, rate(p.send_bps)),
      el("td", { class: "num" }, rate(p.receive_bps)),
      el("td", { class: "num" }, p.rtt_ms === null ? "–" : p.rtt_ms.toFixed(p.rtt_ms < 10 ? 2 : 0) + " ms"),
      el("td", { class: "num" }, `${count(p.bundles_sent)} / ${count(p.bundles_received)}`),
      el("td", { class: "num" }, count(p.in_flight)),
      el("td", { class: "num" }, count(p.waiting)),
      transfers);
  });
  fill("peers", rows, 9, "no session up: bundles wait in the store until a neighbour comes");
}

function renderRoutes(s) {
  const rows = s.routes.map((r) => el("tr", {},
    el("td", { class: "mono" }, r.pattern), el("td", { class: "mono" }, r.next_hop),
    el("td", {}, r.origin), el("td", { class: "num" }, r.metric), el("td", {}, r.usable ? "yes" : "waiting")));
  fill("routes", rows, 5, "no routes");
}

function renderExecutors(s) {
  const rows = s.executors.map((e) => {
    const caps = e.capabilities || {};
    const load = e.max_jobs ? e.running / e.max_jobs : 0;
    return el("tr", { "data-executor": e.node_id },
      el("td", { class: "mono" }, shortNode(e.node_id) + (e.local ? " (this node)" : "")),
      el("td", {}, `${e.running} / ${e.max_jobs} jobs`, bar(load, true)),
      el("td", { class: "num" }, caps.cpu_cores === undefined ? "–" :
        `${caps.cpu_cores} cores, load ${(caps.cpu_load * 100).toFixed(0)}%`),
      el("td", { class: "num" }, bytes(caps.memory)),
      el("td", { class: "num" }, caps.has_battery ? `${Number(caps.power).toFixed(0)}% battery` : "mains"),
      el("td", {}, e.last_seen === null ? "–" : ago(e.last_seen, s.taken_at)));
  });
  fill("executors", rows, 6, "no executor known");
}

function renderDatastores(s) {
  const rows = s.datastores.map((d) => {
    const total = (d.used_bytes || 0) + (d.free_bytes || 0);
    return el("tr", { "data-datastore": d.node_id },
      el("td", { class: "mono" }, shortNode(d.node_id) + (d.local ? " (this node)" : "")),
      el("td", {}, bytes(d.used_bytes), total ? bar((d.used_bytes || 0) / total, true) : null),
      el("td", { class: "num" }, bytes(d.free_bytes)),
      el("td", {}, d.last_seen === null ? "–" : ago(d.last_seen, s.taken_at)));
  });
  fill("datastores", rows, 4, "no datastore known");
}

function renderStateFilters(counts) {
  const box = document.getElementById("state-filters");
  const buttons = [["all", null]].concat(STATES.map((st) => [st, st])).map(([label, state]) => {
    const on = state === null ? filters.states.size === 0 : filters.states.has(state);
    const n = state === null ? Object.values(counts).reduce((a, b) => a + b, 0) : counts[state] || 0;
    const button = el("button", { type: "button", class: on ? "on" : "", "data-state": label }, `${label} ${n}`);
    button.addEventListener("click", () => {
      if (state === null) filters.states.clear();
      else if (filters.states.has(state)) filters.states.delete(state);
      else filters.states.add(state);
      if (latest) renderJobs(latest);
    });
    return button;
  });
  box.replaceChildren(...buttons);
}

function jobTimes(job) {
  const at = (t) => (t === null ? "–" : new Date(t * 1000).toLocaleString());
  return `submitted ${at(job.submitted_at)}\ndispatched ${at(job.dispatched_at)}\n` +
    `started ${at(job.started_at)}\nfinished ${at(job.finished_at)}\nclient ${job.client}`;
}

function jobMatches(job, needle) {
  if (filters.states.size && !filters.states.has(job.state)) return false;
  if (!needle) return true;
  return [job.name, job.job_id, job.executor || "", job.client, job.detail]
    .some((v) => v.toLowerCase().includes(needle));
}

function renderJobs(s) {
  const card = document.getElementById("jobs-card");
  if (!s.broker) {
    document.getElementById("jobs-where").textContent = "(this node runs no broker)";
    renderStateFilters({});
    fill("jobs", [], 7, "the job table lives on the brokers: open a broker node's dashboard");
    document.getElementById("jobs-note").textContent = "";
    card.dataset.broker = "";
    return;
  }
  card.dataset.broker = s.broker.endpoint;
  document.getElementById("jobs-where").textContent = "at " + s.broker.endpoint;
  renderStateFilters(s.broker.counts);
  const needle = filters.text.trim().toLowerCase();
  const rows = s.broker.jobs.filter((job) => jobMatches(job, needle)).map((job) => el("tr",
    { "data-job": job.job_id, "data-state": job.state, class: "job" },
    el("td", {}, job.name || "(unnamed)", el("div", { class: "muted mono" }, job.job_id.slice(0, 8))),
    el("td", {}, el("span", { class: "state " + job.state }, job.state)),
    el("td", { class: "mono" }, shortNode(job.executor)),
    el("td", { class: "num" }, job.attempts),
    el("td", { title: jobTimes(job) }, ago(job.submitted_at, s.taken_at)),
    el("td", { class: "num" }, duration(job.run_s)),
    el("td", { class: "detail" }, job.detail)));
  fill("jobs", rows, 7, s.broker.jobs.length ? "no job matches the filter" : "no jobs yet");
  const shown = s.broker.jobs.length;
  document.getElementById("jobs-note").textContent = s.broker.jobs_total > shown
    ? `the ${shown} most recently changed of ${count(s.broker.jobs_total)} jobs (all of them: /api/v1/jobs)` : "";
}

// -- the map ---------------------------------------------------------------------------------

function layout(s, width, height) {
  // This node in the middle, neighbours on a ring, the nodes behind them further out, each
  // near the neighbour it is reached through (routes), the rest spread over the outer ring.
  const cx = width / 2, cy = height / 2;
  const r1 = Math.min(width, height) * 0.28, r2 = Math.min(width, height) * 0.45;
  const pos = new Map();
  const neighbours = s.mesh_nodes.filter((n) => n.kind === "neighbour");
  const remote = s.mesh_nodes.filter((n) => n.kind === "remote");
  const self = s.mesh_nodes.find((n) => n.kind === "self");
  if (self) pos.set(self.node_id, [cx, cy]);
  neighbours.forEach((n, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, neighbours.length);
    pos.set(n.node_id, [cx + r1 * Math.cos(a) * 1.6, cy + r1 * Math.sin(a)]);
  });
  const via = new Map();
  for (const link of s.mesh_links) if (link.kind === "route" && pos.has(link.source)) via.set(link.target, link.source);
  const groups = new Map();
  for (const n of remote) {
    const key = via.get(n.node_id) || "";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(n);
  }
  const free = [];
  for (const [hop, members] of groups) {
    if (!hop) { free.push(...members); continue; }
    const [hx, hy] = pos.get(hop);
    const base = Math.atan2(hy - cy, (hx - cx) / 1.6);
    members.forEach((n, i) => {
      const a = base + (i - (members.length - 1) / 2) * 0.35;
      pos.set(n.node_id, [cx + r2 * Math.cos(a) * 1.6, cy + r2 * Math.sin(a)]);
    });
  }
  free.forEach((n, i) => {
    const a = Math.PI / 2 + (2 * Math.PI * (i + 0.5)) / Math.max(1, free.length);
    pos.set(n.node_id, [cx + r2 * Math.cos(a) * 1.6, cy + r2 * Math.sin(a)]);
  });
  for (const [id, [x, y]] of pos) pos.set(id, [Math.max(40, Math.min(width - 40, x)), Math.max(30, Math.min(height - 40, y))]);
  return pos;
}

function renderMesh(s) {
  const box = document.getElementById("mesh");
  const width = 800, height = 420;
  const pos = layout(s, width, height);
  const parts = [];
  for (const link of s.mesh_links) {
    const a = pos.get(link.source), b = pos.get(link.target);
    if (!a || !b) continue;
    // From circle edge to circle edge, so the lines do not run through the names.
    const length = Math.hypot(b[0] - a[0], b[1] - a[1]) || 1;
    const ux = (b[0] - a[0]) / length, uy = (b[1] - a[1]) / length;
    const ra = link.source === s.node_id ? 24 : 19, rb = 19;
    parts.push(svg("line", { class: "link " + link.kind,
      x1: (a[0] + ux * ra).toFixed(1), y1: (a[1] + uy * ra).toFixed(1),
      x2: (b[0] - ux * rb).toFixed(1), y2: (b[1] - uy * rb).toFixed(1),
      "data-link": link.source + " " + link.target }));
    if (link.kind === "session") {
      const label = [`↑${rate(link.send_bps)}`, `↓${rate(link.receive_bps)}`];
      if (link.rtt_ms !== null) label.push(`${link.rtt_ms.toFixed(2)} ms`);
      // Beside the line's middle, on the side away from it.
      const dx = b[0] - a[0], dy = b[1] - a[1], len = Math.hypot(dx, dy) || 1;
      const nx = -dy / len, ny = dx / len;
      const anchor = nx > 0.3 ? "start" : nx < -0.3 ? "end" : "middle";
      parts.push(svg("text", { class: "rate " + anchor,
        x: (a[0] + b[0]) / 2 + nx * 10, y: (a[1] + b[1]) / 2 + ny * 10 + 4 }, label.join("  ")));
    }
  }
  for (const node of s.mesh_nodes) {
    const p = pos.get(node.node_id);
    if (!p) continue;
    const role = primaryRole(node.roles);
    const g = svg("g", { class: `node ${role} ${node.kind}${node.reachable ? "" : " unreachable"}`,
      "data-node": node.node_id, transform: `translate(${p[0].toFixed(1)},${p[1].toFixed(1)})` });
    g.append(svg("title", {}, `${node.node_id}\n${node.roles.join(", ") || "no UCP role"}\n` +
      (node.hops === null ? "not reachable now" : node.hops === 0 ? "this node" : `${node.hops} hop(s) away`)));
    g.append(svg("circle", { r: node.kind === "self" ? 20 : 15 }));
    g.append(svg("text", { class: "initial", y: 4 }, node.roles.map((r) => r[0].toUpperCase()).join("")));
    g.append(svg("text", { y: node.kind === "self" ? 36 : 31 }, shortNode(node.node_id)));
    parts.push(g);
  }
  box.replaceChildren(...parts);
  // Fit the picture to what is drawn (a lone node needs less room than a mesh).
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of pos.values()) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  if (x0 !== Infinity) {
    const w = Math.max(640, x1 - x0 + 240), h = Math.max(230, y1 - y0 + 110);
    box.setAttribute("viewBox", `${((x0 + x1) / 2 - w / 2).toFixed(0)} ${((y0 + y1) / 2 - h / 2 + 8).toFixed(0)} ${w.toFixed(0)} ${h.toFixed(0)}`);
  }
}

// -- the stream ------------------------------------------------------------------------------

function render(s) {
  latest = s;
  renderHeader(s);
  renderMesh(s);
  renderRates(s);
  renderStore(s);
  renderPeers(s);
  renderJobs(s);
  renderExecutors(s);
  renderDatastores(s);
  renderRoutes(s);
  document.body.dataset.version = String(s.version);
  document.body.dataset.takenAt = String(s.taken_at);
}

function setLive(state, text) {
  const dot = document.getElementById("live");
  dot.className = "dot " + state;
  document.getElementById("live-text").textContent = text;
}

function connect() {
  const source = new EventSource("/api/v1/events");
  source.addEventListener("open", () => setLive("live", "live"));
  source.addEventListener("error", () => setLive("down", "reconnecting…"));
  source.addEventListener("snapshot", (event) => {
    try {
      render(JSON.parse(event.data));
      setLive("live", "live");
    } catch (error) {
      setLive("down", "bad snapshot: " + error.message);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const search = document.getElementById("job-search");
  search.addEventListener("input", () => {
    filters.text = search.value;
    if (latest) renderJobs(latest);
  });
  connect();
});

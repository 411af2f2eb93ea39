// The agent's status page: polls /v1/status every second and draws it. No external
// assets; every value goes into the page as text, never as markup.
"use strict";
const WINDOW_MS = 10 * 60 * 1000;
const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, text) => {
  const e = document.createElementNS(
    tag === "svg" || ["rect", "text", "line", "g"].includes(tag) ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml",
    tag,
  );
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};
const palette = ["#2e90fa", "#f79009", "#12b76a", "#9e77ed", "#f04438", "#0ba5ec", "#ee46bc", "#667085"];
const colors = new Map();
function color(node) {
  if (!colors.has(node)) colors.set(node, palette[colors.size % palette.length]);
  return colors.get(node);
}
function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}
function since(leader) {
  // humantime_serde writes RFC 3339.
  const t = Date.parse(leader.since);
  return isNaN(t) ? "" : ago(t);
}
const WHY = {
  elected: (c) => `${c.node} leads at epoch ${c.epoch}`,
  no_leader: () => "no leader",
  resigned: (c) => `${c.node} resigned (epoch ${c.epoch})`,
  expired: (c) => `${c.node}'s lease expired (epoch ${c.epoch})`,
  revoked: (c) => `${c.node}'s lease was revoked (epoch ${c.epoch})`,
  quorum_lost: (c) => `${c.node} lost its quorum (epoch ${c.epoch})`,
  yielded: (c) => `${c.node} stepped down for a preferred leader (epoch ${c.epoch})`,
};

function drawElections(status) {
  const body = $("elections").tBodies[0];
  body.replaceChildren();
  $("none").hidden = status.elections.length > 0;
  for (const e of status.elections) {
    const row = el("tr", { "data-election": e.election, class: e.is_leader ? "mine" : "" });
    const l = e.leader;
    row.append(
      el("td", { class: "election" }, e.election),
      el("td", { class: "leader" }, l ? l.node : "none"),
      el("td", { class: "epoch" }, l ? String(l.epoch) : ""),
      el("td", { class: "since" }, l ? since(l) : ""),
      el("td", { class: "lease" }, e.lease_left_ms == null ? "" : e.lease_left_ms + " ms"),
    );
    const role = el("td");
    role.append(el("span", { class: "role " + (e.is_leader ? "leader" : "follower") }, e.is_leader ? "leader" : "follower"));
    row.append(role);
    body.append(row);
  }
}

// Peer backends only: lease backends have no members (the section stays hidden).
function drawMembers(status) {
  const ms = status.members;
  $("members-section").hidden = !ms;
  if (!ms) return;
  const body = $("members").tBodies[0];
  body.replaceChildren();
  $("reach").textContent = `(${ms.filter((m) => m.reachable).length} of ${ms.length} reachable)`;
  for (const m of ms) {
    const state = m.me ? "this node" : m.reachable ? "reachable" : "unreachable";
    const heard = m.last_heard_ms == null ? (m.me ? "" : "never") : (m.last_heard_ms / 1000).toFixed(1) + " s ago";
    const row = el("tr", { "data-member": m.id, "data-reachable": String(m.reachable), class: m.me ? "mine" : "" });
    row.append(
      el("td", {}, m.id),
      el("td", {}, m.address),
      el("td", { class: "state " + (m.reachable ? "up" : "down") }, state),
      el("td", { class: "heard" }, heard),
    );
    body.append(row);
  }
}

function drawTimeline(status) {
  const svg = $("timeline");
  svg.replaceChildren();
  const names = status.elections.map((e) => e.election);
  const rowH = 22, left = 130, top = 4;
  const width = svg.clientWidth || 900;
  const height = top + rowH * Math.max(1, names.length) + 18;
  svg.setAttribute("height", height);
  // The last ten minutes at most, a minute at least, else since the first change kept.
  const now = Date.now();
  const first = status.history.length ? status.history[0].at_ms : now;
  const span = Math.min(WINDOW_MS, Math.max(60000, now - first + 5000));
  const from = now - span;
  const x = (t) => left + ((Math.max(t, from) - from) / span) * (width - left - 8);
  names.forEach((name, i) => {
    const y = top + i * rowH;
    svg.append(el("text", { x: 0, y: y + 15 }, name));
    const changes = status.history.filter((c) => c.election === name && c.why !== "resigned" && c.why !== "expired" && c.why !== "revoked" && c.why !== "quorum_lost" && c.why !== "yielded");
    // Each change starts a segment that lasts until the next one (or now).
    changes.forEach((c, j) => {
      const end = j + 1 < changes.length ? changes[j + 1].at_ms : now;
      if (end < from || !c.node) return;
      const x0 = x(c.at_ms), x1 = x(end);
      svg.append(el("rect", { x: x0, y: y + 3, width: Math.max(2, x1 - x0), height: rowH - 6, rx: 3, fill: color(c.node) }));
      if (x1 - x0 > 40) svg.append(el("text", { x: x0 + 4, y: y + 15, class: "on-bar" }, "e" + c.epoch));
    });
  });
  const axisY = top + rowH * Math.max(1, names.length) + 14;
  for (let i = 5; i >= 0; i--) {
    const back = (span * i) / 5;
    const label = i === 0 ? "now" : back >= 120000 ? `-${Math.round(back / 60000)} min` : `-${Math.round(back / 1000)} s`;
    const anchor = i === 5 ? "start" : i === 0 ? "end" : "middle";
    svg.append(el("text", { x: x(now - back), y: axisY, class: "axis", "text-anchor": anchor }, label));
  }
  const legend = $("legend");
  legend.replaceChildren();
  for (const [node, c] of colors) {
    const s = el("span");
    // CSSOM, not a style attribute: the page's Content-Security-Policy forbids those.
    const swatch = el("i");
    swatch.style.background = c;
    s.append(swatch, document.createTextNode(node));
    legend.append(s);
  }
}

function drawChanges(status) {
  const list = $("changes");
  list.replaceChildren();
  for (const c of status.history.slice(-20).reverse()) {
    const when = new Date(c.at_ms).toLocaleTimeString();
    const what = (WHY[c.why] || (() => c.why))(c);
    list.append(el("li", { "data-why": c.why }, `${when} ${c.election}: ${what}`));
  }
}

async function refresh() {
  try {
    const r = await fetch("/v1/status", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const status = await r.json();
    $("node").textContent = `node ${status.node} (${status.backend})`;
    status.history = status.history || [];
    drawElections(status);
    drawMembers(status);
    drawTimeline(status);
    drawChanges(status);
    $("conn").textContent = "live";
    $("conn").className = "conn ok";
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    $("conn").textContent = "agent unreachable (" + e.message + ")";
    $("conn").className = "conn bad";
  }
}
refresh();
setInterval(refresh, 1000);

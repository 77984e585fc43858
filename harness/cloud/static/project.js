"use strict";
/* Project view: the project's Cloud Devices tree, rebuilt from /assets every POLL_MS. */
const POLL_MS = 1500;
const $ = (id) => document.getElementById(id);
const projectId = decodeURIComponent(location.pathname.replace(/\/+$/, "").split("/").pop());
let lastRendered = null;
let timer = null;

/* Cloud Devices/<date>/<type>/<device>/<name>: the name may itself contain "/". */
function treeParts(row) {
  let name = String(row.name ?? "");
  let path = String(row.tree_path || "");
  if (!path) return ["Cloud Devices", "(no date)", "(no type)", String(row.device_id || "(device)"), name];
  if (name && path.endsWith("/" + name)) {
    path = path.slice(0, -(name.length + 1));
  } else {
    const cut = path.lastIndexOf("/");
    name = path.slice(cut + 1);
    path = cut >= 0 ? path.slice(0, cut) : "";
  }
  const segments = path ? path.split("/") : [];
  const head = segments.slice(0, 3);
  while (head.length < 3) head.push("–");
  const device = segments.slice(3).join("/") || "(device)";
  return [...head, device, name];
}

function assetRow(row) {
  const complete = ["complete", "completed", "done", "uploaded"].includes(String(row.state));
  let stateText = String(row.state || "unknown");
  if (!complete && row.filesize) {
    const done = row.bytes_stored ?? row.bytes_received ?? 0;
    const pct = Math.floor((100 * Number(done)) / Number(row.filesize));
    stateText += " (" + Math.min(pct, 100) + "%)";
  }
  return el("tr", { "data-asset-id": row.asset_id, class: "asset" },
    el("td", { class: "asset-name" }, String(row.name ?? "")),
    el("td", { class: "asset-size", "data-bytes": row.filesize ?? "" }, formatBytes(row.filesize)),
    el("td", { class: "asset-sha256 mono" }, row.sha256 || "–"),
    el("td", {}, el("span", { class: "asset-state state " + String(row.state || "unknown").replace(/[^a-z_-]/gi, "") }, stateText)));
}

function assetTable(rows) {
  const table = el("table", { class: "assets" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Name"), el("th", { scope: "col" }, "Size"),
      el("th", { scope: "col" }, "SHA-256"), el("th", { scope: "col" }, "State"))));
  const body = el("tbody", {});
  for (const row of rows) body.append(assetRow(row));
  table.append(body);
  return table;
}

/* Nested <ul>: root / date / type / device, then a table of that device's assets. */
function renderTree(rows) {
  const root = new Map();
  for (const row of rows) {
    const [top, date, type, device] = treeParts(row);
    let level = root;
    for (const key of [top, date, type]) {
      if (!level.has(key)) level.set(key, new Map());
      level = level.get(key);
    }
    if (!level.has(device)) level.set(device, []);
    level.get(device).push(row);
  }
  const build = (map, depth) => {
    const list = el("ul", depth === 0 ? { class: "tree" } : {});
    for (const key of [...map.keys()].sort()) {
      const value = map.get(key);
      const item = el("li", { "data-folder": key }, el("div", { class: "folder" }, key));
      item.append(Array.isArray(value) ? assetTable(sortByName(value)) : build(value, depth + 1));
      list.append(item);
    }
    return list;
  };
  $("tree").replaceChildren(build(root, 0));
}

function renderDevices(devices) {
  const list = $("devices");
  list.replaceChildren();
  for (const d of sortByName(devices)) {
    const facts = [d.status || "unknown"];
    if (d.paused) facts.push("paused");
    if (d.revoked) facts.push("revoked");
    list.append(el("li", { "data-device-id": d.id }, el("strong", {}, d.name || d.client_id || d.id),
      " — " + facts.join(", ") + (d.client_id ? " · " : ""), d.client_id ? el("span", { class: "mono" }, d.client_id) : null));
  }
  $("no-devices").hidden = devices.length > 0;
}

async function refresh() {
  try {
    const [projects, devices, assets] = await Promise.all([api("GET", "/projects"), api("GET", "/devices"), api("GET", "/assets")]);
    const project = (projects || []).find((p) => p.id === projectId);
    if (!project) {
      showMessage($("error"), "error", "No project with id “" + projectId + "” exists on this emulator.");
      $("project-title").textContent = "Unknown project";
      clearInterval(timer);
      return;
    }
    $("project-title").textContent = project.name;
    document.title = project.name + " — c2c-bench cloud";
    const mine = (devices || []).filter((d) => d.project_id === projectId);
    const ids = new Set(mine.flatMap((d) => [d.id, d.client_id]).filter(Boolean));
    const rows = (assets || []).filter((a) => (a.project_id ? a.project_id === projectId : ids.has(a.device_id)));
    const snapshot = JSON.stringify([mine, rows]);
    if (snapshot !== lastRendered) {
      lastRendered = snapshot;
      renderDevices(mine);
      renderTree(rows);
      $("no-assets").hidden = rows.length > 0;
    }
    showMessage($("error"), "", "");
    $("updated").textContent = rows.length + " asset(s) · updated " + new Date().toLocaleTimeString();
  } catch (err) {
    showMessage($("error"), "error", "Could not refresh: " + err.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  refresh();
  timer = setInterval(refresh, POLL_MS);
});

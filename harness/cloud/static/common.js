"use strict";
/* Shared helpers. Every string from the API reaches the DOM through textContent, never
   innerHTML, so hostile names (<script>, ../../x, unicode) render as text. */
const CONTROL = "/_bench/v1";
const SESSION = "/_bench/session";
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
let csrfToken = null;

/* The session's CSRF token (same-origin read: another origin's page cannot get it). */
async function csrf() {
  if (csrfToken) return csrfToken;
  const response = await fetch(SESSION, { cache: "no-store", credentials: "same-origin" });
  if (!response.ok) throw new ApiError(response.status, "Not signed in.");
  csrfToken = (await response.json()).csrf;
  return csrfToken;
}

/* Without a session the control API answers 401: offer the sign-in page, then come back. */
function askToSignIn() {
  const box = document.getElementById("signin");
  if (!box) return;
  const link = document.getElementById("signin-link");
  link.setAttribute("href", "/login?next=" + encodeURIComponent(location.pathname + location.search));
  box.hidden = false;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function errorText(status, body) {
  if (body && typeof body === "object") {
    if (Array.isArray(body.errors) && body.errors.length && body.errors[0].detail) {
      return String(body.errors[0].detail);
    }
    for (const key of ["message", "detail", "error_description", "error"]) {
      if (typeof body[key] === "string" && body[key]) return body[key];
    }
  }
  if (typeof body === "string" && body.trim()) return body.trim().slice(0, 300);
  return "HTTP " + status;
}

async function api(method, path, body) {
  const init = { method, headers: { "accept": "application/json" }, cache: "no-store", credentials: "same-origin" };
  if (UNSAFE.has(method)) {
    try { init.headers["x-c2c-csrf"] = await csrf(); } catch (err) {
      if (err.status === 401) askToSignIn();
      throw err;
    }
  }
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(CONTROL + path, init);
  } catch (err) {
    throw new ApiError(0, "Cannot reach the emulator's control API (" + err.message + ").");
  }
  const text = await response.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch (_) { data = text; } }
  if (response.status === 401) askToSignIn();
  if (!response.ok) throw new ApiError(response.status, errorText(response.status, data));
  return data;
}

/* el("td", {class: "x", "data-id": id}, "text", childNode, ...) */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function showMessage(box, kind, text) {
  box.replaceChildren();
  if (!text) { box.hidden = true; return; }
  box.hidden = false;
  box.className = "msg " + kind;
  box.textContent = text;
}

function formatBytes(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return "–";
  n = Number(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  const human = unit === 0 ? n + " B" : value.toFixed(value >= 100 ? 0 : 1) + " " + units[unit];
  return unit === 0 ? human : human + " (" + n.toLocaleString("en-US") + " B)";
}

function formatTime(seconds) {
  if (!seconds) return "–";
  const date = new Date(Number(seconds) * 1000);
  return Number.isNaN(date.getTime()) ? String(seconds) : date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function sortByName(items) {
  return items.slice().sort((a, b) => String(a.name).localeCompare(String(b.name)));
}

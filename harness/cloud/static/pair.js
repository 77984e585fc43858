"use strict";
/* Pairing page: look a user code up in /codes, pick or create a project, approve or deny. */
const $ = (id) => document.getElementById(id);
const state = { code: null, entry: null, timer: null, done: false, deciding: false };
const CODE_RE = /^[0-9]{6}$/;

function normaliseCode(raw) { return String(raw || "").replace(/[\s-]/g, ""); }

function describeState(entry) {
  const s = String(entry.state || "pending");
  if (s === "approved") return "Already authorized.";
  if (s === "denied") return "Denied; the device must request a new code.";
  if (s === "expired") return "Expired; ask the device for a new code.";
  if (s === "used" || s === "consumed") return "Already used by the device.";
  return "Waiting for your decision.";
}

function stopPolling() { if (state.timer) { clearInterval(state.timer); state.timer = null; } }

function hideSteps() { $("device-card").hidden = true; $("project-card").hidden = true; }

async function fetchCode(code) {
  const codes = await api("GET", "/codes");
  return (Array.isArray(codes) ? codes : []).find((c) => String(c.user_code) === code) || null;
}

function renderEntry(entry) {
  $("device-name").textContent = entry.name || "(unnamed device)";
  $("device-client").textContent = entry.client_id || "–";
  $("device-code").textContent = entry.user_code;
  $("device-expires").textContent = formatTime(entry.expires_at);
  $("device-state").textContent = describeState(entry);
  $("device-card").hidden = false;
  const pending = !["approved", "denied", "expired", "used", "consumed"].includes(String(entry.state || "pending"));
  $("project-card").hidden = !pending;
  $("authorize").disabled = !pending;
  $("deny").disabled = !pending;
}

async function lookup() {
  const status = $("code-status");
  state.done = false;
  stopPolling();
  hideSteps();
  showMessage($("result"), "", "");
  $("result-link").hidden = true;
  const code = normaliseCode($("code").value);
  if (!CODE_RE.test(code)) {
    showMessage(status, "error", "A pairing code is exactly six digits (0–9).");
    $("code").setAttribute("aria-invalid", "true");
    $("code").focus();
    return;
  }
  $("code").removeAttribute("aria-invalid");
  showMessage(status, "info", "Looking up code " + code + "…");
  try {
    const entry = await fetchCode(code);
    if (!entry) {
      showMessage(status, "error", "Code " + code + " is unknown or has expired. Ask the device for a new code.");
      return;
    }
    state.code = code;
    state.entry = entry;
    renderEntry(entry);
    if (String(entry.state || "pending") === "expired") {
      showMessage(status, "error", "Code " + code + " has expired. Ask the device for a new code.");
      return;
    }
    showMessage(status, "ok", "Found the device asking with code " + code + ".");
    await loadProjects();
    state.timer = setInterval(watchCode, 2000);
  } catch (err) {
    showMessage(status, "error", err.message);
  }
}

/* While the person decides, the code may expire: say so instead of failing on Authorize. */
async function watchCode() {
  if (!state.code || state.done || state.deciding) return;
  try {
    const code = state.code;
    const entry = await fetchCode(code);
    if (state.done || state.deciding || code !== state.code) return;  // answered meanwhile
    if (!entry || String(entry.state) === "expired") {
      stopPolling();
      hideSteps();
      showMessage($("code-status"), "error", "Code " + state.code + " expired while waiting. Ask the device for a new code.");
      return;
    }
    state.entry = entry;
    $("device-state").textContent = describeState(entry);
  } catch (_) { /* a transient failure; the next tick retries */ }
}

async function loadProjects(selectId) {
  const select = $("project");
  const projects = sortByName(await api("GET", "/projects") || []);
  const previous = selectId || select.value;
  select.replaceChildren();
  if (!projects.length) {
    select.append(el("option", { value: "", disabled: true, selected: true }, "No projects yet: create one below"));
  }
  for (const project of projects) {
    select.append(el("option", { value: project.id }, project.name));
  }
  if (previous && projects.some((p) => p.id === previous)) select.value = previous;
  $("authorize").disabled = !select.value;
}

async function createProject(event) {
  event.preventDefault();
  const input = $("new-project");
  const name = input.value.trim();
  if (!name) { showMessage($("result"), "error", "Give the new project a name."); input.focus(); return; }
  try {
    const project = await api("POST", "/projects", { name });
    input.value = "";
    await loadProjects(project.id);
    showMessage($("result"), "ok", "Created project “" + project.name + "”.");
  } catch (err) {
    showMessage($("result"), "error", "Could not create the project: " + err.message);
  }
}

function finish(kind, text, projectId) {
  state.done = true;
  stopPolling();
  $("project-card").hidden = true;
  showMessage($("result"), kind, text);
  if (projectId) {
    $("project-link").setAttribute("href", "/projects/" + encodeURIComponent(projectId));
    $("result-link").hidden = false;
  }
}

async function decide(approve) {
  const code = state.code;
  if (!code) return;
  const select = $("project");
  const projectId = select.value;
  if (approve && !projectId) { showMessage($("result"), "error", "Pick or create a project first."); return; }
  $("authorize").disabled = true;
  $("deny").disabled = true;
  state.deciding = true;
  try {
    if (approve) {
      await api("POST", "/codes/" + encodeURIComponent(code) + "/approve", { project_id: projectId });
      const projectName = select.options[select.selectedIndex].textContent;
      $("device-state").textContent = "Authorized.";
      finish("ok", "Authorized: “" + (state.entry.name || "the device") + "” now uploads to “" + projectName + "”.", projectId);
    } else {
      await api("POST", "/codes/" + encodeURIComponent(code) + "/deny");
      $("device-state").textContent = "Denied.";
      finish("info", "Denied: the device was not connected.", null);
    }
  } catch (err) {
    const expired = err.status === 404 || err.status === 410;
    showMessage($("result"), "error", (expired ? "Code " + code + " is unknown or has expired: " : "Failed: ") + err.message);
    $("authorize").disabled = false;
    $("deny").disabled = false;
  } finally {
    state.deciding = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("code-form").addEventListener("submit", (e) => { e.preventDefault(); lookup(); });
  $("create-form").addEventListener("submit", createProject);
  $("project").addEventListener("change", () => { $("authorize").disabled = !$("project").value; });
  $("authorize").addEventListener("click", () => decide(true));
  $("deny").addEventListener("click", () => decide(false));
  $("code").addEventListener("input", () => {
    if (CODE_RE.test(normaliseCode($("code").value)) && normaliseCode($("code").value) !== state.code) lookup();
  });
  if ($("code").value) lookup(); else $("code").focus();
});

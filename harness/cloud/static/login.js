"use strict";
/* Login: trade the bench token for an HttpOnly session cookie, then go back where we were. */
function nextPath() {
  const next = new URLSearchParams(location.search).get("next") || "/pair";
  /* Only a path on this origin: never "//host" or an absolute URL. */
  return /^\/(?![\/\\])/.test(next) ? next : "/pair";
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login-form");
  const input = document.getElementById("token");
  const status = document.getElementById("login-status");
  input.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) { showMessage(status, "error", "Paste the bench token."); return; }
    try {
      const response = await fetch(SESSION, {
        method: "POST", cache: "no-store", credentials: "same-origin",
        headers: { "content-type": "application/json", "accept": "application/json" },
        body: JSON.stringify({ token }),
      });
      input.value = "";
      if (!response.ok) {
        showMessage(status, "error", response.status === 401 ? "That is not this run's bench token." : "Sign-in failed (HTTP " + response.status + ").");
        return;
      }
      csrfToken = (await response.json()).csrf;
      showMessage(status, "ok", "Signed in.");
      location.assign(nextPath());
    } catch (err) {
      showMessage(status, "error", "Cannot reach the emulator (" + err.message + ").");
    }
  });
});

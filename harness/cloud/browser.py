"""A tiny headless-Chromium driver over the Chrome DevTools Protocol (CDP).

Why not selenium/playwright: both download drivers or browsers. Debian's chromium speaks CDP
over a websocket, and the `websockets` package is already a dependency, so driving the
pairing page "as a person would" costs no new packages and no network. The browser trusts
the emulator by pinning its server key (`--ignore-certificate-errors-spki-list`), not by
ignoring every certificate error.

    with Browser.launch(spki_pins=[spki_fingerprint(server_pem)]) as browser:
        page = browser.new_page()
        page.goto("https://127.0.0.1:8443/pair")
        page.type_text("#code", "123456")
        page.wait_for("document.querySelector('#device-card').hidden === false")
        page.screenshot(tmp_path / "pair.png")
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from hashlib import sha256
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from harness.children import spawn
from harness.errors import BenchFailure

__all__ = ["Browser", "BrowserError", "Page", "find_chromium", "spki_fingerprint"]

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"
_QUIET_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--password-store=basic",
    "--use-mock-keychain",
)


class BrowserError(BenchFailure):
    """The bench's browser could not start, navigate, or reach a DOM condition in time."""


def find_chromium() -> str | None:
    """Path of a Chromium-family browser on PATH ($C2C_CHROMIUM wins), or None."""
    override = os.environ.get("C2C_CHROMIUM")
    if override:
        return override if Path(override).exists() else shutil.which(override)
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def spki_fingerprint(cert_pem: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate: what Chromium pins."""
    cert = x509.load_pem_x509_certificate(Path(cert_pem).read_bytes())
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(sha256(spki).digest()).decode("ascii")


class _Channel:
    """One CDP websocket: numbered commands, events kept for later inspection."""

    def __init__(self, url: str, timeout: float) -> None:
        self._ids = itertools.count(1)
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._stack = contextlib.ExitStack()
        try:
            # Entered as a context manager: websockets >= 17 deprecates the bare call.
            self._ws: ClientConnection = self._stack.enter_context(
                connect(url, max_size=None, open_timeout=timeout, ping_interval=None, compression=None)
            )
        except (OSError, WebSocketException) as exc:
            raise BrowserError(f"cannot open the DevTools websocket {url}: {exc}") from exc

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float | None = None) -> dict[str, Any]:
        """Send one command and wait for its answer; events that arrive meanwhile are kept."""
        msg_id = next(self._ids)
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BrowserError(f"DevTools command {method} got no answer in time")
                message = json.loads(self._ws.recv(timeout=remaining))
                if message.get("id") == msg_id:
                    if "error" in message:
                        raise BrowserError(f"DevTools command {method} failed: {message['error']}")
                    result: dict[str, Any] = message.get("result", {})
                    return result
                if "method" in message:
                    self.events.append(message)
        except TimeoutError as exc:
            raise BrowserError(f"DevTools command {method} got no answer in time") from exc
        except WebSocketException as exc:
            raise BrowserError(f"the browser closed the DevTools connection during {method}: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.close()


class Page:
    """One browser tab. Conditions are JavaScript expressions polled until truthy or timeout."""

    def __init__(self, channel: _Channel, target_id: str) -> None:
        self._cdp = channel
        self.target_id = target_id
        self._cdp.call("Page.enable")
        self._cdp.call("Runtime.enable")
        self._cdp.call("Log.enable")

    def goto(self, url: str, timeout: float = 30.0) -> None:
        """Navigate and wait until the document has loaded (scripts ran, DOMContentLoaded fired).

        ERR_NETWORK_CHANGED is navigated again, as Chromium's own error page does: Chromium
        aborts a load whenever an interface comes or goes on the host, and a bench building
        its network namespaces alongside (packet links) makes them come and go."""
        deadline = time.monotonic() + timeout
        while True:
            result = self._cdp.call("Page.navigate", {"url": url}, timeout=timeout)
            error = result.get("errorText")
            if error != NETWORK_CHANGED or time.monotonic() > deadline:
                break
        if error:
            raise BrowserError(f"navigation to {url} failed: {error}")
        self.wait_for("document.readyState === 'complete'", timeout=timeout, what=f"{url} to load")

    def evaluate(self, expression: str) -> Any:
        """Value of a JavaScript expression (promises awaited), as JSON-compatible Python."""
        result = self._cdp.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"script failed in the page: {text}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 15.0, what: str | None = None, interval: float = 0.1) -> Any:
        """Poll `expression` until it is truthy; return its value. Raises BrowserError with the page's text.

        The value crosses as JSON, so a DOM node reads as `{}` (falsy): test nodes with `!!`.
        """
        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError as exc:  # mid-navigation the element or the context may be gone
                value, last_error = None, str(exc)
            if value:
                return value
            if time.monotonic() >= deadline:
                try:
                    shown = self.text()[:800]
                except BrowserError:
                    shown = "(unreadable)"
                hint = f" (last script error: {last_error})" if last_error else ""
                raise BrowserError(
                    f"timed out after {timeout:.0f}s waiting for {what or expression}{hint}; page shows: {shown!r}"
                )
            time.sleep(interval)

    def text(self, selector: str = "body") -> str:
        """Visible text of the first element matching `selector` ('' if none)."""
        sel = json.dumps(selector)
        return self.evaluate(f"(document.querySelector({sel}) || {{innerText: ''}}).innerText") or ""

    def wait_visible(self, selector: str, timeout: float = 15.0) -> None:
        sel = json.dumps(selector)
        expr = f"(() => {{ const e = document.querySelector({sel}); return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0; }})()"
        self.wait_for(expr, timeout=timeout, what=f"{selector} to be visible")

    def click(self, selector: str, timeout: float = 15.0) -> None:
        """A real mouse click at the element's centre, once it is visible and enabled."""
        self.wait_visible(selector, timeout)
        sel = json.dumps(selector)
        self.wait_for(f"!document.querySelector({sel}).disabled", timeout=timeout, what=f"{selector} to be enabled")
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({sel}); e.scrollIntoView({{block: 'center'}});"
            " const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            self._cdp.call(
                "Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}
            )

    def type_text(self, selector: str, text: str, timeout: float = 15.0) -> None:
        """Focus a field, clear it and type `text` as keyboard input (fires input events)."""
        self.wait_visible(selector, timeout)
        sel = json.dumps(selector)
        self.evaluate(f"(() => {{ const e = document.querySelector({sel}); e.focus(); e.select && e.select(); }})()")
        self._cdp.call("Input.insertText", {"text": text})

    def select_option(self, selector: str, label: str, timeout: float = 15.0) -> None:
        """Choose the <option> whose text is `label` and fire `change`, as a person picking it."""
        sel, lab = json.dumps(selector), json.dumps(label)
        self.wait_for(
            f"[...(document.querySelector({sel}) || {{options: []}}).options].some(o => o.textContent === {lab})",
            timeout=timeout,
            what=f"option {label!r} in {selector}",
        )
        self.evaluate(
            f"(() => {{ const s = document.querySelector({sel});"
            f" s.value = [...s.options].find(o => o.textContent === {lab}).value;"
            " s.dispatchEvent(new Event('change', {bubbles: true})); })()"
        )

    def sign_in(self, base_url: str, token_file: Path, timeout: float = 30.0) -> None:
        """Sign this browser in to the emulator as its operator would: the /login form.

        The token goes from its file to the page as keyboard input over DevTools; it is
        never put in a URL or a message. The session cookie then serves every tab.
        """
        token = Path(token_file).read_text(encoding="ascii").strip()
        self.goto(f"{base_url.rstrip('/')}/login?next=/", timeout=timeout)
        self.type_text("#token", token, timeout=timeout)
        self.click("#sign-in", timeout=timeout)
        self.wait_for("location.pathname === '/' && document.readyState === 'complete'",
                      timeout=timeout, what="the sign-in to land on the home page")

    def screenshot(self, path: Path) -> Path:
        """Save a full-page PNG screenshot."""
        data = self._cdp.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path = Path(path)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def errors(self) -> list[str]:
        """Script exceptions and console errors (incl. CSP violations) seen so far."""
        self._cdp.call("Runtime.evaluate", {"expression": "0"})  # flush pending events
        found: list[str] = []
        for event in self._cdp.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
            elif event["method"] == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(params["entry"].get("text", "console error"))
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        return found


class Browser:
    """A headless Chromium process in its own process group, with a throwaway profile."""

    def __init__(self, process: subprocess.Popen[bytes], profile: Path, ws_root: str, timeout: float) -> None:
        self.process = process
        self.profile = profile
        self._ws_root = ws_root
        self._timeout = timeout
        self._pages: list[_Channel] = []

    @classmethod
    def launch(
        cls,
        executable: str | None = None,
        *,
        spki_pins: Sequence[str] = (),
        ignore_certificate_errors: bool = False,
        window_size: tuple[int, int] = (1200, 1000),
        timeout: float = 30.0,
    ) -> Self:
        """Start Chromium and wait for its DevTools endpoint (DevToolsActivePort file)."""
        binary = executable or find_chromium()
        if not binary:
            raise BrowserError(
                "no Chromium found (looked for chromium, chromium-browser, google-chrome; set C2C_CHROMIUM). "
                "Install Debian's chromium: `make sysdeps` or `apt-get install -y chromium`."
            )
        profile = Path(tempfile.mkdtemp(prefix="c2c-chromium-"))
        args = [binary, *_QUIET_FLAGS, f"--user-data-dir={profile}", f"--window-size={window_size[0]},{window_size[1]}"]
        if spki_pins:
            args.append("--ignore-certificate-errors-spki-list=" + ",".join(spki_pins))
        if ignore_certificate_errors:
            args.append("--ignore-certificate-errors")
        args.append("about:blank")
        log = (profile / "chromium.log").open("wb")
        try:
            process = spawn(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            shutil.rmtree(profile, ignore_errors=True)
            raise BrowserError(f"cannot start the browser {binary}: {exc}") from exc
        finally:
            log.close()
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while True:
            if port_file.exists():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    return cls(process, profile, f"ws://127.0.0.1:{lines[0]}", timeout)
            if process.poll() is not None or time.monotonic() >= deadline:
                tail = (profile / "chromium.log").read_text(errors="replace")[-1500:]
                _kill_group(process)
                shutil.rmtree(profile, ignore_errors=True)
                raise BrowserError(f"{binary} did not open its DevTools port within {timeout:.0f}s; output:\n{tail}")
            time.sleep(0.05)

    def new_page(self) -> Page:
        """Open a fresh tab and connect to it."""
        version = json.loads(_http_get(self._ws_root.replace("ws://", "http://") + "/json/version", self._timeout))
        root = _Channel(version["webSocketDebuggerUrl"], self._timeout)
        try:
            target_id = root.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        finally:
            root.close()
        channel = _Channel(f"{self._ws_root}/devtools/page/{target_id}", self._timeout)
        self._pages.append(channel)
        return Page(channel, target_id)

    def close(self) -> None:
        """Stop the browser (its whole process group) and delete the profile."""
        for channel in self._pages:
            channel.close()
        _kill_group(self.process)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _http_get(url: str, timeout: float) -> str:
    """GET on the loopback DevTools HTTP endpoint (stdlib: no proxy, no TLS)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            text: str = response.read().decode("utf-8")
            return text
    except OSError as exc:
        raise BrowserError(f"DevTools endpoint {url} did not answer: {exc}") from exc


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Chromium forks renderers and helpers: end the whole group, then reap the leader."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

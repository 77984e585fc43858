"""The pairing page in a real headless Chromium: cross-site requests fail, hostile names are
inert (issue #17 points 2 and 3).

The attacker is a page on another origin of the same host (https://127.0.0.1:<other port>,
served with the emulator's own certificate): the same *site*, so a SameSite=Strict cookie
alone would not stop it; the Origin check, the CSRF token and JSON-only bodies do.
"""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.cloud.browser import Browser, Page, find_chromium, spki_fingerprint
from harness.cloud.runner import EmulatorProcess
from tests.harness.cloud.test_pairing_page import Device

pytestmark = pytest.mark.browser

HOSTILE_ASSETS = [
    "<script>window.__pwned=1</script>.mov",
    "<img src=x onerror=window.__pwned=2>.jpg",
    "../../etc/passwd",
    "..\\..\\boot.ini.wav",
    "A001\u202egnp.exe.mov",  # RTL override
    "café 日本語 🎬 \u200b.mp4",
]
REFUSED_ASSETS = ["nul\x00byte.mov", "é" * 2048 + ".mov"]  # NUL; 4 KB of unicode (> 255 chars)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    settings = {"device_code_interval": 1, "slow_down_increment": 1}
    with EmulatorProcess(tmp_path_factory.mktemp("cloud"), settings=settings) as process:
        yield process


@pytest.fixture(scope="module")
def browser(emulator: EmulatorProcess) -> Iterator[Browser]:
    chromium = find_chromium()
    if chromium is None:
        pytest.fail("chromium is not installed (make sysdeps): not skipped on purpose")
    server_pem = emulator.ca_bundle.parent / "server.pem"
    with Browser.launch(chromium, spki_pins=[spki_fingerprint(server_pem)]) as launched:
        launched.new_page().sign_in(emulator.api_url, emulator.token_file)  # the operator
        yield launched


@pytest.fixture
def page(browser: Browser) -> Page:
    return browser.new_page()


class Attacker:
    """An HTTPS site on another port of 127.0.0.1 serving one page (the attack)."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.html = b""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(owner.html)))
                self.end_headers()
                self.wfile.write(owner.html)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


ATTACK = """<!doctype html><title>cat pictures</title>
<iframe name="sink" id="sink"></iframe>
<form id="f" method="POST" target="sink" enctype="text/plain" action=%(approve)s>
<input name='{"project_id": %(pid)s, "x": "' value='"}'></form>
<script>
window.results = [];
(async () => {
  const body = JSON.stringify({project_id: %(pid)s});
  try { const r = await fetch(%(approve)s, {method: "POST", mode: "no-cors", credentials: "include",
        headers: {"content-type": "text/plain"}, body}); results.push("no-cors sent " + r.type); }
  catch (e) { results.push("no-cors blocked"); }
  try { const r = await fetch(%(approve)s, {method: "POST", credentials: "include",
        headers: {"content-type": "application/json"}, body}); results.push("cors " + r.status); }
  catch (e) { results.push("cors blocked"); }
  try { const r = await fetch(%(codes)s, {credentials: "include"}); results.push("read " + r.status); }
  catch (e) { results.push("read blocked"); }
  document.getElementById("sink").onload = () => { window.formDone = true; };
  document.getElementById("f").submit();
})();
</script>"""


def code_state(emulator: EmulatorProcess, user_code: str) -> str:
    assert emulator.control is not None
    return next(c["state"] for c in emulator.control.pending_codes() if c["user_code"] == user_code)


def test_cross_origin_approve_fails_and_the_operators_page_succeeds(
        emulator: EmulatorProcess, page: Page) -> None:
    control = emulator.control
    assert control is not None
    project = control.create_project(f"Target {uuid.uuid4().hex[:6]}")
    device = Device(emulator.api_url, emulator.ca_bundle, control.client_secret(), "VICTIM-CAM")
    certs = emulator.ca_bundle.parent
    attacker = Attacker(certs / "server.pem", certs / "server-key.pem")
    try:
        code = device.request_code()["user_code"]
        attacker.html = (ATTACK % {
            "approve": json.dumps(f"{emulator.api_url}/_bench/v1/codes/{code}/approve"),
            "codes": json.dumps(f"{emulator.api_url}/_bench/v1/codes"),
            "pid": json.dumps(project["id"]),
        }).encode()
        page.goto(attacker.url)
        page.wait_for("window.formDone === true && window.results.length === 3",
                      what="the attack page to finish its attempts")
        results = page.evaluate("window.results")
        assert "cors blocked" in results and "read blocked" in results, results
        assert code_state(emulator, code) == "pending"
        assert device.poll().json()["error"] == "authorization_pending"

        # The operator's own page, same browser, same session: approves.
        page.goto(f"{emulator.api_url}/pair?code={code}")
        page.select_option("#project", project["name"])
        page.click("#authorize")
        page.wait_for("document.querySelector('#result').textContent.includes('Authorized')")
        assert device.wait_for_token().status_code == 200
    finally:
        attacker.close()
        device.close()


def test_a_browser_without_a_session_cannot_approve(emulator: EmulatorProcess,
                                                    browser: Browser) -> None:
    """A fresh profile (no sign-in) on the real page: 401, and the page offers the sign-in."""
    chromium = find_chromium()
    assert chromium is not None
    control = emulator.control
    assert control is not None
    device = Device(emulator.api_url, emulator.ca_bundle, control.client_secret(), "CAM-2")
    server_pem = emulator.ca_bundle.parent / "server.pem"
    try:
        code = device.request_code()["user_code"]
        with Browser.launch(chromium, spki_pins=[spki_fingerprint(server_pem)]) as stranger:
            other = stranger.new_page()
            other.goto(f"{emulator.api_url}/pair?code={code}")
            other.wait_visible("#signin-link")
            assert other.evaluate("document.querySelector('#device-card').hidden")
        assert code_state(emulator, code) == "pending"
    finally:
        device.close()


def test_hostile_names_are_stored_exactly_shown_as_text_and_never_paths(
        emulator: EmulatorProcess, page: Page) -> None:
    control = emulator.control
    assert control is not None
    project = control.create_project("<img src=x onerror=window.__pwned=3> \u202eProj")
    device_name = "<script>window.__pwned=4</script>\u202eCAM"
    device = Device(emulator.api_url, emulator.ca_bundle, control.client_secret(), device_name)
    try:
        code = device.request_code()["user_code"]
        control.approve(code, project["id"])
        assert device.wait_for_token().status_code == 200
        ids = {name: device.upload(name, b"payload " + name.encode()) for name in HOSTILE_ASSETS}
        headers = {"authorization": f"Bearer {device._token}"}
        for name in REFUSED_ASSETS:
            answer = device.http.post(f"{emulator.api_url}/v2/devices/assets", headers=headers,
                                      json={"name": name, "filetype": "video/quicktime",
                                            "filesize": 1, "offset": 0})
            assert 400 <= answer.status_code < 500, (name[:20], answer.text)

        ledger = {row["asset_id"]: row for row in control.ledger()}
        for name, asset_id in ids.items():
            assert ledger[asset_id]["name"] == name  # byte-exact
        assert not any(r["name"] in REFUSED_ASSETS for r in ledger.values())
        devices = [d for d in control.devices() if d["client_id"] == device.client_id]
        assert devices[0]["name"] == device_name

        # Never a path on disk: no file or folder under the data dir carries a name.
        on_disk = [str(p.relative_to(emulator.data_dir)) for p in emulator.data_dir.rglob("*")]
        for needle in ("passwd", "boot.ini", "<", "\u202e", "script", "CAM", "Proj"):
            assert not any(needle in p for p in on_disk), needle
        assert not (emulator.data_dir.parent / "etc").exists()

        # Every page shows them as text; no script of theirs runs.
        page.goto(f"{emulator.api_url}/projects/{project['id']}")
        for name, asset_id in ids.items():
            cell = f"document.querySelector('tr[data-asset-id={json.dumps(asset_id)}] .asset-name')"
            page.wait_for(f"!!{cell}", what=f"asset {asset_id}")
            assert page.evaluate(f"{cell}.textContent") == name
        assert page.evaluate("document.querySelector('#project-title').textContent") == project["name"]
        shown = f"[...document.querySelectorAll('#devices strong')].some(e => e.textContent === {json.dumps(device_name)})"
        page.wait_for(shown, what="the hostile device name")
        inert = "window.__pwned === undefined && document.querySelectorAll('main script, main img').length === 0"
        assert page.evaluate(inert)
        page.goto(f"{emulator.api_url}/")
        page.wait_for(f"document.body.textContent.includes({json.dumps(project['name'])})")
        assert page.evaluate(inert)
        assert page.errors() == []
    finally:
        device.close()

"""The person's side: pairing page and project view, through a real headless Chromium.

The browser tests run the whole stack: the emulator as its own process over real TLS (the
browser pins the emulator's server key), a device speaking the C2C API with httpx, and
Debian's chromium driven over the DevTools protocol. Every wait is on a DOM condition.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import os
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from harness.cloud.browser import Browser, BrowserError, Page, find_chromium, spki_fingerprint
from harness.cloud.pages import page_routes
from harness.errors import BenchFailure

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HOSTILE_SCRIPT = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>.mov"


# --- page routes without a browser -----------------------------------------------------------


class PagesClient:
    """Calls the page routes in-process (httpx's ASGI transport), without a server or browser."""

    def __init__(self) -> None:
        self.app = Starlette(routes=page_routes())

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="https://cloud.test") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


@pytest.fixture(scope="module")
def pages() -> PagesClient:
    return PagesClient()


@pytest.mark.parametrize("path", ["/", "/pair", "/pair?code=123456", "/projects", "/projects/abc", "/docs",
                                  "/login"])
def test_pages_are_self_contained_html_with_strict_csp(pages: PagesClient, path: str) -> None:
    answer = pages.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    csp = answer.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "unsafe-inline" not in csp
    assert answer.headers["referrer-policy"] == "no-referrer"  # a code in the URL never leaks
    body = answer.text
    # No external assets: nothing is loaded from another origin, no stylesheet or script file.
    assert "http://" not in body and "https://" not in body
    assert "<script src" not in body and 'rel="stylesheet"' not in body
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert body.count(f'nonce="{nonce}"') == 2  # the inline <style> and <script>, nothing else


def test_each_response_gets_a_fresh_nonce(pages: PagesClient) -> None:
    first = pages.get("/pair").headers["content-security-policy"]
    second = pages.get("/pair").headers["content-security-policy"]
    assert first != second


def test_verification_uri_complete_prefills_the_code(pages: PagesClient) -> None:
    body = pages.get("/pair", params={"code": "042913"}).text
    assert 'value="042913"' in body


def test_hostile_code_parameter_is_escaped(pages: PagesClient) -> None:
    hostile = '"><script>alert(1)</script>'
    body = pages.get("/pair", params={"code": hostile}).text
    assert "<script>alert" not in body
    # Cut to 7 characters and escaped; the page then flags it as not a six-digit code.
    assert f'value="{html.escape(hostile[:7], quote=True)}"' in body


def test_projects_slash_redirects(pages: PagesClient) -> None:
    answer = pages.get("/projects/", follow_redirects=False)
    assert answer.status_code == 308 and answer.headers["location"] == "/projects"


def test_unknown_methods_are_refused(pages: PagesClient) -> None:
    assert pages.post("/pair", data={"code": "123456"}).status_code == 405


# --- the real stack: emulator process, device over TLS, chromium ----------------------------


class Device:
    """A minimal C2C device over real TLS: pairing and one basic upload."""

    def __init__(self, api_url: str, ca_bundle: Path, secret: str, name: str) -> None:
        self.api_url = api_url
        self.client_id = f"PAGE-TEST-{uuid.uuid4().hex[:10]}"
        self.name = name
        self._secret = secret
        self._device_code = ""
        self._token = ""
        self.interval = 1
        self.http = httpx.Client(
            verify=ssl.create_default_context(cafile=str(ca_bundle)),
            headers={"x-client-version": "1.4.0"},
            timeout=30.0,
        )

    def request_code(self) -> dict[str, Any]:
        form = {"client_id": self.client_id, "client_secret": self._secret,
                "scope": "asset_create offline", "name": self.name}
        answer = self.http.post(f"{self.api_url}/v2/auth/device/code", data=form,
                                headers={"x-client-platypus-enabled": "true"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        self._device_code = body["device_code"]
        self.interval = body["interval"]
        return body

    def poll(self) -> httpx.Response:
        form = {"grant_type": DEVICE_GRANT, "client_id": self.client_id,
                "client_secret": self._secret, "device_code": self._device_code}
        answer = self.http.post(f"{self.api_url}/v2/auth/token", data=form)
        if answer.status_code == 200:
            self._token = answer.json()["access_token"]
        return answer

    def wait_for_token(self, timeout: float = 30.0) -> httpx.Response:
        """Poll at the pace the cloud asks for (interval, slowed by slow_down) until answered."""
        interval = float(self.interval)
        deadline = time.monotonic() + timeout
        while True:
            answer = self.poll()
            error = answer.json().get("error") if answer.status_code == 400 else None
            if error not in ("authorization_pending", "slow_down") or time.monotonic() > deadline:
                return answer
            if error == "slow_down":
                interval += 1
            threading.Event().wait(interval)  # the protocol's own pacing, not a synchronisation

    def upload(self, name: str, data: bytes, filetype: str = "application/octet-stream") -> str:
        headers = {"authorization": f"Bearer {self._token}"}
        body = {"name": name, "filetype": filetype, "filesize": len(data), "offset": 0}
        created = self.http.post(f"{self.api_url}/v2/devices/assets", json=body, headers=headers)
        assert created.status_code in (200, 201), created.text
        asset = created.json()
        urls = asset["upload_urls"]
        chunk = -(-len(data) // len(urls)) if data else 0
        for index, url in enumerate(urls):
            part = data[index * chunk:(index + 1) * chunk]
            put = self.http.put(url, content=part, headers={"content-type": filetype, "x-amz-acl": "private"})
            assert put.status_code == 200, put.text
        return asset["id"]

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from harness.cloud.runner import EmulatorProcess

    settings = {"device_code_interval": 1, "slow_down_increment": 1}
    with EmulatorProcess(tmp_path_factory.mktemp("cloud"), settings=settings) as process:
        yield process
        process.control.close()  # an idle keep-alive connection would delay the graceful stop


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found is None:
        pytest.fail(
            "chromium is not installed, so the pairing page cannot be tested in a browser: "
            "run `make sysdeps` (or `apt-get install -y chromium`) — not skipped on purpose"
        )
    return found


@pytest.fixture(scope="module")
def browser(emulator: Any, chromium: str) -> Iterator[Browser]:
    server_pem = Path(emulator.ca_bundle).parent / "server.pem"
    with Browser.launch(chromium, spki_pins=[spki_fingerprint(server_pem)]) as launched:
        launched.new_page().sign_in(emulator.api_url, emulator.token_file)  # the operator's session
        yield launched


@pytest.fixture
def page(browser: Browser) -> Page:
    return browser.new_page()


def make_device(emulator: Any, name: str) -> Device:
    return Device(emulator.api_url, Path(emulator.ca_bundle), emulator.control.client_secret(), name)


def js(value: str) -> str:
    return json.dumps(value)


@pytest.mark.browser
def test_person_pairs_device_and_sees_its_upload(emulator: Any, page: Page, tmp_path: Path) -> None:
    control = emulator.control
    project_name = f"Feature film {uuid.uuid4().hex[:6]}"
    device = make_device(emulator, "ACME-CAM <b>SN1</b>")
    try:
        code = device.request_code()
        assert code["verification_uri"] == f"{emulator.api_url}/pair"
        assert device.poll().json()["error"] == "authorization_pending"

        # The person follows verification_uri and types the code the device shows.
        page.goto(code["verification_uri"])
        # Accessible basics: a language, every field labelled, every button named, focus on the code.
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.evaluate("[...document.querySelectorAll('input, select')].every(e => e.labels.length > 0)")
        assert page.evaluate("[...document.querySelectorAll('button')].every(b => b.textContent.trim())")
        assert page.evaluate("document.activeElement.id") == "code"
        page.type_text("#code", code["user_code"])
        page.wait_visible("#device-card")
        assert page.text("#device-name") == "ACME-CAM <b>SN1</b>"  # shown as text, not markup
        assert page.text("#device-client") == device.client_id

        # Creates a project from the page, picks it and authorizes.
        page.type_text("#new-project", project_name)
        page.click("#create-project")
        page.wait_for(f"document.querySelector('#project').selectedOptions[0]?.textContent === {js(project_name)}",
                      what="the new project to be selected")
        page.screenshot(tmp_path / "pair-before-authorize.png")
        page.click("#authorize")
        page.wait_visible("#result-link")
        assert "Authorized" in page.text("#result")

        # The device's next poll gets tokens; the device is now in that project.
        polled = device.wait_for_token()
        assert polled.status_code == 200, polled.text
        project_id = next(d["project_id"] for d in control.devices() if d["client_id"] == device.client_id)

        # Follow the link to the project view, then upload while it is open: it refreshes itself.
        page.click("#project-link")
        page.wait_for(f"location.pathname === {js('/projects/' + project_id)} && document.readyState === 'complete'")
        page.wait_for(f"document.querySelector('#project-title').textContent === {js(project_name)}")
        data = os.urandom(300_001)
        asset_id = device.upload("A001_C002_0101AB.mov", data, "video/quicktime")
        hostile_id = device.upload(HOSTILE_SCRIPT, b"<html>not markup</html>")
        traversal_id = device.upload("../../x.bin", b"x")

        row = f"document.querySelector('tr[data-asset-id={js(asset_id)}]')"
        page.wait_for(f"{row}?.querySelector('.asset-state').textContent === 'complete'",
                      timeout=20, what="the uploaded asset to show as complete")
        assert page.evaluate(f"{row}.querySelector('.asset-sha256').textContent") == hashlib.sha256(data).hexdigest()
        assert page.evaluate(f"{row}.querySelector('.asset-size').dataset.bytes") == str(len(data))
        assert "300,001 B" in page.evaluate(f"{row}.querySelector('.asset-size').textContent")

        # The tree: Cloud Devices / <date> / <type> / <device> / asset.
        folders = page.evaluate(
            f"(() => {{ const out = []; let n = {row}.closest('li');"
            " while (n) { out.unshift(n.dataset.folder); n = n.parentElement.closest('li'); } return out; })()"
        )
        tree_path = next(a["tree_path"] for a in control.assets() if a["asset_id"] == asset_id)
        assert folders[0] == "Cloud Devices"
        assert "/".join([*folders, "A001_C002_0101AB.mov"]) == tree_path

        # Hostile names render as text: no script ran, no element was injected, no CSP violation.
        for hostile, expected in ((hostile_id, HOSTILE_SCRIPT), (traversal_id, None)):
            page.wait_visible(f"tr[data-asset-id={js(hostile)}] .asset-name")
            cell = f"document.querySelector('tr[data-asset-id={js(hostile)}] .asset-name')"
            shown = page.evaluate(f"{cell}.textContent")
            stored = next(a["name"] for a in control.assets() if a["asset_id"] == hostile)
            assert shown == stored and (expected is None or shown == expected)
        assert page.evaluate("window.__pwned === undefined")
        assert page.evaluate("document.querySelectorAll('main script, main img').length") == 0
        assert page.errors() == []
        shot = page.screenshot(tmp_path / "project-view.png")
        assert shot.stat().st_size > 10_000
    finally:
        device.close()


@pytest.mark.browser
def test_unknown_malformed_and_expired_codes_are_explained(emulator: Any, page: Page) -> None:
    base = emulator.api_url
    live = {c["user_code"] for c in emulator.control.pending_codes()}
    unknown = next(f"{n:06d}" for n in range(1000, 999999) if f"{n:06d}" not in live)
    page.goto(f"{base}/pair?code={unknown}")  # verification_uri_complete form, pre-filled
    page.wait_for(f"document.querySelector('#code-status').textContent.includes({js(unknown + ' is unknown or has expired')})")
    assert page.evaluate("document.querySelector('#device-card').hidden")

    page.goto(f"{base}/pair")
    page.type_text("#code", "12ab")
    page.click("#lookup")
    page.wait_for("document.querySelector('#code-status').textContent.includes('exactly six digits')")
    assert page.evaluate("document.querySelector('#code').getAttribute('aria-invalid')") == "true"

    # A real code that expires while the person looks at it.
    device = make_device(emulator, "EXPIRING-CAM")
    try:
        code = device.request_code()
        page.goto(code["verification_uri_complete"])
        page.wait_visible("#authorize")
        emulator.control.advance_clock(code["expires_in"] + 1)
        page.wait_for("document.querySelector('#code-status').textContent.includes('expired while waiting')",
                      timeout=15)
        assert page.evaluate("document.querySelector('#project-card').hidden")
        assert device.wait_for_token().json()["error"] == "expired_token"
    finally:
        device.close()


@pytest.mark.browser
def test_person_denies_a_device(emulator: Any, page: Page) -> None:
    device = make_device(emulator, "UNKNOWN-RECORDER")
    try:
        code = device.request_code()
        page.goto(code["verification_uri_complete"])
        page.wait_for(f"document.querySelector('#device-name').textContent === {js('UNKNOWN-RECORDER')}")
        page.click("#deny")
        page.wait_for("document.querySelector('#result').textContent.includes('Denied')")
        answer = device.wait_for_token()
        assert answer.status_code == 400 and answer.json()["error"] == "access_denied"
        assert all(d["client_id"] != device.client_id for d in emulator.control.devices())
    finally:
        device.close()


@pytest.mark.browser
def test_home_lists_projects_and_unknown_project_is_explained(emulator: Any, page: Page) -> None:
    project = emulator.control.create_project("<i>Commercial</i> & friends")
    page.goto(f"{emulator.api_url}/")
    page.wait_visible(f"li[data-project-id={js(project['id'])}] a")
    link = f"document.querySelector('li[data-project-id={js(project['id'])}] a')"
    assert page.evaluate(f"{link}.textContent") == "<i>Commercial</i> & friends"
    page.click(f"li[data-project-id={js(project['id'])}] a")
    page.wait_for(f"document.querySelector('#project-title').textContent === {js(project['name'])}")
    assert page.evaluate("document.querySelector('#no-assets').hidden") is False

    page.goto(f"{emulator.api_url}/projects/{uuid.uuid4()}")
    page.wait_for("document.querySelector('#error').textContent.includes('No project with id')")

    # The API docs link renders the control API's own schema.
    page.click("a[href='/docs']")
    approve = "[...document.querySelectorAll('tr[data-endpoint]')].map(r => r.dataset.endpoint)"
    endpoints = page.wait_for(f"(() => {{ const e = {approve}; return e.length ? e : null; }})()",
                              what="the endpoint table")
    assert any(e.startswith("POST ") and e.endswith("/codes/{user_code}/approve") for e in endpoints)
    assert page.errors() == []


@pytest.mark.browser
def test_browser_refuses_the_emulator_without_the_pin(emulator: Any, chromium: str) -> None:
    """The TLS is real: only the pinned server key makes Chromium accept the emulator."""
    with Browser.launch(chromium) as unpinned, pytest.raises(BrowserError, match="ERR_CERT"):
        unpinned.new_page().goto(f"{emulator.api_url}/pair", timeout=15)


def test_missing_chromium_is_a_clear_bench_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("C2C_CHROMIUM", str(tmp_path / "no-such-chromium"))
    assert find_chromium() is None
    with pytest.raises(BrowserError, match="make sysdeps") as raised:
        Browser.launch()
    assert isinstance(raised.value, BenchFailure)  # the bench's fault: verdict "error", not "fail"


def test_unstartable_browser_is_a_clear_bench_error(tmp_path: Path) -> None:
    with pytest.raises(BrowserError, match="cannot start the browser"):
        Browser.launch(str(tmp_path / "not-a-browser"))

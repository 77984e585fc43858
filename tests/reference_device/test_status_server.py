"""The status/control port through real HTTP on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from reference_device.status_server import BadRequest, StatusServer, validate_action
from tests.reference_device.fakes import FakeEngine


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def server(engine: FakeEngine) -> Iterator[StatusServer]:
    with StatusServer(engine, port=0) as srv:
        yield srv


@pytest.fixture
def client(server: StatusServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as c:
        yield c


def test_status_json_is_the_snapshot_without_secrets(client: httpx.Client) -> None:
    r = client.get("/status.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    data = r.json()
    assert data["schema"] == "c2c-status/1"
    assert data["pairing"]["user_code"] == "482913"
    assert data["queue"]["remaining_count"] == 3
    assert "client_secret" not in data
    assert "access_token" not in data["token"]
    assert "SECRET" not in r.text


def test_page_shows_status_and_escapes_hostile_names(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "482 913" in html  # the code, big
    assert "<svg" in html  # the QR code inline
    assert 'href="https://127.0.0.1:8443/pair?code=482913"' in html
    assert "Night Shoot" in html
    assert "A001_C002.mov" in html
    assert '<progress max="1000" value="500">' in html
    # hostile name, reason and id are escaped, never markup
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;.mov" in html
    assert "<b>broken</b>" not in html and "&lt;b&gt;broken&lt;/b&gt;" in html
    assert "<img src=x>" not in html
    # exactly one script element: ours, with the CSP nonce
    assert html.count("<script") == 1
    nonce = r.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in html
    assert "SECRET" not in html


def test_javascript_links_are_not_clickable(engine: FakeEngine, client: httpx.Client) -> None:
    engine.state["pairing"]["verification_uri_complete"] = "javascript:alert(1)"
    engine.state["pairing"]["verification_uri"] = "javascript:alert(1)"
    html = client.get("/panel").text
    assert 'href="javascript' not in html


def test_qr_svg_endpoint(engine: FakeEngine, client: httpx.Client) -> None:
    r = client.get("/qr.svg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    assert r.text.startswith("<svg")
    engine.state["pairing"]["state"] = "paired"
    r = client.get("/qr.svg")
    assert r.status_code == 404 and "not showing a code" in r.json()["error"]


@pytest.mark.parametrize(
    ("action", "body", "expected"),
    [
        ("mode", {"mode": "manual"}, {"mode": "manual"}),
        ("upload", {"ids": ["f1", "f2", "f1"]}, {"ids": ["f1", "f2"]}),
        ("upload", {"all": True}, {"all": True}),
        ("cancel", {"ids": ["f1"]}, {"ids": ["f1"]}),
        ("cancel", {"all": True}, {"all": True}),
        ("retry", {"all": True}, {"all": True}),
        ("priority", {"id": "f1", "priority": 5}, {"id": "f1", "priority": 5}),
        ("priority", {"filetype": "MOV", "priority": 9}, {"filetype": ".mov", "priority": 9}),
        ("pairing/start", {}, {}),
        ("pairing/cancel", None, {}),
        ("logout", {}, {}),
    ],
)
def test_actions_reach_the_engine(
    engine: FakeEngine, client: httpx.Client, action: str, body: object, expected: dict
) -> None:
    if body is None:
        r = client.post(f"/api/{action}", headers={"Content-Type": "application/json"})
    else:
        r = client.post(f"/api/{action}", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True
    assert engine.calls == [(action, expected)]


def test_mode_change_shows_in_status(client: httpx.Client) -> None:
    assert client.post("/api/mode", json={"mode": "manual"}).status_code == 200
    assert client.get("/status.json").json()["mode"] == "manual"


@pytest.mark.parametrize(
    ("action", "content", "status", "needle"),
    [
        ("mode", b"{not json", 400, "not valid JSON"),
        ("mode", b'{"mode": "turbo"}', 400, "'mode' must be"),
        ("mode", b"[1,2]", 400, "must be an object"),
        ("upload", b"{}", 400, "exactly one of 'ids'"),
        ("upload", b'{"ids": []}', 400, "non-empty list"),
        ("upload", b'{"ids": [1]}', 400, "non-empty string"),
        ("upload", b'{"all": false}', 400, "'all' must be true"),
        ("cancel", b'{"ids": ["a"], "all": true}', 400, "exactly one"),
        ("priority", b'{"id": "f1", "priority": "high"}', 400, "must be an integer"),
        ("priority", b'{"priority": 3}', 400, "exactly one of 'id'"),
        ("logout", b'{"now": true}', 400, "unknown field(s) 'now'"),
        ("explode", b"{}", 404, "unknown action 'explode'"),
    ],
)
def test_bad_requests_are_refused_by_name(
    engine: FakeEngine, client: httpx.Client, action: str, content: bytes, status: int, needle: str
) -> None:
    r = client.post(f"/api/{action}", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == status
    body = r.json()
    assert body["ok"] is False and needle in body["error"]
    assert engine.calls == []


def test_cross_site_requests_are_refused(engine: FakeEngine, client: httpx.Client) -> None:
    # a form post (no JSON content type) cannot trigger actions
    r = client.post("/api/logout", content=b"", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    r = client.post("/api/logout", json={}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    r = client.get("/status.json", headers={"Host": "evil.example:80"})
    assert r.status_code == 403 and "loopback" in r.json()["error"]
    assert engine.calls == []


def test_too_large_body(client: httpx.Client) -> None:
    r = client.post("/api/upload", content=b"x" * (70 * 1024),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_engine_errors_become_clear_answers(engine: FakeEngine, client: httpx.Client) -> None:
    engine.fail_with = KeyError("no file with id 'zz'")
    r = client.post("/api/upload", json={"ids": ["zz"]})
    assert r.status_code == 404 and "no file with id 'zz'" in r.json()["error"]
    engine.fail_with = ValueError("cannot retry a file that is done")
    r = client.post("/api/retry", json={"ids": ["f1"]})
    assert r.status_code == 400 and "cannot retry" in r.json()["error"]
    engine.fail_with = RuntimeError("token=SECRET")
    r = client.post("/api/logout", json={})
    assert r.status_code == 500 and "SECRET" not in r.text and "RuntimeError" in r.text


def test_unknown_page_and_health(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"ok": True}
    r = client.get("/nope")
    assert r.status_code == 404 and "/status.json" in r.json()["error"]


def test_server_refuses_non_loopback_host(engine: FakeEngine) -> None:
    with pytest.raises(ValueError, match="not loopback"):
        StatusServer(engine, host="0.0.0.0")


def test_validate_action_unit() -> None:
    assert validate_action("priority", {"filetype": "wav", "priority": -3}) == {
        "filetype": ".wav", "priority": -3}
    with pytest.raises(BadRequest, match="'priority' must be an integer"):
        validate_action("priority", {"id": "a", "priority": True})
    assert json.dumps(validate_action("retry", {"ids": ["a"]})) == '{"ids": ["a"]}'


@pytest.mark.browser
def test_status_page_in_a_real_browser(engine: FakeEngine, server: StatusServer) -> None:
    """Chromium runs the page under its CSP: buttons post actions, refresh swaps the panel,
    and a hostile file name never runs as script."""
    from harness.cloud.browser import Browser, find_chromium

    if find_chromium() is None:
        pytest.fail("chromium is not installed: run `make sysdeps` (not skipped on purpose)")
    engine.state["files"][1]["name"] = '<img src=x onerror="window.__pwned=1">.mov'
    with Browser.launch() as browser:
        page = browser.new_page()
        page.goto(server.url + "/")
        assert "482 913" in page.text("#user-code")
        page.click('button[data-action="mode"]')
        page.wait_for("document.querySelector('#mode').textContent === 'manual'",
                      what="the panel to refresh with the new mode")
        page.click('input[data-select][value="f1"]')
        page.click('button[data-action="upload"][data-selection]')
        page.wait_for("document.querySelector('#msg').textContent === 'upload: ok'")
        page.type_text("#ft", ".wav")
        page.type_text("#ftp", "70")
        page.click('#ft-form button[type="submit"]')
        page.wait_for("document.querySelector('#msg').textContent === 'priority: ok'")
        # a refused action shows the device's reason
        engine.fail_with = ValueError("nothing to retry")
        page.click('button[data-action="retry"][data-body="{&quot;all&quot;: true}"]'.replace(
            "&quot;", '\\"'))
        page.wait_for("document.querySelector('#msg').textContent.includes('nothing to retry')")
        assert page.evaluate("window.__pwned === undefined")
        errors = page.errors()  # the one refused POST is the only thing the console may show
        assert [e for e in errors if "status of 400" not in e] == [], errors
    assert ("mode", {"mode": "manual"}) in engine.calls
    assert ("upload", {"ids": ["f1"]}) in engine.calls
    assert ("priority", {"filetype": ".wav", "priority": 70}) in engine.calls
    assert ("retry", {"all": True}) in engine.calls


def test_chunked_body_is_refused_and_connection_stays_sane(
    engine: FakeEngine, client: httpx.Client
) -> None:
    def gen():  # type: ignore[no-untyped-def]
        yield b'{"mode": "manual"}'

    r = client.post("/api/mode", content=gen(), headers={"Content-Type": "application/json"})
    assert r.status_code == 411 and "Content-Length" in r.json()["error"]
    assert client.get("/status.json").status_code == 200
    assert engine.calls == []

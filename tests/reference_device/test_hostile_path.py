"""The reference device behind a hostile path: mitmproxy in front of the real emulator answers
in the cloud's place (a captive portal's HTML 200, empty and truncated JSON, a 50 MB body,
upload URLs that cannot work, a /me without a project) and then lets the real answers through.
No file is failed for good, nothing is re-paired, no thread dies, the log names what happened.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reference_device.config import load_config
from reference_device.engine import Engine
from reference_device.testing import write_config
from tests.reference_device.conftest import approve_pending, device_config, sha256
from tests.reference_device.test_engine_faults import complete_rows, file_state
from tests.waiting import wait_until

mitm_http = pytest.importorskip("mitmproxy.http")
from harness.faults.http.runner import MitmProxy  # noqa: E402


class Garbler:
    """mitmproxy addon. `answer` rules reply in the cloud's place (the request never reaches
    it, as with a captive portal); `rewrite` rules change the cloud's real JSON answer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: list[dict[str, Any]] = []
        self.rewrites: list[dict[str, Any]] = []
        self.hits: dict[str, int] = {}

    def answer(self, method: str, path: str, status: int, body: bytes, ctype: str, count: int | None) -> None:
        with self.lock:
            self.answers.append({"method": method, "path": re.compile(path), "status": status,
                                 "body": body, "ctype": ctype, "count": count})

    def rewrite(self, method: str, path: str, fn: Any, count: int | None) -> None:
        with self.lock:
            self.rewrites.append({"method": method, "path": re.compile(path), "fn": fn, "count": count})

    def clear(self) -> None:
        with self.lock:
            self.answers.clear()
            self.rewrites.clear()

    def _take(self, rules: list[dict[str, Any]], flow: Any) -> dict[str, Any] | None:
        with self.lock:
            key = f"{flow.request.method} {flow.request.path.split('?')[0]}"
            self.hits[key] = self.hits.get(key, 0) + 1
            for rule in rules:
                if rule["method"] == flow.request.method and rule["path"].search(flow.request.path) and (
                    rule["count"] is None or rule["count"] > 0
                ):
                    if rule["count"] is not None:
                        rule["count"] -= 1
                    return rule
        return None

    def request(self, flow: Any) -> None:
        rule = self._take(self.answers, flow)
        if rule is not None:
            flow.response = mitm_http.Response.make(rule["status"], rule["body"], {"content-type": rule["ctype"]})

    def response(self, flow: Any) -> None:
        with self.lock:
            rules = [r for r in self.rewrites if r["method"] == flow.request.method
                     and r["path"].search(flow.request.path) and (r["count"] is None or r["count"] > 0)]
            rule = rules[0] if rules else None
            if rule is not None and rule["count"] is not None:
                rule["count"] -= 1
        if rule is not None and flow.response is not None and flow.response.status_code == 200:
            body = json.loads(flow.response.content)
            flow.response.content = json.dumps(rule["fn"](body)).encode()


@pytest.fixture(scope="module")
def path(cloud: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MitmProxy, Garbler]]:
    garbler = Garbler()
    proxy = MitmProxy(f"reverse:{cloud.api_url}@127.0.0.1:0", [garbler], tmp_path_factory.mktemp("mitm"),
                      ssl_verify_upstream_trusted_ca=str(cloud.ca_bundle), keep_host_header=True)
    proxy.start()
    try:
        yield proxy, garbler
    finally:
        proxy.stop()


@pytest.fixture
def garbler(path: tuple[MitmProxy, Garbler]) -> Iterator[Garbler]:
    path[1].clear()
    path[1].hits.clear()
    yield path[1]
    path[1].clear()


def hostile_engine(cloud: Any, control: Any, proxy: MitmProxy, tmp_path: Path, **extra: Any) -> Engine:
    values = device_config(cloud, tmp_path, **extra)
    values.update(api_url=proxy.url, ca_bundle=str(proxy.ca_cert), websocket=False)
    cfg = load_config(write_config(tmp_path / "device.toml", values),
                      env={"C2C_CLIENT_SECRET": control.client_secret()})
    return Engine(cfg)


def pair_through(engine: Engine, control: Any, wait_project: bool = True) -> dict[str, Any]:
    project: dict[str, Any] = control.create_project("Hostile")
    wait_until(lambda: engine.snapshot()["pairing"]["state"] == "showing_code", 20, "code shown")
    approve_pending(control, project["id"])
    wait_until(lambda: engine.snapshot()["pairing"]["state"] == "paired", 20, "paired")
    if wait_project:
        wait_until(lambda: engine.snapshot()["project"]["id"] == project["id"], 20, "project known")
    return project


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info and r.levelno >= logging.INFO]
    assert not bad, [r.getMessage() for r in bad]


def _http_urls(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "upload_urls": [u.replace("https://", "http://", 1) for u in body["upload_urls"]]}


def _dead_port_urls(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "upload_urls": [re.sub(r"^https://127\.0\.0\.1:\d+", "https://127.0.0.1:1", u)
                                    for u in body["upload_urls"]]}


ASSET = r"^/v2/devices/assets$"
PORTAL = (b"<html><body>Hotel Wi-Fi: please log in</body></html>", "text/html")
BAD_ASSET_ANSWERS: dict[str, tuple[Callable[[Garbler], None], str | None]] = {
    # points 1 and 6: answered in the cloud's place, 3 times; the log names endpoint and problem
    "html": (lambda g: g.answer("POST", ASSET, 200, *PORTAL, count=3),
             "POST /v2/devices/assets answered 200: text/html instead of JSON"),
    "empty": (lambda g: g.answer("POST", ASSET, 200, b"", "application/json", count=3),
              "POST /v2/devices/assets answered 200: empty body instead of JSON"),
    "truncated": (lambda g: g.answer("POST", ASSET, 200, b'{"id": "9a28", "upload_urls": ["https://',
                                     "application/json", count=3),
                  "POST /v2/devices/assets answered 200: invalid JSON"),
    "huge": (lambda g: g.answer("POST", ASSET, 200, b'{"id": "' + b"x" * (50 * 1024 * 1024) + b'"}',
                                "application/json", count=3),
             "POST /v2/devices/assets answered 200: answer too large"),
    # points 4 and 7: the cloud's real answer with upload URLs that cannot work, once
    "http urls": (lambda g: g.rewrite("POST", ASSET, _http_urls, count=1), "refused: not HTTPS"),
    "dead port urls": (lambda g: g.rewrite("POST", ASSET, _dead_port_urls, count=1), None),
}


@pytest.mark.parametrize("case", list(BAD_ASSET_ANSWERS))
def test_a_bad_asset_create_answer_costs_no_file_and_blocks_no_queue(
        cloud: Any, control: Any, path: Any, garbler: Garbler, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, case: str) -> None:
    """Points 1, 4, 6, 7: the first file meets the bad answer; with one upload worker the next
    capture still goes up, the first is retried (a fresh asset for unusable URLs) and both
    arrive intact, once; no file failed, one log line names what was wrong, no traceback."""
    caplog.set_level(logging.INFO, logger="reference_device")
    engine = hostile_engine(cloud, control, path[0], tmp_path, parallel_files=1)
    engine.start()
    try:
        pair_through(engine, control)
        arm, expected_line = BAD_ASSET_ANSWERS[case]
        arm(garbler)
        media = tmp_path / "media"
        (media / "stuck.bin").write_bytes(os.urandom(20_000))
        wait_until(lambda: file_state(engine, "stuck.bin"), 20, "stuck.bin queued")
        (media / "next.bin").write_bytes(os.urandom(20_000))
        def done(name: str) -> bool:
            state = file_state(engine, name)
            return state is not None and state["state"] == "done"

        wait_until(lambda: done("next.bin"), 90, "next.bin uploaded")
        wait_until(lambda: done("stuck.bin"), 90, "stuck.bin uploaded")
        for name in ("stuck.bin", "next.bin"):
            rows = complete_rows(control, name)
            assert len(rows) == 1 and rows[0]["sha256"] == sha256(media / name), name
        snap = engine.snapshot()
        assert snap["queue"]["failed"] == 0 and snap["token"]["state"] == "valid"
        if expected_line is not None:
            assert any(expected_line in r.getMessage() for r in caplog.records), \
                f"no log line says {expected_line!r}"
        no_tracebacks(caplog)
    finally:
        engine.stop()


def test_refresh_through_a_captive_portal_keeps_the_pairing(cloud: Any, control: Any, path: Any,
                                                            garbler: Garbler, tmp_path: Path) -> None:
    """Points 2 and 3: a non-JSON 200, a 403 page and a 404 on refresh never re-pair nor count."""
    engine = hostile_engine(cloud, control, path[0], tmp_path)
    engine.start()
    try:
        pair_through(engine, control)
        portal = b"<html>Accept the terms</html>"
        garbler.answer("POST", r"^/v2/auth/token$", 200, portal, "text/html", count=2)
        garbler.answer("POST", r"^/v2/auth/token$", 403, portal, "text/html", count=2)
        garbler.answer("POST", r"^/v2/auth/token$", 404, b"", "text/plain", count=2)
        control.expire_tokens()
        media = tmp_path / "media"
        (media / "after.bin").write_bytes(os.urandom(20_000))
        wait_until(lambda: (f := file_state(engine, "after.bin")) and f["state"] == "done", 90, "uploaded")
        assert complete_rows(control, "after.bin")[0]["sha256"] == sha256(media / "after.bin")
        snap = engine.snapshot()
        assert snap["token"]["state"] == "valid" and snap["pairing"]["state"] == "paired"
        real = [j for j in control.journal() if j["path"] == "/v2/auth/token" and j["status"] == 200]
        assert snap["token"]["refresh_count"] == len(real) - 1  # the pairing's answer is not a refresh
        assert garbler.hits.get("POST /v2/auth/device/code") == 1  # never asked to pair again
    finally:
        engine.stop()


def test_wrongly_typed_refresh_field_keeps_the_rotated_pair(cloud: Any, control: Any, path: Any,
                                                            garbler: Garbler, tmp_path: Path) -> None:
    """Point 3: the cloud rotated the pair; an `expires_in` of the wrong type must not lose it."""
    engine = hostile_engine(cloud, control, path[0], tmp_path)
    engine.start()
    try:
        pair_through(engine, control)
        garbler.rewrite("POST", r"^/v2/auth/token$", lambda b: {**b, "expires_in": "soon"}, count=1)
        control.expire_tokens()
        media = tmp_path / "media"
        (media / "typed.bin").write_bytes(os.urandom(20_000))
        wait_until(lambda: (f := file_state(engine, "typed.bin")) and f["state"] == "done", 60, "uploaded")
        snap = engine.snapshot()
        assert snap["token"]["state"] == "valid" and snap["token"]["refresh_count"] == 1
        assert garbler.hits.get("POST /v2/auth/device/code") == 1
    finally:
        engine.stop()


ME_ANSWERS = {
    "html": (b"<html>portal</html>", "text/html"),
    "no project": (json.dumps({"id": "d1", "name": "REF", "status": "online"}).encode(), "application/json"),
    "wrong types": (json.dumps({"id": 5, "project": "x", "project_id": 7, "status": []}).encode(),
                    "application/json"),
}


@pytest.mark.parametrize("case", list(ME_ANSWERS))
def test_bad_me_during_pairing_kills_no_thread_and_backs_off(cloud: Any, control: Any, path: Any,
                                                             garbler: Garbler, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture,
                                                             case: str) -> None:
    """Point 5: pairing and auth threads survive a bad /me; without a project id the device
    backs off instead of asking twice a second; the project shows once /me is sane again."""
    caplog.set_level(logging.INFO, logger="reference_device")
    body, ctype = ME_ANSWERS[case]
    garbler.answer("GET", r"^/v2/devices/me$", 200, body, ctype, count=None)
    engine = hostile_engine(cloud, control, path[0], tmp_path, me_poll_interval=600.0)
    engine.start()
    try:
        project = pair_through(engine, control, wait_project=False)
        start = garbler.hits.get("GET /v2/devices/me", 0)
        with pytest.raises(AssertionError):  # a 6 s window: at 1, 2, 4 s backoff at most ~4 asks
            wait_until(lambda: garbler.hits.get("GET /v2/devices/me", 0) - start > 5, 6, "a /me storm")
        garbler.clear()
        wait_until(lambda: engine.snapshot()["project"]["id"] == project["id"], 70, "project after /me heals")
        assert engine.snapshot()["loops"]["restarts"] == 0
        assert any("GET /v2/devices/me answered 200" in r.getMessage() for r in caplog.records)
        no_tracebacks(caplog)
    finally:
        engine.stop()

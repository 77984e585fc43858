"""The spec's other 409s on asset creation (c2c-api.md §3.8, §11.7) against the real emulator:
`slow_down` is retried no sooner than SLOW_DOWN_MIN_S (honouring a longer Retry-After),
`invalid_client` refreshes the token and replays the creation, never re-pairs."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from reference_device.api import SLOW_DOWN_MIN_S, classify_api_error
from reference_device.errors import RetryableError, UnauthorizedError
from tests.reference_device.conftest import sha256, wait_until
from tests.reference_device.test_engine_e2e import make_engine, pair

CREATE_RULE = {"target": "api", "path": "^/v2/(devices/)?assets$", "method": "POST"}
SLACK_S = 0.1  # the journal stamps an answer just after the device has it


def _conflict(message: str, retry_after: str | None = None) -> httpx.Response:
    body = {"code": 409, "message": message,
            "errors": [{"code": 409, "status": 409, "title": message, "detail": "d"}]}
    headers = {"retry-after": retry_after} if retry_after else None
    return httpx.Response(409, json=body, headers=headers)


def test_slow_down_waits_at_least_the_floor_or_the_hint() -> None:
    err = classify_api_error(_conflict("slow_down"))
    assert type(err) is RetryableError and err.code == "slow_down"
    assert err.retry_after == SLOW_DOWN_MIN_S >= 1.0
    assert classify_api_error(_conflict("slow_down", "7")).retry_after == 7.0
    assert classify_api_error(_conflict("slow_down", "0")).retry_after == SLOW_DOWN_MIN_S


def test_invalid_client_is_an_auth_failure() -> None:
    assert type(classify_api_error(_conflict("invalid_client"))) is UnauthorizedError


def creates(control: Any) -> list[dict[str, Any]]:
    rows = [r for r in control.journal() if r["method"] == "POST"
            and r["path"] in ("/v2/devices/assets", "/v2/assets")]
    return sorted(rows, key=lambda r: r["id"])


def upload_one(engine: Any, control: Any, media: Path, name: str) -> None:
    path = media / name
    path.write_bytes(os.urandom(30_000))
    wait_until(lambda: engine.snapshot()["queue"]["completed"] == 1, 60, f"{name} uploaded")
    rows = [r for r in control.ledger() if r["name"] == name and r["state"] == "complete"]
    assert len(rows) == 1 and rows[0]["sha256"] == sha256(path)
    assert engine.snapshot()["queue"]["failed"] == 0


@pytest.mark.parametrize(("retry_after", "least_s"), [(None, SLOW_DOWN_MIN_S), (2, 2.0)])
def test_slow_down_backs_off_then_uploads(cloud: Any, control: Any, tmp_path: Path,
                                          retry_after: int | None, least_s: float) -> None:
    # backoff_base 0.05 / cap 0.5 in the test config: only the slow_down floor makes it wait
    engine = make_engine(cloud, control, tmp_path)
    engine.start()
    try:
        pair(engine, control)
        rule: dict[str, Any] = {**CREATE_RULE, "count": 2, "kind": "conflict_slow_down"}
        if retry_after is not None:
            rule["retry_after"] = retry_after
        control.add_fault(rule)
        upload_one(engine, control, tmp_path / "media", "slow.bin")
        rows = creates(control)
        assert [r["status"] for r in rows] == [409, 409, 200]
        for answered, retried in itertools.pairwise(rows):
            gap = float(retried.get("started_at") or retried["t"]) - float(answered["t"])
            assert gap >= least_s - SLACK_S, f"retried {gap:.3f} s after slow_down"
    finally:
        engine.stop()


def test_invalid_client_refreshes_and_replays_without_pairing(cloud: Any, control: Any,
                                                               tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path)
    engine.start()
    try:
        pair(engine, control)
        since = control.journal()[-1]["id"]
        refreshes = engine.snapshot()["token"]["refresh_count"]
        control.add_fault({**CREATE_RULE, "count": 1, "kind": "conflict_invalid_client"})
        upload_one(engine, control, tmp_path / "media", "auth.bin")
        rows = sorted(control.journal(since), key=lambda r: r["id"])
        calls = [(r["path"], r["status"]) for r in rows
                 if r["method"] == "POST" and r["path"].startswith(("/v2/auth/", "/v2/devices/assets"))]
        assert calls == [("/v2/devices/assets", 409), ("/v2/auth/token", 200),
                         ("/v2/devices/assets", 200)]
        snap = engine.snapshot()
        assert snap["token"]["refresh_count"] == refreshes + 1
        assert snap["token"]["state"] == "valid" and snap["pairing"]["state"] == "paired"
    finally:
        engine.stop()

"""Fault rules for one device on a shared emulator, and the `hold` rule (real emulator, real TLS).

A rule that names a device (its client id) answers only that device, whichever way the
emulator must tell who is asking: a bearer token (API calls), the asset behind an upload URL
(S3 part PUTs), the form's client_id (token refresh, multipart or urlencoded). A rule without
a device still answers everyone. A `hold` rule carries the request out and keeps its answer
back until released (or its timeout): the bench can act between arrival and answer.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from harness.cloud.control import CloudControl
from harness.cloud.paths import ASSET_CREATE_PATH, TOKEN_RULE
from harness.cloud.testing import PairedDevice, pair_device
from harness.errors import CloudError

from .conftest import create_asset, wait_until

ME = "^/v2/devices/me$"


@pytest.fixture
def two(cloud: CloudControl) -> tuple[PairedDevice, PairedDevice]:
    """Devices A and B, paired with the same emulator (as two chaos lanes are)."""
    return pair_device(cloud, project_name="A"), pair_device(cloud, project_name="B")


def _refresh(api: httpx.Client, device: PairedDevice, *, multipart: bool) -> httpx.Response:
    form = {"grant_type": "refresh_token", "client_id": device.client_id,
            "client_secret": device.client_secret, "refresh_token": device.refresh_token}
    if multipart:
        return api.post("/v2/auth/token", files={k: (None, v) for k, v in form.items()})
    return api.post("/v2/auth/token", data=form)


def _asset(api: httpx.Client, device: PairedDevice, size: int = 1000) -> dict[str, object]:
    answer = create_asset(api, device, name=f"{device.name}.mp4", filetype="video/mp4", filesize=size)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def _put(api: httpx.Client, url: str, size: int = 1000) -> httpx.Response:
    return api.put(url, content=b"x" * size, headers={"content-type": "video/mp4", "x-amz-acl": "private"})


def _hits(cloud: CloudControl, rule_id: str) -> int:
    return int(cloud.fault(rule_id)["hits"])


def test_an_api_rule_for_device_a_never_answers_device_b(api: httpx.Client, cloud: CloudControl,
                                                         two: tuple[PairedDevice, PairedDevice]) -> None:
    a, b = two
    rule = cloud.add_fault({"target": "api", "kind": "internal_error", "path": ME, "count": 3}, client_id=a.client_id)
    for _ in range(4):  # B first: had the rule served B, its uses would be gone before A asks
        assert api.get("/v2/devices/me", headers=b.headers).status_code == 200
    assert _hits(cloud, rule) == 0
    assert [api.get("/v2/devices/me", headers=a.headers).status_code for _ in range(4)] == [500, 500, 500, 200]
    assert _hits(cloud, rule) == 3


def test_an_s3_rule_for_device_a_never_answers_device_b(api: httpx.Client, cloud: CloudControl,
                                                        two: tuple[PairedDevice, PairedDevice]) -> None:
    a, b = two
    asset_a, asset_b = _asset(api, a), _asset(api, b)
    rule = cloud.add_fault({"target": "s3", "kind": "slowdown", "count": 1}, client_id=a.client_id)
    [url_b] = asset_b["upload_urls"]  # type: ignore[misc]
    [url_a] = asset_a["upload_urls"]  # type: ignore[misc]
    assert _put(api, str(url_b)).status_code == 200
    assert _hits(cloud, rule) == 0
    refused = _put(api, str(url_a))
    assert refused.status_code == 503 and b"<Code>SlowDown</Code>" in refused.content
    assert _put(api, str(url_a)).status_code == 200
    assert {r["name"]: r["state"] for r in cloud.ledger()} == {f"{a.name}.mp4": "complete",
                                                              f"{b.name}.mp4": "complete"}


@pytest.mark.parametrize("multipart", [True, False], ids=["multipart", "urlencoded"])
def test_a_refresh_rule_for_device_a_never_answers_device_b(api: httpx.Client, cloud: CloudControl,
                                                            two: tuple[PairedDevice, PairedDevice],
                                                            multipart: bool) -> None:
    a, b = two
    rule = cloud.add_fault({"target": "api", "kind": "internal_error", "path": TOKEN_RULE, "count": 1},
                           client_id=a.client_id)
    fresh = _refresh(api, b, multipart=multipart)  # the form was read for its client_id, then handed on
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["refresh_token"] != b.refresh_token
    assert _hits(cloud, rule) == 0
    assert _refresh(api, a, multipart=multipart).status_code == 500
    assert _refresh(api, a, multipart=multipart).status_code == 200  # the refused one rotated nothing
    assert _hits(cloud, rule) == 1


def test_a_poll_slow_down_for_one_device_spares_another(api: httpx.Client, cloud: CloudControl) -> None:
    """The handler-answered kind (device-code polls) reads the device from the poll's form."""
    secret = cloud.client_secret()
    codes = {}
    for client in ("cam-a", "cam-b"):
        form = {"client_id": client, "client_secret": secret, "scope": "asset_create offline"}
        codes[client] = api.post("/v2/auth/device/code", data=form).json()["device_code"]
    cloud.add_fault({"target": "api", "kind": "slow_down", "path": TOKEN_RULE}, client_id="cam-a")

    def poll(client: str) -> str:
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": client,
                "client_secret": secret, "device_code": codes[client]}
        return str(api.post("/v2/auth/token", data=form).json()["error"])

    assert poll("cam-b") == "authorization_pending"
    assert poll("cam-a") == "slow_down"


def test_a_rule_without_a_device_still_answers_both(api: httpx.Client, cloud: CloudControl,
                                                    two: tuple[PairedDevice, PairedDevice]) -> None:
    a, b = two
    cloud.add_fault({"target": "api", "kind": "internal_error", "path": ME, "count": 2})
    assert api.get("/v2/devices/me", headers=a.headers).status_code == 500
    assert api.get("/v2/devices/me", headers=b.headers).status_code == 500
    asset_a, asset_b = _asset(api, a), _asset(api, b)
    cloud.add_fault({"target": "s3", "kind": "internal_error", "count": 2})
    for asset in (asset_a, asset_b):
        [url] = asset["upload_urls"]  # type: ignore[misc]
        assert _put(api, str(url)).status_code == 500
    cloud.add_fault({"target": "api", "kind": "internal_error", "path": TOKEN_RULE, "count": 2})
    assert _refresh(api, a, multipart=True).status_code == 500
    assert _refresh(api, b, multipart=False).status_code == 500


def test_listing_and_clearing_one_devices_rules(cloud: CloudControl) -> None:
    mine = cloud.add_fault({"target": "s3", "kind": "slowdown"}, client_id="cam-a")
    theirs = cloud.add_fault({"target": "s3", "kind": "slowdown"}, client_id="cam-b")
    shared = cloud.add_fault({"target": "s3", "kind": "slowdown"})
    assert [r["id"] for r in cloud.faults("cam-a")] == [mine]
    assert cloud.fault(mine)["client_id"] == "cam-a" and cloud.fault(shared)["client_id"] is None
    cloud.clear_faults("cam-a")
    assert sorted(r["id"] for r in cloud.faults()) == sorted([theirs, shared])
    cloud.clear_faults()
    assert cloud.faults() == []
    with pytest.raises(CloudError, match="client_id"):
        cloud.add_fault({"target": "s3", "kind": "slowdown"}, client_id="")
    with pytest.raises(CloudError, match="hold_s"):
        cloud.add_fault({"target": "api", "kind": "slowdown", "hold_s": 1})


# --- hold -----------------------------------------------------------------------------------

def _journal_rows(cloud: CloudControl, path_start: str) -> list[dict[str, object]]:
    return [r for r in cloud.journal() if str(r["path"]).startswith(path_start)]


def test_a_held_create_is_carried_out_and_answered_only_on_release(
        api: httpx.Client, cloud: CloudControl, two: tuple[PairedDevice, PairedDevice]) -> None:
    a, b = two
    rule = cloud.hold("api", ASSET_CREATE_PATH, method="POST", hold_s=30, client_id=a.client_id)
    with ThreadPoolExecutor(2) as pool:
        held: Future[httpx.Response] = pool.submit(_asset_answer, api, a)
        arrived = wait_until(lambda: cloud.fault(rule)["arrived_at"], what="the create's arrival")
        # B's create passes (the hold is A's), A's stays unanswered although the cloud made the asset
        assert _asset(api, b)["id"]
        wait_until(lambda: any(r["name"] == f"{a.name}.mp4" for r in cloud.ledger(a.device_id)),
                   what="A's asset in the cloud while its answer is held")
        with pytest.raises(TimeoutError):  # a held answer stays held: nothing comes within 0.3 s
            held.result(timeout=0.3)
        assert not [r for r in _journal_rows(cloud, "/v2/devices/assets") if r["device_id"] == a.device_id]
        released_before = time.time()
        assert cloud.release_fault(rule) is True
        answer = held.result(timeout=10)
    assert answer.status_code == 200, answer.text
    [row] = [r for r in _journal_rows(cloud, "/v2/devices/assets") if r["device_id"] == a.device_id]
    assert float(str(row["started_at"])) <= float(arrived) <= float(str(row["t"]))
    assert float(str(row["t"])) >= released_before - 0.05  # answered at the release, not before
    assert cloud.fault(rule)["released_at"] is not None


def _asset_answer(api: httpx.Client, device: PairedDevice) -> httpx.Response:
    return create_asset(api, device, name=f"{device.name}.mp4", filetype="video/mp4", filesize=1000)


def test_a_held_answer_goes_at_its_timeout_or_when_the_rule_is_removed(
        api: httpx.Client, cloud: CloudControl, paired_device: PairedDevice) -> None:
    rule = cloud.hold("api", ME, hold_s=0.8)
    began = time.monotonic()
    assert api.get("/v2/devices/me", headers=paired_device.headers).status_code == 200
    assert time.monotonic() - began >= 0.8
    rule = cloud.hold("api", ME, hold_s=60)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(api.get, "/v2/devices/me", headers=paired_device.headers)
        wait_until(lambda: cloud.fault(rule)["arrived_at"], what="the request's arrival")
        assert not held.done()
        cloud.clear_faults()  # a bench that forgets to release must not leave a request hanging
        assert held.result(timeout=10).status_code == 200


def test_a_held_part_put_is_stored_before_its_answer(api: httpx.Client, cloud: CloudControl,
                                                     paired_device: PairedDevice) -> None:
    asset = _asset(api, paired_device)
    [url] = asset["upload_urls"]  # type: ignore[misc]
    rule = cloud.hold("s3", "^/s3/parts/", method="PUT", hold_s=30, client_id=paired_device.client_id)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(_put, api, str(url))
        wait_until(lambda: cloud.fault(rule)["arrived_at"], what="the part's arrival")
        wait_until(lambda: cloud.ledger(paired_device.device_id)[0]["state"] == "complete",
                   what="the part stored while its answer is held")
        assert not held.done()
        assert cloud.release_fault(rule) is True
        assert held.result(timeout=10).status_code == 200
    with pytest.raises(CloudError, match="not a hold"):
        cloud.release_fault(cloud.add_fault({"target": "s3", "kind": "slowdown"}))


def test_dropping_a_retired_devices_content_spares_its_neighbour(
        api: httpx.Client, cloud: CloudControl, two: tuple[PairedDevice, PairedDevice], tmp_path: Path) -> None:
    """A chaos lane rebuilt on the shared emulator gives back its device's disk; ledger rows stay."""
    a, b = two
    for device in (a, b):
        [url] = _asset(api, device)["upload_urls"]  # type: ignore[misc]
        assert _put(api, str(url)).status_code == 200
    [row_a], [row_b] = cloud.ledger(a.device_id), cloud.ledger(b.device_id)
    cloud.drop_content(a.device_id)
    with pytest.raises(CloudError, match="no content"):
        cloud.asset_content(str(row_a["asset_id"]), tmp_path / "a.mp4")
    assert cloud.ledger(a.device_id) == [row_a]  # the oracle's record of what arrived is kept
    assert cloud.asset_content(str(row_b["asset_id"]), tmp_path / "b.mp4").read_bytes() == b"x" * 1000

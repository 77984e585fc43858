"""The spec's other 409s on asset creation (c2c-api.md §3.8, §11.7) over real HTTPS:
`slow_down` and `invalid_client` in Frame.io's detailed shape, on demand, then normal answers."""

from __future__ import annotations

import httpx
import pytest

from harness.cloud.control import CloudControl
from harness.cloud.testing import PairedDevice
from harness.errors import BenchFailure

from .conftest import assert_detailed, create_asset

ASSET = {"name": "A001_C001.mov", "filetype": "video/quicktime", "filesize": 1000, "offset": 1}
CREATE_RULE = {"target": "api", "path": "^/v2/(devices/)?assets$", "method": "POST"}


def creates(cloud: CloudControl) -> list[dict]:
    return [r for r in cloud.journal() if r["method"] == "POST" and r["path"].endswith("assets")]


@pytest.mark.parametrize("message", ["slow_down", "invalid_client"])
@pytest.mark.parametrize("path", ["/v2/devices/assets", "/v2/assets"])
def test_409_with_the_exact_message_then_normal_answers(
        api: httpx.Client, cloud: CloudControl, paired_device: PairedDevice,
        message: str, path: str) -> None:
    rule_id = cloud.add_fault({**CREATE_RULE, "count": 2, "kind": f"conflict_{message}"})
    for _ in range(2):
        answer = create_asset(api, paired_device, path, **ASSET)
        body = assert_detailed(answer, 409, message)
        assert body == {"code": 409, "message": message, "errors": [
            {"code": 409, "status": 409, "title": message, "detail": body["errors"][0]["detail"]}]}
        assert answer.headers["content-type"].startswith("application/json")
        assert "retry-after" not in answer.headers  # the spec documents no hint: none invented
    created = create_asset(api, paired_device, path, **ASSET)
    assert created.status_code == 200, created.text
    rule = next(f for f in cloud.faults() if f["id"] == rule_id)
    assert rule["count"] == 0 and rule["hits"] == 2
    assert [r["status"] for r in creates(cloud)] == [409, 409, 200]
    # nothing was created by the refused calls: one asset, the one that was answered 200
    assert [row["name"] for row in cloud.ledger(paired_device.device_id)] == [ASSET["name"]]


def test_retry_after_only_when_the_rule_asks(api: httpx.Client, cloud: CloudControl,
                                             paired_device: PairedDevice) -> None:
    cloud.add_fault({**CREATE_RULE, "count": 1, "kind": "conflict_slow_down", "retry_after": 3})
    answer = create_asset(api, paired_device, **ASSET)
    assert answer.status_code == 409 and answer.json()["message"] == "slow_down"
    assert answer.headers["retry-after"] == "3"


def test_other_calls_are_untouched(api: httpx.Client, cloud: CloudControl,
                                   paired_device: PairedDevice) -> None:
    cloud.add_fault({**CREATE_RULE, "count": 1, "kind": "conflict_invalid_client"})
    assert api.get("/v2/devices/me", headers=paired_device.headers).status_code == 200
    assert api.post("/v2/devices/heartbeat", headers=paired_device.headers).status_code == 204
    assert cloud.faults()[0]["count"] == 1
    assert create_asset(api, paired_device, **ASSET).status_code == 409


def test_on_an_auth_path_the_simple_shape_carries_the_message(
        api: httpx.Client, cloud: CloudControl, paired_device: PairedDevice) -> None:
    cloud.add_fault({"target": "api", "path": "^/v2/auth/token$", "count": 1,
                     "kind": "conflict_invalid_client"})
    refresh = {"grant_type": "refresh_token", "client_id": paired_device.client_id,
               "client_secret": paired_device.client_secret,
               "refresh_token": paired_device.refresh_token}
    answer = api.post("/v2/auth/token", data=refresh)
    assert answer.status_code == 409 and answer.json() == {"error": "invalid_client"}


@pytest.mark.parametrize("kind", ["conflict_slow_down", "conflict_invalid_client"])
def test_s3_target_is_refused_with_the_reason(cloud: CloudControl, kind: str) -> None:
    with pytest.raises(BenchFailure, match="target must be 'api'"):
        cloud.add_fault({"target": "s3", "count": 1, "kind": kind})
    assert cloud.faults() == []

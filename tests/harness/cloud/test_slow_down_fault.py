"""Forced `slow_down` on device-code polls (fault kind slow_down, C2C-AUTH-04), over real HTTPS."""

from __future__ import annotations

import httpx
import pytest

from harness.cloud.control import CloudControl
from harness.cloud.testing import PairedDevice

from .test_auth import code_form, error_of, poll, refresh

RULE = {"target": "api", "kind": "slow_down"}


def new_code(api: httpx.Client, cloud: CloudControl) -> dict:
    answer = api.post("/v2/auth/device/code", data=code_form(cloud))
    assert answer.status_code == 200, answer.text
    return answer.json()


def token_polls(cloud: CloudControl, since: int) -> list[dict]:
    return [row for row in cloud.journal(since)
            if row["method"] == "POST" and row["path"] == "/v2/auth/token"]


def last_journal_id(cloud: CloudControl) -> int:
    rows = cloud.journal()
    return rows[-1]["id"] if rows else 0


def test_forced_slow_down_grows_the_interval_a_device_must_honour(
        api: httpx.Client, cloud: CloudControl) -> None:
    code = new_code(api, cloud)
    since = last_journal_id(cloud)
    rule_id = cloud.add_fault({**RULE, "count": 1})
    # The very first poll would be authorization_pending: the rule forces slow_down.
    assert error_of(poll(api, cloud, code["device_code"])) == "slow_down"
    # A device that keeps its old pace (> 5 s, < 5 + 5 s) meets a real slow_down next.
    cloud.advance_clock(code["interval"] + 1)
    assert error_of(poll(api, cloud, code["device_code"])) == "slow_down"
    # One that honours both increments (interval now 15 s) is answered normally.
    cloud.advance_clock(code["interval"] + 10 + 1)
    assert error_of(poll(api, cloud, code["device_code"])) == "authorization_pending"
    rule = next(f for f in cloud.faults() if f["id"] == rule_id)
    assert rule["count"] == 0 and rule["hits"] == 1
    polls = token_polls(cloud, since)
    assert [p["status"] for p in polls] == [400, 400, 400]


def test_forced_slow_down_counts_polls_even_after_approval(
        api: httpx.Client, cloud: CloudControl) -> None:
    code = new_code(api, cloud)
    cloud.approve(code["user_code"], cloud.create_project("P")["id"])
    cloud.add_fault({**RULE, "count": 2})
    answer = poll(api, cloud, code["device_code"])
    assert answer.json() == {"error": "slow_down"}
    cloud.advance_clock(code["interval"] + 5 + 1)
    assert error_of(poll(api, cloud, code["device_code"])) == "slow_down"
    cloud.advance_clock(code["interval"] + 10 + 1)
    tokens = poll(api, cloud, code["device_code"])
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["access_token"]
    assert cloud.faults()[0]["hits"] == 2


def test_slow_down_rule_leaves_other_auth_calls_alone(
        api: httpx.Client, cloud: CloudControl, paired_device: PairedDevice) -> None:
    cloud.add_fault({**RULE, "count": 1, "path": "^/v2/auth/token$"})
    assert api.post("/v2/devices/heartbeat", headers=paired_device.headers).status_code == 204
    assert refresh(api, paired_device).status_code == 200
    assert error_of(poll(api, cloud, "no-such-code")) == "invalid_grant"
    code = new_code(api, cloud)
    assert cloud.faults()[0]["count"] == 1  # nothing above was a live device-code poll
    assert error_of(poll(api, cloud, code["device_code"])) == "slow_down"
    assert cloud.faults()[0]["count"] == 0


def test_removed_slow_down_rule_stops_firing(api: httpx.Client, cloud: CloudControl) -> None:
    code = new_code(api, cloud)
    rule_id = cloud.add_fault({**RULE, "count": 5})
    assert cloud.remove_fault(rule_id) is None
    assert cloud.faults() == []
    assert error_of(poll(api, cloud, code["device_code"])) == "authorization_pending"


@pytest.mark.parametrize(("rule", "message"), [
    ({"target": "s3", "kind": "slow_down"}, "target must be 'api'"),
    ({"target": "api", "kind": "slow_down", "path": "heartbeat"}, "never matches"),
])
def test_bad_slow_down_rules_are_refused(cloud: CloudControl, rule: dict, message: str) -> None:
    with pytest.raises(Exception, match=message):
        cloud.add_fault(rule)
    assert cloud.faults() == []


def test_openapi_documents_slow_down(api: httpx.Client) -> None:
    schema = api.get("/_bench/openapi.json").json()
    kind = schema["paths"]["/faults"]["post"]["requestBody"]["content"]["application/json"]
    assert "slow_down" in kind["schema"]["properties"]["kind"]["enum"]

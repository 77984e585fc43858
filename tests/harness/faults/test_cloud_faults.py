"""Cloud-side faults (`harness.faults.cloud` rules, applied through the vocabulary): logic
against a recording fake, then through the real emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.cloud.testing import api, cloud, cloud_process, paired_device  # noqa: F401
from harness.errors import ConfigError
from harness.faults.cloud import EVERY_TIME, arm, fault_rule
from harness.faults.vocabulary import FaultTargets, active, inject
from harness.protocols import Cloud
from harness.timeline import Timeline


class FakeCloud:
    """Records control calls; just enough of harness.protocols.Cloud for fault logic."""

    api_url = "https://127.0.0.1:1"
    ca_bundle = Path("/nonexistent/ca.pem")
    plain_http_url = "http://127.0.0.1:2"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.rules: dict[str, dict[str, Any]] = {}
        self.settings: dict[str, Any] = {"url_pairing": True, "device_code_lifetime": 120}

    def _call(self, name: str, *args: Any) -> Any:
        self.calls.append((name, args))
        return None

    def client_secret(self) -> str:
        return "not-a-real-secret"

    def create_project(self, name: str) -> dict[str, Any]:
        return {"id": "p-1", "name": name}

    def rename_project(self, project_id: str, name: str) -> None:
        self._call("rename_project", project_id, name)

    def pending_codes(self) -> list[dict[str, Any]]:
        return []

    def approve(self, user_code: str, project_id: str) -> None:
        self._call("approve", user_code, project_id)

    def deny(self, user_code: str) -> None:
        self._call("deny", user_code)

    def devices(self) -> list[dict[str, Any]]:
        return []

    def rename_device(self, device_id: str, name: str) -> dict[str, Any]:
        return {"id": device_id, "name": name}

    def pause_device(self, device_id: str) -> None:
        self._call("pause_device", device_id)

    def resume_device(self, device_id: str) -> None:
        self._call("resume_device", device_id)

    def revoke_device(self, device_id: str) -> None:
        self._call("revoke_device", device_id)

    def update_settings(self, **settings: Any) -> dict[str, Any]:
        if settings:
            self._call("update_settings", settings)
        self.settings.update(settings)
        return dict(self.settings)

    def expire_tokens(self, device_id: str | None = None) -> None:
        self._call("expire_tokens", device_id)

    def advance_clock(self, seconds: float) -> None:
        self._call("advance_clock", seconds)

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        return []

    def now(self) -> float:
        return 0.0

    def ledger(self, device_id: str | None = None) -> list[dict[str, Any]]:
        return []

    def assets(self, device_id: str | None = None) -> list[dict[str, Any]]:
        return []

    def plain_http_attempts(self) -> list[dict[str, Any]]:
        return []

    def reset(self) -> None:
        self._call("reset")

    def add_fault(self, rule: dict[str, Any]) -> str:
        rule_id = f"f{len(self.rules) + 1}"
        self.rules[rule_id] = rule
        self.calls.append(("add_fault", rule))
        return rule_id

    def remove_fault(self, rule_id: str) -> None:
        self.rules.pop(rule_id, None)
        self.calls.append(("remove_fault", rule_id))

    def clear_faults(self) -> None:
        self.rules.clear()
        self.calls.append(("clear_faults", ()))


def test_fake_is_a_cloud() -> None:
    assert isinstance(FakeCloud(), Cloud)


def test_arm_sends_one_checked_rule_and_takes_only_it_back() -> None:
    fake = FakeCloud()
    stop = arm(fake, "s3", "slowdown", count=3, method="put")
    other = arm(fake, "api", "internal-error", path=r"^/v2/devices/heartbeat", retry_after=2)
    assert fake.rules == {"f1": {"target": "s3", "kind": "slowdown", "count": 3, "method": "PUT"},
                          "f2": {"target": "api", "kind": "internal_error", "count": 1,
                                 "path": r"^/v2/devices/heartbeat", "retry_after": 2}}
    stop()
    assert list(fake.rules) == ["f2"]
    other()
    assert fake.rules == {}


def test_rules_and_timeline_windows() -> None:
    fake, timeline = FakeCloud(), Timeline()
    targets = FaultTargets(timeline=timeline, cloud=fake)
    running = [inject("s3:slowdown x3 method=put", targets),
               inject("api:internal-error path=^/v2/devices/heartbeat retry_after=2", targets),
               inject("auth:refresh-failure", targets)]
    assert fake.rules["f1"] == {"target": "s3", "kind": "slowdown", "count": 3, "method": "PUT"}
    assert fake.rules["f2"]["kind"] == "internal_error" and fake.rules["f2"]["retry_after"] == 2
    assert fake.rules["f3"] == {"target": "api", "kind": "unauthorized", "count": EVERY_TIME,
                                "path": r"^/v2/auth/token", "method": "POST"}
    for fault in running:
        fault.stop()
    assert fake.rules == {}
    windows = {(w["layer"], w["name"]): w for w in timeline.windows()}
    assert set(windows) == {("cloud", "s3-slowdown"), ("cloud", "api-internal-error"),
                            ("auth", "refresh-failure")}
    assert all(w["stop"] is not None for w in windows.values())


def test_poll_slow_down_is_two_token_rule_hits() -> None:
    fake = FakeCloud()
    inject("auth:poll-slow-down x2", FaultTargets(cloud=fake))
    with pytest.raises(ConfigError, match="device-code polls"):
        fault_rule("s3", "slow_down")
    assert fake.rules["f1"] == {"target": "api", "kind": "slow_down", "count": 2,
                                "path": r"^/v2/auth/token", "method": "POST"}


def test_settings_are_put_back_when_the_fault_stops() -> None:
    fake, timeline = FakeCloud(), Timeline()
    with active("cloud:settings device_code_lifetime=12 url_pairing=false",
                FaultTargets(timeline=timeline, cloud=fake)):
        assert fake.settings == {"url_pairing": False, "device_code_lifetime": 12}
    assert fake.settings == {"url_pairing": True, "device_code_lifetime": 120}
    assert [(w["name"], w["stop"] is not None) for w in timeline.windows()] == [("settings", True)]
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        inject("cloud:settings", FaultTargets(cloud=fake))


def test_auth_and_device_faults_call_the_control_api() -> None:
    fake, timeline = FakeCloud(), Timeline()
    targets = FaultTargets(timeline=timeline, cloud=fake, project_id="p-1")
    inject("auth:expire-tokens", targets)
    inject("auth:revoke device_id=dev-1", targets)
    with pytest.raises(RuntimeError), active("cloud:pause device_id=dev-1", targets):
        raise RuntimeError("step failed")  # resume must still happen
    inject("cloud:rename-project name=Renamed", targets)
    inject("cloud:advance-clock 3600s", targets)
    assert fake.calls == [("expire_tokens", (None,)), ("revoke_device", ("dev-1",)),
                          ("pause_device", ("dev-1",)), ("resume_device", ("dev-1",)),
                          ("rename_project", ("p-1", "Renamed")), ("advance_clock", (3600.0,))]
    names = [(e.layer, e.name, e.action) for e in timeline.events]
    assert names[:2] == [("auth", "expire-tokens", "start"), ("auth", "expire-tokens", "stop")]
    assert ("cloud", "pause", "stop") in names


@pytest.mark.parametrize(("bad", "message"), [
    ({"target": "gcs", "kind": "slowdown"}, "target"),
    ({"target": "s3", "kind": "slow"}, "unknown fault kind 'slow'"),
    ({"target": "s3", "kind": "slowdown", "count": 0}, "count"),
    ({"target": "s3", "kind": "slowdown", "retry_after": -1}, "retry_after"),
])
def test_bad_rules_are_refused_before_sending(bad: dict[str, Any], message: str) -> None:
    target, kind = bad.pop("target"), bad.pop("kind")
    with pytest.raises(ConfigError, match=message):
        fault_rule(target, kind, **bad)


# --- through the real emulator ----------------------------------------------------------------
def test_expire_tokens_on_the_emulator(cloud, api, paired_device) -> None:  # noqa: F811
    me = {"Authorization": f"Bearer {paired_device.access_token}"}
    assert api.get("/v2/devices/me", headers=me).status_code == 200
    inject("auth:expire-tokens", FaultTargets(cloud=cloud))
    assert api.get("/v2/devices/me", headers=me).status_code == 401


def test_api_rule_and_refresh_failure_on_the_emulator(cloud, api, paired_device) -> None:  # noqa: F811
    targets = FaultTargets(cloud=cloud)
    me = {"Authorization": f"Bearer {paired_device.access_token}"}
    spent = inject("api:internal-error path=^/v2/devices/me x1", targets)
    assert api.get("/v2/devices/me", headers=me).status_code == 500
    assert api.get("/v2/devices/me", headers=me).status_code == 200  # count spent
    spent.stop()  # removing a spent rule is fine
    failing = inject("auth:refresh-failure", targets)
    refresh = {"grant_type": "refresh_token", "client_id": paired_device.client_id,
               "client_secret": paired_device.client_secret,
               "refresh_token": paired_device.refresh_token}
    assert api.post("/v2/auth/token", data=refresh).status_code == 401
    failing.stop()
    assert api.post("/v2/auth/token", data=refresh).status_code == 200


def test_revoke_and_pause_on_the_emulator(cloud, api, paired_device) -> None:  # noqa: F811
    targets = FaultTargets(cloud=cloud, device_id=paired_device.device_id)
    with active("cloud:pause", targets):
        device = next(d for d in cloud.devices() if d["id"] == paired_device.device_id)
        assert device["paused"]
    device = next(d for d in cloud.devices() if d["id"] == paired_device.device_id)
    assert not device["paused"]
    inject("auth:revoke", targets)
    me = {"Authorization": f"Bearer {paired_device.access_token}"}
    response = api.get("/v2/devices/me", headers=me)
    assert response.status_code in (401, 403), response.text
    assert isinstance(response, httpx.Response)

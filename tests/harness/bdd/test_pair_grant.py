""""A paired device" on a device without a status API waits until the device holds its tokens.

A full matrix lost a correct console-only device's files: the step returned once the cloud listed
the device (the approval), the next step put a TLS interceptor on the path 1 ms later and cut the
token answer in flight, and the device, answered invalid_grant on its next poll, showed a code
nobody approved. These tests run the real emulator over real TLS with a scripted device that
throws token answers away as a cut connection would.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from harness.bdd.state import ScenarioState
from harness.bdd.steps import device_steps
from harness.cloud.control import CloudControl
from harness.cloud.testing import DEVICE_GRANT, api_client, cloud, cloud_process  # noqa: F401
from harness.errors import DeviceFailure, DeviceTimeout
from harness.timeline import Timeline

INTERVAL = 1  # the emulator's poll interval for these tests (5 s by default)


class ScriptedDevice:
    """A console-only device: asks for a code, shows it, polls every interval. It throws away its
    first `drops` token answers (polling on with the same code, as after a cut answer), then keeps
    the tokens and, when `uses_tokens`, calls GET /v2/devices/me with them."""

    def __init__(self, control: CloudControl, *, drops: int, uses_tokens: bool) -> None:
        self.cloud, self.drops, self.uses_tokens = control, drops, uses_tokens
        self.client_id = f"scripted-{uuid.uuid4()}"
        self.secret = control.client_secret()
        self.shown: str | None = None
        self.tokens: dict[str, Any] | None = None
        self.codes_requested = 0
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # the Device protocol's part pair() uses
    def power(self) -> SimpleNamespace:
        return SimpleNamespace(is_on=lambda: True)

    def status(self) -> None:
        return None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def pairing_code(self, timeout: float) -> str:
        with self._changed:
            if not self._changed.wait_for(lambda: self.shown is not None, timeout):
                raise DeviceTimeout("no code shown")
            assert self.shown is not None
            return self.shown

    def _run(self) -> None:
        with api_client(self.cloud.api_url, self.cloud.ca_bundle) as http:
            while not self._stop.is_set() and self.tokens is None:
                device_code = self._new_code(http)
                while not self._stop.wait(INTERVAL + 0.2):
                    answer = http.post("/v2/auth/token", data={
                        "grant_type": DEVICE_GRANT, "client_id": self.client_id,
                        "client_secret": self.secret, "device_code": device_code})
                    if answer.status_code == 200 and self.drops > 0:
                        self.drops -= 1  # as if the answer never arrived: poll on with the same code
                        continue
                    if answer.status_code == 200:
                        with self._changed:
                            self.tokens, self.shown = answer.json(), None
                            self._changed.notify_all()
                        break
                    if answer.json().get("error") not in {"authorization_pending", "slow_down"}:
                        break  # invalid_grant (a used code), expired, denied: ask for a new code
            if self.tokens is not None and self.uses_tokens:
                http.get("/v2/devices/me", headers={"Authorization": f"Bearer {self.tokens['access_token']}"})

    def _new_code(self, http: httpx.Client) -> str:
        body = http.post("/v2/auth/device/code", data={
            "client_id": self.client_id, "client_secret": self.secret, "scope": "asset_create offline"}).json()
        with self._changed:
            self.shown = str(body["user_code"])
            self.codes_requested += 1
            self._changed.notify_all()
        return str(body["device_code"])


class Session:
    def __init__(self, control: CloudControl) -> None:
        self.cloud, self.project, self.paired = control, None, False

    def ensure_project(self) -> dict[str, Any]:
        self.project = self.project or self.cloud.create_project("Testbed")
        return self.project

    def journal_head(self) -> int:
        return max((int(r["id"]) for r in self.cloud.journal()), default=0)


class ConsoleBench:
    """The part of Bench that pair() uses, over a real emulator."""

    has_status = False

    def __init__(self, control: CloudControl, device: ScriptedDevice) -> None:
        self.cloud, self.device, self.session = control, device, Session(control)
        self.profile = SimpleNamespace(pairing=SimpleNamespace(source="console"))
        self.timeline, self.state = Timeline(), ScenarioState()

    def cloud_device(self) -> dict[str, Any] | None:
        rows = [d for d in self.cloud.devices() if d.get("client_id") == self.device.client_id]
        return rows[-1] if rows else None

    def exercised(self, note: str) -> None:
        pass


@pytest.fixture
def fast_cloud(cloud: CloudControl, monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudControl]:  # noqa: F811
    old = cloud.update_settings(device_code_interval=INTERVAL)
    monkeypatch.setattr(device_steps, "GRANT_SILENCE_S", 3.0, raising=False)
    try:
        yield cloud
    finally:
        cloud.update_settings(device_code_interval=old.get("device_code_interval", 5))


def paired(control: CloudControl, *, drops: int, uses_tokens: bool) -> tuple[ConsoleBench, ScriptedDevice, bool]:
    """Pair the scripted device; also whether it held its tokens the moment pair() returned."""
    device = ScriptedDevice(control, drops=drops, uses_tokens=uses_tokens)
    bench = ConsoleBench(control, device)
    device.start()
    try:
        device_steps.pair(bench)  # type: ignore[arg-type]
        return bench, device, device.tokens is not None
    finally:
        device.stop()


def marks(bench: ConsoleBench) -> list[str]:
    return [e.name for e in bench.timeline.events]


def evidence(bench: ConsoleBench) -> object:
    return bench.timeline.events[-1].details.get("evidence")


def test_a_device_that_missed_its_token_answer_is_paired_again_and_holds_its_tokens(
        fast_cloud: CloudControl) -> None:
    bench, device, held = paired(fast_cloud, drops=1, uses_tokens=True)
    assert held, "pair() returned before the device held its tokens"
    assert device.codes_requested == 2
    assert "pairing again" in marks(bench) and "grant taken" in marks(bench)


def test_a_device_that_uses_its_tokens_is_paired_at_once(fast_cloud: CloudControl) -> None:
    bench, device, held = paired(fast_cloud, drops=0, uses_tokens=True)
    assert held and device.codes_requested == 1
    assert "pairing again" not in marks(bench)
    assert evidence(bench) == "used"


def test_a_silent_device_is_taken_to_hold_its_tokens_once_it_stops_polling(fast_cloud: CloudControl) -> None:
    bench, device, held = paired(fast_cloud, drops=0, uses_tokens=False)
    assert held and device.codes_requested == 1
    assert evidence(bench) == "silent"


def test_a_device_that_never_takes_its_tokens_fails_pairing(fast_cloud: CloudControl) -> None:
    with pytest.raises(DeviceFailure, match="did not take the tokens"):
        paired(fast_cloud, drops=5, uses_tokens=True)

"""What the emulator witnesses for the bench beyond the journal: issued token values (leak
scan), device-code polls with their answers, every status beat, the issued complete URI."""

from __future__ import annotations

import json

import httpx

from harness.cloud.control import CloudControl
from harness.cloud.runner import EmulatorProcess
from harness.cloud.testing import DEVICE_GRANT, PairedDevice, pair_device
from harness.protocols import CloudWitness

from .conftest import status_socket, wait_until


def _code(api: httpx.Client, cloud: CloudControl, client_id: str, **headers: str) -> dict:
    form = {"client_id": client_id, "client_secret": cloud.client_secret(), "scope": "asset_create offline"}
    answer = api.post("/v2/auth/device/code", data=form, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_issued_tokens_are_known_by_value_and_only_in_memory(cloud: CloudControl, api: httpx.Client,
                                                             cloud_process: EmulatorProcess) -> None:
    assert isinstance(cloud, CloudWitness)
    device = pair_device(cloud)
    cloud.state()  # flushes the journal
    on_disk = b"".join(p.read_bytes() for p in cloud_process.data_dir.glob("state.sqlite3*"))
    assert device.refresh_token.encode() not in on_disk and device.access_token.encode() not in on_disk
    assert set(cloud.issued_tokens(device.device_id)) == {device.access_token, device.refresh_token}
    rotated = api.post("/v2/auth/token", data={
        "grant_type": "refresh_token", "client_id": device.client_id, "client_secret": device.client_secret,
        "refresh_token": device.refresh_token}).json()
    known = cloud.issued_tokens(device.device_id)
    assert rotated["access_token"] in known and rotated["refresh_token"] in known and len(known) == 4
    cloud.reset()
    other = pair_device(cloud)
    assert device.access_token not in cloud.issued_tokens(other.device_id)


def test_token_polls_name_the_client_and_the_answer(cloud: CloudControl, api: httpx.Client) -> None:
    code = _code(api, cloud, "cam-polls")
    form = {"grant_type": DEVICE_GRANT, "client_id": "cam-polls", "client_secret": cloud.client_secret(),
            "device_code": code["device_code"]}
    assert api.post("/v2/auth/token", data=form).json()["error"] == "authorization_pending"
    assert api.post("/v2/auth/token", data=form).json()["error"] == "slow_down"  # too fast
    project = cloud.create_project("p")
    cloud.approve(code["user_code"], project["id"])
    cloud.advance_clock(30)
    assert api.post("/v2/auth/token", data=form).status_code == 200
    polls = cloud.token_polls("cam-polls")
    assert [p["answer"] for p in polls] == ["authorization_pending", "slow_down", "ok"]
    assert all(p["client_id"] == "cam-polls" and p["t"] >= p["started_at"] for p in polls)
    assert cloud.token_polls("someone-else") == []


def test_pending_codes_carry_the_issued_complete_uri(cloud: CloudControl, api: httpx.Client) -> None:
    opted = _code(api, cloud, "cam-url", **{"x-client-platypus-enabled": "true"})
    plain = _code(api, cloud, "cam-plain")
    rows = {c["user_code"]: c for c in cloud.pending_codes()}
    assert rows[opted["user_code"]]["verification_uri_complete"] == opted["verification_uri_complete"]
    assert rows[plain["user_code"]]["verification_uri_complete"] is None
    assert rows[opted["user_code"]]["client_id"] == "cam-url"


def test_url_pairing_setting_switches_the_complete_uri_off(cloud: CloudControl, api: httpx.Client) -> None:
    assert cloud.settings()["url_pairing"] is True
    cloud.update_settings(url_pairing=False)
    body = _code(api, cloud, "cam-off", **{"x-client-platypus-enabled": "true"})
    assert "verification_uri_complete" not in body
    cloud.update_settings(url_pairing=True)
    assert "verification_uri_complete" in _code(api, cloud, "cam-on", **{"x-client-platypus-enabled": "true"})


def _socket(cloud: CloudControl, device: PairedDevice) -> object:
    return status_socket(cloud, device.access_token, additional_headers={"x-client-version": "1.0.0"})


def test_status_beats_list_every_socket_beat_and_heartbeat_of_one_device(
        cloud: CloudControl, api: httpx.Client, paired_device: PairedDevice) -> None:
    other = pair_device(cloud)
    start = cloud.status_beats(paired_device.device_id)["now"]
    with _socket(cloud, paired_device) as ws:  # type: ignore[attr-defined]
        for ref in ("1", "2", "3"):
            ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": ref}))
            assert json.loads(ws.recv(timeout=10))["ref"] == ref
    assert api.post("/v2/devices/heartbeat", headers=paired_device.headers).status_code in (200, 204)
    assert api.post("/v2/devices/heartbeat", headers=other.headers).status_code in (200, 204)

    def beats() -> list[dict]:
        got = cloud.status_beats(paired_device.device_id, since=start)["beats"]
        return got if len(got) == 5 else []
    got = wait_until(beats, 10, "five beats")
    assert sorted(b["kind"] for b in got) == ["heartbeat", "socket", "socket", "socket", "socket-open"]
    assert all(b["t"] >= start for b in got) and got == sorted(got, key=lambda b: b["t"])
    assert cloud.status_beats(paired_device.device_id, since=got[-1]["t"] + 1)["beats"] == []


def test_the_bench_token_is_a_known_secret(cloud: CloudControl) -> None:
    from harness.bdd.evidence import known_secrets

    assert cloud.token_file is not None
    token = cloud.bench_token()
    assert token and token == cloud.token_file.read_text().strip()
    assert token in known_secrets(cloud)

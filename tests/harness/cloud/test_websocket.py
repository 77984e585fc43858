"""The Phoenix-style status socket (c2c-api.md §3.14) over real TLS."""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection

from harness.cloud.control import CloudControl
from harness.cloud.testing import PairedDevice

from .conftest import status_socket, wait_until


def receive(ws: ClientConnection) -> dict:
    return json.loads(ws.recv(timeout=10))


@pytest.mark.parametrize("id_kind", ["device_id", "device_uuid"])
def test_join_heartbeat_and_status_push(cloud: CloudControl, paired_device: PairedDevice,
                                        id_kind: str) -> None:
    topic = f"devices:{getattr(paired_device, id_kind)}"
    with status_socket(cloud, paired_device.access_token) as ws:
        ws.send(json.dumps({"topic": topic, "event": "phx_join", "payload": {}, "ref": "1"}))
        assert receive(ws) == {"topic": topic, "event": "phx_reply", "ref": "1",
                               "payload": {"status": "ok", "response": {}}}
        ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": 2}))
        reply = receive(ws)
        assert reply["event"] == "phx_reply" and reply["ref"] == 2
        assert reply["payload"]["status"] == "ok"
        cloud.pause_device(paired_device.device_id)
        assert receive(ws) == {"topic": topic, "event": "status_updated", "ref": None,
                               "payload": {"status": "paused"}}
        cloud.resume_device(paired_device.device_id)
        assert receive(ws)["payload"] == {"status": "online"}
        session = cloud.websockets()[0]
        assert session["device_id"] == paired_device.device_id
        assert session["last_heartbeat_at"] and session["closed_at"] is None
    wait_until(lambda: cloud.websockets()[0]["closed_at"], what="the session to close")


def test_phoenix_v2_arrays_and_wrong_topic(cloud: CloudControl,
                                           paired_device: PairedDevice) -> None:
    with status_socket(cloud, paired_device.access_token) as ws:
        ws.send(json.dumps(["1", "1", "devices:someone-else", "phx_join", {}]))
        assert receive(ws) == ["1", "1", "devices:someone-else", "phx_reply",
                               {"status": "error", "response": {"reason": "unauthorized"}}]
        topic = f"devices:{paired_device.device_id}"
        ws.send(json.dumps(["2", "2", topic, "phx_join", {}]))
        assert receive(ws)[4]["status"] == "ok"
        ws.send("not json")
        ws.send(json.dumps([None, "3", "phoenix", "heartbeat", {}]))
        assert receive(ws) == [None, "3", "phoenix", "phx_reply",
                               {"status": "ok", "response": {}}]


def test_bad_token_is_refused(cloud: CloudControl) -> None:
    with pytest.raises(InvalidStatus) as info:
        status_socket(cloud, "nope")
    assert info.value.response.status_code == 403


def test_socket_keeps_device_online_and_times_out(cloud: CloudControl,
                                                  paired_device: PairedDevice) -> None:
    cloud.update_settings(websocket_timeout=1)
    with status_socket(cloud, paired_device.access_token) as ws:
        topic = f"devices:{paired_device.device_id}"
        ws.send(json.dumps({"topic": topic, "event": "phx_join", "payload": {}, "ref": "1"}))
        receive(ws)
        cloud.advance_clock(400)  # silent on HTTP for longer than the offline threshold
        assert next(d for d in cloud.devices())["status"] == "online"
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            while time.monotonic() - started < 10:
                ws.recv(timeout=10)
    session = wait_until(lambda: [s for s in cloud.websockets() if s["closed_at"]],
                         what="the session to close")[0]
    assert session["close_reason"] == "heartbeat timeout"
    assert next(d for d in cloud.devices())["status"] == "offline"


def test_revoke_closes_socket(cloud: CloudControl, paired_device: PairedDevice) -> None:
    with status_socket(cloud, paired_device.access_token) as ws:
        topic = f"devices:{paired_device.device_id}"
        ws.send(json.dumps({"topic": topic, "event": "phx_join", "payload": {}, "ref": "1"}))
        receive(ws)
        cloud.revoke_device(paired_device.device_id)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)


def test_heartbeat_status_mode_refuses_the_socket(cloud: CloudControl,
                                                  paired_device: PairedDevice) -> None:
    cloud.update_settings(status_mode="heartbeat")
    with pytest.raises(InvalidStatus) as info:
        status_socket(cloud, paired_device.access_token)
    assert info.value.response.status_code == 403

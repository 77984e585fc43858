"""Device endpoints: /v2/devices/me, heartbeat, health, channels, comments, trigger, versions."""

from __future__ import annotations

import httpx
import pytest

from harness.cloud.control import CloudControl
from harness.cloud.testing import PairedDevice
from harness.errors import CloudError
from harness.tls import ssl_context

from .conftest import assert_detailed, create_asset


def test_me_is_a_project_device(api: httpx.Client, cloud: CloudControl,
                                paired_device: PairedDevice) -> None:
    me = api.get("/v2/devices/me", headers=paired_device.headers)
    assert me.status_code == 200
    body = me.json()
    assert body["_type"] == "project_device" and body["id"] == paired_device.device_id
    assert body["project"]["id"] == paired_device.project_id
    assert body["project"]["name"] == "Testbed" and body["status"] == "online"
    assert body["last_known_firmware_version"] == "1.4.0"
    assert body["authorization"]["scopes"]["asset_create"] is True
    channel = body["channels"][0]
    assert channel["_type"] == "project_device_channel" and channel["external_index"] == 0
    assert channel["project_device_id"] == body["id"]


def test_rename_project_and_device_show_in_me(api: httpx.Client, cloud: CloudControl,
                                              paired_device: PairedDevice) -> None:
    cloud.rename_project(paired_device.project_id, "Renamed")
    cloud.rename_device(paired_device.device_id, "CAM B")
    body = api.get("/v2/devices/me", headers=paired_device.headers).json()
    assert body["project"]["name"] == "Renamed" and body["name"] == "CAM B"
    with pytest.raises(Exception, match="no project"):
        cloud.rename_project("nope", "x")


def test_rename_device_answers_the_row_and_refuses_bad_input(
        cloud: CloudControl, paired_device: PairedDevice) -> None:
    row = cloud.rename_device(paired_device.device_id, "CAM C")
    assert row["id"] == paired_device.device_id and row["name"] == "CAM C"
    assert [d["name"] for d in cloud.devices()] == ["CAM C"]
    with pytest.raises(CloudError, match="404: no such device"):
        cloud.rename_device("00000000-0000-4000-8000-000000000000", "x")
    with pytest.raises(CloudError, match="name is required"):
        cloud.rename_device(paired_device.device_id, "  ")
    with pytest.raises(CloudError, match="longer than 255"):
        cloud.rename_device(paired_device.device_id, "x" * 256)
    assert [d["name"] for d in cloud.devices()] == ["CAM C"]


def test_heartbeat_and_offline_threshold(api: httpx.Client, cloud: CloudControl,
                                         paired_device: PairedDevice) -> None:
    cloud.advance_clock(301)
    device = next(d for d in cloud.devices() if d["id"] == paired_device.device_id)
    assert device["status"] == "offline"
    answer = api.post("/v2/devices/heartbeat", headers=paired_device.headers)
    assert answer.status_code == 204 and answer.content == b""
    device = next(d for d in cloud.devices() if d["id"] == paired_device.device_id)
    assert device["status"] == "online"
    assert_detailed(api.post("/v2/devices/heartbeat"), 401, "Not Authorized")


def test_part_puts_are_not_heartbeats(api: httpx.Client, cloud: CloudControl,
                                      paired_device: PairedDevice) -> None:
    """c2c-api.md §5.4 [DOC]: uploading chunks to S3 does not keep a device online."""
    asset = create_asset(api, paired_device, name="a.mp4", filetype="video/mp4",
                         filesize=4).json()
    cloud.advance_clock(301)
    answer = api.put(asset["upload_urls"][0], content=b"data",
                     headers={"content-type": "video/mp4", "x-amz-acl": "private"})
    assert answer.status_code == 200
    assert cloud.ledger()[0]["state"] == "complete"
    device = next(d for d in cloud.devices() if d["id"] == paired_device.device_id)
    assert device["status"] == "offline"
    assert api.get("/v2/devices/me", headers=paired_device.headers).status_code == 200
    device = next(d for d in cloud.devices() if d["id"] == paired_device.device_id)
    assert device["status"] == "online"  # any API call does (§6)


def test_an_offline_device_still_uploads(api: httpx.Client, cloud: CloudControl,
                                         paired_device: PairedDevice) -> None:
    """c2c-api.md §6: offline is a UI state only; uploads are still allowed [INF]."""
    cloud.advance_clock(301)
    device = next(d for d in cloud.devices() if d["id"] == paired_device.device_id)
    assert device["status"] == "offline"
    asset = create_asset(api, paired_device, name="late.mp4", filetype="video/mp4", filesize=3)
    assert asset.status_code == 200, asset.text
    put = api.put(asset.json()["upload_urls"][0], content=b"abc",
                  headers={"content-type": "video/mp4", "x-amz-acl": "private"})
    assert put.status_code == 200 and cloud.ledger()[0]["state"] == "complete"


@pytest.mark.parametrize("path", ["/health", "/v2/health"])
def test_health(api: httpx.Client, path: str) -> None:
    answer = api.get(path)
    assert answer.status_code == 200 and answer.json() == {"ok": True}


def test_unknown_path_and_method(api: httpx.Client) -> None:
    assert_detailed(api.get("/v2/nothing"), 404)
    assert_detailed(api.get("/v2/devices/heartbeat"), 405)


# c2c-api.md §3.16: every endpoint of the summary, with what an unauthenticated call must get
SUMMARY = [("POST", "/v2/auth/device/code", 400), ("POST", "/v2/auth/token", 400),
           ("POST", "/v2/auth/revoke", 400), ("GET", "/v2/devices/me", 401),
           ("POST", "/v2/devices/heartbeat", 401), ("GET", "/health", 200),
           ("POST", "/v2/devices/assets", 401), ("POST", "/v2/assets", 401),
           ("POST", "/v2/devices/assets/{id}/realtime_upload/parts", 401),
           ("POST", "/v2/assets/{id}/realtime_upload/parts", 401),
           ("POST", "/v2/devices/assets/{id}/comments", 401), ("POST", "/v2/devices/channels", 401),
           ("POST", "/v2/devices/channels/{id}/disconnect", 401),
           ("POST", "/v2/devices/channels/disconnect", 401),
           ("POST", "/v2/devices/channels/{id}/inputs/0/trigger", 401)]


@pytest.mark.parametrize(("method", "path", "status"), SUMMARY, ids=[f"{m} {p}" for m, p, _ in SUMMARY])
def test_every_summary_endpoint_is_served(api: httpx.Client, method: str, path: str,
                                          status: int) -> None:
    """Routed (not 404/405): auth endpoints refuse an empty form, resource endpoints want a token."""
    answer = api.request(method, path.replace("{id}", "00000000-0000-0000-0000-000000000001"))
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize("path", ["/v2/devices/accounts",
                                  "/v2/devices/accounts/00000000-0000-0000-0000-000000000001/projects"])
def test_application_endpoints_are_not_served(api: httpx.Client, paired_device: PairedDevice,
                                              path: str) -> None:
    """§3.15: endpoints of C2C *applications*; a hardware device's token gets 404 here. GET /v2/me
    is the exception: some cameras call it [OBS], so it answers (test_auth.py)."""
    assert_detailed(api.get(path, headers=paired_device.headers), 404)
    assert_detailed(api.post("/v2/devices/connect?project_id=x", headers=paired_device.headers), 404)


def test_client_versions_recorded_and_strict_mode(api: httpx.Client, cloud: CloudControl,
                                                  paired_device: PairedDevice) -> None:
    for version in ("1.00", "2.0.0"):
        headers = {**paired_device.headers, "x-client-version": version}
        assert api.post("/v2/devices/heartbeat", headers=headers).status_code == 204
    no_header = {"Authorization": paired_device.headers["Authorization"]}
    with httpx.Client(base_url=cloud.api_url, verify=ssl_context(cloud.ca_bundle)) as bare:
        assert bare.post("/v2/devices/heartbeat", headers=no_header).status_code == 204
    device = next(d for d in cloud.devices() if d["id"] == paired_device.device_id)
    assert device["firmware_versions"] == ["1.4.0", "1.00", "2.0.0"]
    versions = [j["client_version"] for j in cloud.journal() if j["path"] ==
                "/v2/devices/heartbeat"]
    assert versions == ["1.00", "2.0.0", None]

    cloud.update_settings(strict_client_version=True)
    bad = api.post("/v2/devices/heartbeat", headers={**paired_device.headers,
                                                    "x-client-version": "1.00"})
    assert "not a semantic version" in assert_detailed(bad, 400)["errors"][0]["detail"]
    auth = api.post("/v2/auth/token", data={"grant_type": "refresh_token"},
                    headers={"x-client-version": "v1"})
    assert auth.status_code == 400 and auth.json()["error"] == "invalid_request"
    assert api.post("/v2/devices/heartbeat", headers=paired_device.headers).status_code == 204


def test_channels_connect_disconnect(api: httpx.Client, cloud: CloudControl,
                                     paired_device: PairedDevice) -> None:
    body = {"client_id": "mic-1", "device_model_id": "00000000-0000-0000-0000-0000000000aa"}
    added = api.post("/v2/devices/channels", json=body, headers=paired_device.headers)
    assert added.status_code == 200, added.text
    channel = added.json()
    assert channel["external_index"] == 1
    assert_detailed(api.post("/v2/devices/channels", json=body, headers=paired_device.headers),
                    409)
    assert_detailed(api.post("/v2/devices/channels", json={"client_id": "x"},
                             headers=paired_device.headers), 422)
    me = api.get("/v2/devices/me", headers=paired_device.headers).json()
    assert [c["external_index"] for c in me["channels"]] == [0, 1]
    created = create_asset(api, paired_device, name="a.wav", filetype="audio/wav", filesize=1,
                           channel=1)
    assert created.status_code == 200
    assert api.post(f"/v2/devices/channels/{channel['id']}/disconnect",
                    headers=paired_device.headers).status_code == 204
    assert_detailed(api.post(f"/v2/devices/channels/{channel['id']}/disconnect",
                             headers=paired_device.headers), 404)
    api.post("/v2/devices/channels", json={**body, "client_id": "mic-2"},
             headers=paired_device.headers)
    assert api.post("/v2/devices/channels/disconnect",
                    headers=paired_device.headers).status_code == 204
    me = api.get("/v2/devices/me", headers=paired_device.headers).json()
    assert [c["external_index"] for c in me["channels"]] == [0]


def test_comment_and_trigger(api: httpx.Client, cloud: CloudControl,
                             paired_device: PairedDevice) -> None:
    asset = create_asset(api, paired_device, name="a.mov", filetype="video/quicktime",
                         filesize=1).json()
    answer = api.post(f"/v2/devices/assets/{asset['id']}/comments",
                      json={"text": "good take", "timestamp": 24}, headers=paired_device.headers)
    assert answer.status_code == 200 and answer.json()["text"] == "good take"
    assert_detailed(api.post(f"/v2/devices/assets/{asset['id']}/comments", json={},
                             headers=paired_device.headers), 400)  # §3.11 [DOC]: 400
    assert_detailed(api.post("/v2/devices/assets/00000000-0000-0000-0000-000000000000/comments",
                             json={"text": "x"}, headers=paired_device.headers), 404)
    channel = api.get("/v2/devices/me", headers=paired_device.headers).json()["channels"][0]
    trigger = api.post(f"/v2/devices/channels/{channel['id']}/inputs/0/trigger",
                       json={"action_type": "single_press"}, headers=paired_device.headers)
    assert trigger.status_code == 204
    assert_detailed(api.post("/v2/devices/channels/nope/inputs/0/trigger", json={},
                             headers=paired_device.headers), 404)

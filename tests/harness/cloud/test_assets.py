"""Asset creation (c2c-api.md §3.8, §5.2, §5.10): both paths, part plans, pause, bad input."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from harness.cloud.control import CloudControl
from harness.cloud.runner import EmulatorProcess
from harness.cloud.testing import PairedDevice

from .conftest import assert_detailed, create_asset

MIB = 1024 * 1024


@pytest.mark.parametrize("path", ["/v2/devices/assets", "/v2/assets"])
def test_create_basic_asset_json(api: httpx.Client, cloud: CloudControl,
                                 paired_device: PairedDevice, path: str) -> None:
    answer = create_asset(api, paired_device, path, name="C2C_TEST_CLIP.mp4",
                          filetype="video/mp4", filesize=21_136_250, offset=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["_type"] == "file" and body["name"] == "C2C_TEST_CLIP.mp4"
    assert body["filesize"] == 21_136_250 and body["upload_completed_at"] is None
    assert len(body["upload_urls"]) == 2  # ceil(filesize / 20 MiB): the guide's example
    for n, url in enumerate(body["upload_urls"], 1):
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == cloud.api_url
        query = parse_qs(parts.query)
        assert query["x-amz-meta-part_number"] == [str(n)]
        assert query["X-Amz-Expires"] == ["86400"]
        assert query["X-Amz-SignedHeaders"] == ["content-type;host;x-amz-acl"]
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    row = cloud.ledger(paired_device.device_id)[0]
    assert row["asset_id"] == body["id"] and row["state"] == "created"
    assert row["parts_expected"] == 2 and row["offset"] == 10


def test_create_urlencoded(api: httpx.Client, paired_device: PairedDevice) -> None:
    answer = api.post("/v2/assets", data={"name": "IMG_0001.JPG", "filetype": "image/jpeg",
                                          "filesize": "1000", "offset": "0", "parts": "1",
                                          "channel": "0"}, headers=paired_device.headers)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["upload_urls"]) == 1


@pytest.mark.parametrize(("filesize", "parts", "expected"), [
    (0, None, 1), (1, None, 1), (20 * MIB, None, 1), (20 * MIB + 1, None, 2),
    (50_645_990, None, 3), (30 * MIB, 2, 2), (30 * MIB, 3, 3), (30 * MIB, 7, 2),
    (12 * MIB, 2, 2), (12 * MIB, 20000, 1), (100, 5, 1), (5 * MIB, 1, 1),
])
def test_part_plan(api: httpx.Client, cloud: CloudControl, paired_device: PairedDevice,
                   filesize: int, parts: int | None, expected: int) -> None:
    body = {"name": "a.mov", "filetype": "video/quicktime", "filesize": filesize}
    if parts is not None:
        body["parts"] = parts
    answer = create_asset(api, paired_device, **body)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["upload_urls"]) == expected


def test_tree_path_uses_capture_date_type_and_device(api: httpx.Client, cloud: CloudControl,
                                                     paired_device: PairedDevice) -> None:
    day = 24 * 3600
    cases = [("A.mov", "video/quicktime", "VIDEO"), ("B.wav", "audio/wav", "AUDIO"),
             ("C.jpeg", "image/jpeg", "STILLS"), ("D.pdf", "application/pdf", "DATA"),
             ("E.bin", "video/x-custom", "VIDEO"), ("../../x", "application/octet-stream", "DATA")]
    for name, filetype, _kind in cases:
        answer = create_asset(api, paired_device, name=name, filetype=filetype, filesize=1,
                              offset=3 * day)
        assert answer.status_code == 200, answer.text
    state_now = cloud.state()["now"]
    day_name = dt.datetime.fromtimestamp(state_now - 3 * day, dt.UTC).strftime("%Y_%m_%d")
    rows = {r["name"]: r for r in cloud.assets(paired_device.device_id)}
    assert rows["A.mov"]["tree_path"] == (
        f"Cloud Devices/{day_name}/VIDEO/{paired_device.name}/A.mov")
    for name, _filetype, kind in cases:
        assert rows[name]["tree_path"].split("/")[2] == kind, name
    # The name is kept as given; the tree path cannot climb out of the device folder.
    assert rows["../../x"]["tree_path"].endswith(f"/{paired_device.name}/.._.._x")


def test_unicode_and_spaces_are_kept(api: httpx.Client, cloud: CloudControl,
                                     paired_device: PairedDevice) -> None:
    name = "Szene 1 – Ünïcødé 日本語 🎬.mov"
    answer = create_asset(api, paired_device, name=name, filetype="video/quicktime", filesize=3)
    assert answer.status_code == 200 and answer.json()["name"] == name
    assert cloud.assets()[0]["name"] == name


BAD_BODIES = [
    ({"filetype": "video/mp4", "filesize": 10}, 422, "name is required"),
    ({"name": "", "filetype": "video/mp4", "filesize": 10}, 422, "name is required"),
    ({"name": "a.mp4", "filesize": 10}, 422, "filetype is required"),
    ({"name": "a.mp4", "filetype": "not a mime", "filesize": 10}, 422, "MIME"),
    ({"name": "a.mp4", "filetype": "video/mp4"}, 422, "filesize is required"),
    ({"name": "a.mp4", "filetype": "video/mp4", "filesize": -1}, 422, ">= 0"),
    ({"name": "a.mp4", "filetype": "video/mp4", "filesize": 10**20}, 422, "limit"),
    ({"name": "a.mp4", "filetype": "video/mp4", "filesize": "ten"}, 422, "integer"),
    ({"name": "a.mp4", "filetype": "video/mp4", "filesize": True}, 422, "boolean"),
    ({"name": "a.mp4", "filetype": "video/mp4", "filesize": 1.5}, 422, "integer"),
    ({"name": 7, "filetype": "video/mp4", "filesize": 1}, 422, "string"),
    ({"name": "x" * 10_000, "filetype": "video/mp4", "filesize": 1}, 422, "255"),
    ({"name": "a\x00b.mp4", "filetype": "video/mp4", "filesize": 1}, 422, "control"),
    ({"name": "a\x1fb.mp4", "filetype": "video/mp4", "filesize": 1}, 422, "control"),
    ({"name": "a\x7fb.mp4", "filetype": "video/mp4", "filesize": 1}, 422, "control"),
    ({"name": "a.mp4", "filetype": "video/mp4", "filesize": 1, "offset": "soon"}, 422, "number"),
    ({"name": "a.mp4", "filetype": "video/mp4", "filesize": 1, "offset": 1e300}, 422, "century"),
    ({"name": "a.mp4", "filetype": "video/mp4", "filesize": 1, "channel": 101}, 422, "channel"),
    ({"name": "a.mp4", "filetype": "video/mp4", "filesize": 1, "channel": 5}, 422, "channel"),
    ({"name": "a.mp4", "filetype": "video/mp4", "filesize": 1, "parts": 0}, 422, "parts"),
    ({"name": "a.mp4", "filetype": "video/mp4", "filesize": 1, "parts": "x"}, 422, "parts"),
    ({"name": "a.mp4", "filetype": "video/mp4", "is_realtime_upload": "yes"}, 422, "boolean"),
]


@pytest.mark.parametrize(("body", "status", "words"), BAD_BODIES)
def test_bad_asset_bodies(api: httpx.Client, cloud: CloudControl, paired_device: PairedDevice,
                          body: dict, status: int, words: str) -> None:
    answer = create_asset(api, paired_device, **body)
    detail = assert_detailed(answer, status)["errors"][0]["detail"]
    assert words in detail
    assert cloud.assets() == []


@pytest.mark.parametrize(("content", "ctype", "status"), [
    (b"{not json", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b"\xff\xfe\x00", "application/json", 400),
    (b'"just a string"', "application/json", 400),
    (b"name=a.mov&filesize=%ZZ", "application/x-www-form-urlencoded", 422),
    # python-multipart reads an unterminated part leniently: the fields are then incomplete.
    (b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nunterminated",
     "multipart/form-data; boundary=b", 422),
])
def test_malformed_bodies_are_4xx(api: httpx.Client, cloud: CloudControl,
                                  paired_device: PairedDevice, content: bytes,
                                  ctype: str, status: int) -> None:
    answer = api.post("/v2/devices/assets", content=content,
                      headers={**paired_device.headers, "content-type": ctype})
    assert_detailed(answer, status)
    assert cloud.assets() == []
    assert api.get("/health").status_code == 200


def test_realtime_via_form_is_refused(api: httpx.Client, paired_device: PairedDevice) -> None:
    answer = api.post("/v2/devices/assets", headers=paired_device.headers, data={
        "name": "a.mp4", "filetype": "video/mp4", "is_realtime_upload": "true"})
    assert "JSON" in assert_detailed(answer, 400)["errors"][0]["detail"]


def test_unknown_fields_are_kept(api: httpx.Client, cloud: CloudControl,
                                 paired_device: PairedDevice) -> None:
    answer = create_asset(api, paired_device, name="a.mov", filetype="video/quicktime",
                          filesize=1, reel_name="A001")
    assert answer.status_code == 200
    assert cloud.ledger()[0]["extra"] == {"reel_name": "A001"}


def test_without_token_401(api: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        answer = api.post("/v2/devices/assets", json={"name": "a"}, headers=headers)
        assert_detailed(answer, 401, "Not Authorized")
        assert answer.json()["errors"][0]["detail"] == "You are not allowed to access that resource"


def test_pause_window_by_capture_time(api: httpx.Client, cloud: CloudControl,
                                      paired_device: PairedDevice) -> None:
    body = {"name": "a.mov", "filetype": "video/quicktime", "filesize": 1}
    cloud.advance_clock(100)
    cloud.pause_device(paired_device.device_id)
    cloud.advance_clock(100)  # paused 100 s ago
    paused = create_asset(api, paired_device, **body, offset=10)
    assert_detailed(paused, 409, "Channel Paused")
    assert paused.json()["errors"][0]["detail"] == (
        "The channel you're uploading from is currently paused.")
    assert create_asset(api, paired_device, **body, offset=150).status_code == 200  # before
    me = api.get("/v2/devices/me", headers=paired_device.headers).json()
    assert me["status"] == "paused"
    cloud.advance_clock(50)
    cloud.resume_device(paired_device.device_id)
    cloud.advance_clock(10)
    # Captured inside the window (60 s ago = while paused) is still refused after resume ...
    assert_detailed(create_asset(api, paired_device, **body, offset=60), 409, "Channel Paused")
    # ... captured after resume is accepted.
    assert create_asset(api, paired_device, **body, offset=5).status_code == 200
    windows = next(d for d in cloud.devices() if d["id"] == paired_device.device_id)
    assert len(windows["pause_windows"]) == 1 and windows["pause_windows"][0]["end"]


def test_negative_offset_abs_or_strict(api: httpx.Client, cloud: CloudControl,
                                       paired_device: PairedDevice) -> None:
    body = {"name": "a.mp4", "filetype": "video/mp4", "filesize": 1, "offset": -10}
    assert create_asset(api, paired_device, **body).status_code == 200
    assert cloud.ledger()[0]["offset"] == 10
    cloud.update_settings(offset_sign="strict")
    assert_detailed(create_asset(api, paired_device, **body), 400)


def test_legacy_paths_can_be_switched_off(api: httpx.Client, cloud: CloudControl,
                                          paired_device: PairedDevice) -> None:
    cloud.update_settings(legacy_paths=False)
    body = {"name": "a.mp4", "filetype": "video/mp4", "filesize": 1}
    assert_detailed(create_asset(api, paired_device, "/v2/assets", **body), 404)
    assert create_asset(api, paired_device, **body).status_code == 200


def test_upload_base_url_setting(api: httpx.Client, cloud: CloudControl,
                                 paired_device: PairedDevice) -> None:
    cloud.update_settings(upload_base_url="https://127.0.0.1:9/prefix")
    answer = create_asset(api, paired_device, name="a.mp4", filetype="video/mp4", filesize=1)
    assert answer.json()["upload_urls"][0].startswith("https://127.0.0.1:9/prefix/s3/parts/")


def test_nothing_written_outside_data_dir(api: httpx.Client, cloud: CloudControl,
                                          cloud_process: EmulatorProcess,
                                          paired_device: PairedDevice, tmp_path: Path) -> None:
    before = set(os.listdir(cloud_process.data_dir.parent))
    for name in ("../../x", "/etc/passwd", "..\\..\\win", "./.hidden", "a/b/c.mov"):
        created = create_asset(api, paired_device, name=name, filetype="video/mp4", filesize=3)
        assert created.status_code == 200, created.text
        url = created.json()["upload_urls"][0]
        assert api.put(url, content=b"abc", headers={"content-type": "video/mp4",
                                                     "x-amz-acl": "private"}).status_code == 200
    assert set(os.listdir(cloud_process.data_dir.parent)) == before
    files = [p for p in (cloud_process.data_dir / "blobs").rglob("*") if p.is_file()]
    assert files and all(p.resolve().is_relative_to(cloud_process.data_dir) for p in files)
    assert not any(".." in p.name or "passwd" in p.name for p in files)

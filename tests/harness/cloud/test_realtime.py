"""Real-time (growing file) uploads: c2c-api.md §1.4, §3.10, §5.7."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from harness.cloud.control import CloudControl
from harness.cloud.testing import PairedDevice

from .conftest import assert_detailed, create_asset

MIB = 1024 * 1024
MIN = 5 * MIB
HEADERS = {"content-type": "video/mp4", "x-amz-acl": "private"}


def realtime_asset(api: httpx.Client, device: PairedDevice, **body: object) -> dict:
    body = {"filetype": "video/mp4", "is_realtime_upload": True, **body}
    if "name" not in body and "extension" not in body:
        body["name"] = "LIVE.mp4"
    answer = create_asset(api, device, **body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def register(api: httpx.Client, device: PairedDevice, asset_id: str, parts: list[dict],
             path: str = "/v2/devices/assets", **extra: object) -> httpx.Response:
    return api.post(f"{path}/{asset_id}/realtime_upload/parts", headers=device.headers,
                    json={"parts": parts, **extra})


def part(number: int, size: int, final: bool = False) -> dict:
    return {"number": number, "size": size, "is_final": final}


def test_create_answer_has_no_urls(api: httpx.Client, paired_device: PairedDevice) -> None:
    body = realtime_asset(api, paired_device)
    assert set(body) == {"id", "name"} and body["name"] == "LIVE.mp4"
    placeholder = realtime_asset(api, paired_device, extension=".mp4", channel=0, offset=-10)
    assert placeholder["name"] == "[new file].mp4"


@pytest.mark.parametrize("path", ["/v2/devices/assets", "/v2/assets"])
def test_sparse_parts_any_order_concatenate_ascending(api: httpx.Client, cloud: CloudControl,
                                                      paired_device: PairedDevice,
                                                      path: str) -> None:
    asset = realtime_asset(api, paired_device, extension=".mp4")
    one, three, last = os.urandom(MIN), os.urandom(MIN + 7), os.urandom(1234)
    first = register(api, paired_device, asset["id"], [part(3, len(three)), part(1, len(one))],
                     path)
    assert first.status_code == 200, first.text
    url3, url1 = first.json()["upload_urls"]
    assert api.put(url3, content=three, headers=HEADERS).status_code == 200
    total = len(one) + len(three) + len(last)
    final = register(api, paired_device, asset["id"], [part(7, len(last), True)], path,
                     asset_filesize=total, asset_name="A001_C001.mp4")
    assert final.status_code == 200, final.text
    assert api.put(final.json()["upload_urls"][0], content=last, headers=HEADERS).status_code == 200
    assert cloud.ledger()[0]["state"] == "uploading"  # part 1 still missing
    assert api.put(url1, content=one, headers=HEADERS).status_code == 200
    row = cloud.assets()[0]
    assert row["state"] == "complete" and row["realtime"] and row["filesize"] == total
    assert row["sha256"] == hashlib.sha256(one + three + last).hexdigest()
    assert row["name"] == "A001_C001.mp4" and row["tree_path"].endswith("/A001_C001.mp4")


def test_reregistering_a_part_gives_fresh_url_last_put_wins(api: httpx.Client,
                                                             cloud: CloudControl,
                                                             paired_device: PairedDevice) -> None:
    asset = realtime_asset(api, paired_device)
    header_v1, header_v2, tail = os.urandom(MIN), os.urandom(MIN), os.urandom(10)
    url_a = register(api, paired_device, asset["id"], [part(1, MIN)]).json()["upload_urls"][0]
    assert api.put(url_a, content=header_v1, headers=HEADERS).status_code == 200
    url_b = register(api, paired_device, asset["id"], [part(1, MIN)]).json()["upload_urls"][0]
    assert url_a != url_b
    final = register(api, paired_device, asset["id"], [part(2, 10, True)],
                     asset_filesize=MIN + 10).json()["upload_urls"][0]
    assert api.put(final, content=tail, headers=HEADERS).status_code == 200
    assert cloud.ledger()[0]["state"] == "uploading"  # the re-registered part 1 is awaited
    assert api.put(url_b, content=header_v2, headers=HEADERS).status_code == 200
    row = cloud.ledger()[0]
    assert row["state"] == "complete"
    assert row["sha256"] == hashlib.sha256(header_v2 + tail).hexdigest()


def test_name_kept_when_not_placeholder(api: httpx.Client, cloud: CloudControl,
                                        paired_device: PairedDevice) -> None:
    asset = realtime_asset(api, paired_device, name="KEEP.mp4")
    answer = register(api, paired_device, asset["id"], [part(1, 5, True)], asset_filesize=5,
                      asset_name="OTHER.mp4")
    assert answer.status_code == 200
    assert cloud.assets()[0]["name"] == "KEEP.mp4"


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"parts": []}, 400, "non-empty"),
    ({"parts": "x"}, 400, "non-empty"),
    ({}, 400, "non-empty"),
    ({"parts": [part(1, MIN - 1)]}, 400, "minimum"),
    ({"parts": [part(0, MIN)]}, 400, "1..10000"),
    ({"parts": [part(10001, MIN)]}, 400, "1..10000"),
    ({"parts": [part(-3, MIN)]}, 400, "1..10000"),
    ({"parts": [part(1, 6 * 1024**3)]}, 400, "5 GiB"),
    ({"parts": [part(1, 5, True)]}, 400, "asset_filesize is required"),
    ({"parts": [part(1, 5, True)], "asset_filesize": 6}, 400, "sum"),
    ({"parts": [part(1, 5, True)], "asset_filesize": 0}, 400, "asset_filesize"),
    ({"parts": [part(1, 0, True)], "asset_filesize": 1}, 400, ">= 1"),
    ({"parts": [part(1, MIN), part(1, MIN)]}, 400, "twice"),
    ({"parts": [part(1, 5, True), part(2, 5, True)], "asset_filesize": 10}, 400, "one part"),
    ({"parts": [part(2, 5, True), part(3, MIN)], "asset_filesize": 10}, 400, "after"),
    ({"parts": [{"number": "1", "size": MIN, "is_final": False}]}, 400, "integer"),
    ({"parts": [{"number": 1, "size": MIN}]}, 400, "needs"),
    ({"parts": [7]}, 400, "object"),
    ({"parts": [part(1, 5, True)], "asset_filesize": 5, "asset_name": "noext"}, 400, "extension"),
])
@pytest.mark.parametrize("path", ["/v2/devices/assets", "/v2/assets"])
def test_part_rules(api: httpx.Client, cloud: CloudControl, paired_device: PairedDevice,
                    body: dict, status: int, words: str, path: str) -> None:
    """Every validation error on realtime parts is 400 (c2c-api.md §3.10 [SPEC]), legacy twin too."""
    asset = realtime_asset(api, paired_device)
    answer = api.post(f"{path}/{asset['id']}/realtime_upload/parts",
                      headers=paired_device.headers, json=body)
    assert words in assert_detailed(answer, status, "Bad Request")["errors"][0]["detail"]


def test_parts_after_final_are_refused(api: httpx.Client, paired_device: PairedDevice) -> None:
    asset = realtime_asset(api, paired_device)
    assert register(api, paired_device, asset["id"], [part(2, 3, True)],
                    asset_filesize=3).status_code == 200
    assert_detailed(register(api, paired_device, asset["id"], [part(3, MIN)]), 400)


def test_not_realtime_unknown_and_foreign_assets(api: httpx.Client, cloud: CloudControl,
                                                 paired_device: PairedDevice) -> None:
    from harness.cloud.testing import pair_device

    basic = create_asset(api, paired_device, name="a.mp4", filetype="video/mp4",
                         filesize=1).json()
    assert_detailed(register(api, paired_device, basic["id"], [part(1, MIN)]), 400)
    assert_detailed(register(api, paired_device, "00000000-0000-0000-0000-000000000000",
                             [part(1, MIN)]), 404)
    assert_detailed(register(api, paired_device, "not-a-uuid", [part(1, MIN)]), 404)
    other = pair_device(cloud, client_id="other-cam", project_id=paired_device.project_id)
    mine = realtime_asset(api, paired_device)
    assert_detailed(register(api, other, mine["id"], [part(1, MIN)]), 404)
    bad = api.post(f"/v2/devices/assets/{mine['id']}/realtime_upload/parts",
                   headers={**paired_device.headers, "content-type": "application/json"},
                   content=b"{broken")
    assert_detailed(bad, 400)


@pytest.mark.parametrize(("body", "words"), [
    ({"name": "noext"}, "extension"),
    ({"extension": "mp4"}, "extension must look like"),
    ({"name": "a.mov", "extension": ".mp4"}, "does not match"),
    ({"name": "a.mp4", "filesize": 10}, "filesize must be omitted"),
    ({"name": "a.mp4", "filetype": None}, "filetype is required"),
])
def test_realtime_create_rules(api: httpx.Client, paired_device: PairedDevice, body: dict,
                               words: str) -> None:
    answer = create_asset(api, paired_device, **{"filetype": "video/mp4",
                                                 "is_realtime_upload": True, **body})
    assert words in assert_detailed(answer, 422)["errors"][0]["detail"]

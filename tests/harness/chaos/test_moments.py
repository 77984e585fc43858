"""The moments a fault waits for, read from a real emulator over HTTPS: only an answered create
(not a refused one) is `at-create`, only a 200 from the token endpoint is `at-refresh`, only
what the cloud answered after the wait began counts, and `mid-upload` means between parts."""

from __future__ import annotations

import time

import httpx

from harness.chaos.moments import MomentWatch, between_parts, journal_head
from harness.chaos.schedule import Step
from harness.cloud.control import CloudControl
from harness.cloud.testing import PairedDevice
from harness.faults.vocabulary import FaultTargets, inject

ASSET = {"name": "A001.jpg", "filetype": "image/jpeg", "filesize": 10, "offset": 1}


def _no_rows() -> list[dict[str, object]]:
    return []


def _watch(cloud: CloudControl, when: str) -> tuple[MomentWatch, Step]:
    watch = MomentWatch(cloud, _no_rows, cursor=journal_head(cloud, 0))
    return watch, Step(at=0.0, fault="power:cycle", when=when)


def test_a_create_counts_once_answered_and_a_refused_one_does_not(
        cloud: CloudControl, api: httpx.Client, paired_device: PairedDevice) -> None:
    assert api.post("/v2/devices/assets", json=ASSET, headers=paired_device.headers).status_code == 200
    watch, step = _watch(cloud, "at-create")
    pending = watch.wait_for(step, 0, now=0.0)
    assert watch.reached(pending) is None  # the create before the wait began does not count
    inject("api:conflict-slow-down x1", FaultTargets(cloud=cloud))
    assert api.post("/v2/devices/assets", json=ASSET, headers=paired_device.headers).status_code == 409
    assert watch.reached(pending) is None  # refused: nothing was created
    assert api.post("/v2/devices/assets", json={**ASSET, "name": "A002.jpg"},
                    headers=paired_device.headers).status_code == 200
    seen = watch.reached(pending)
    assert seen is not None and "after the cloud answered a create (200)" in seen.note
    assert seen.answered_at is not None and abs(seen.answered_at - time.time()) < 30


def test_a_refresh_counts_once_answered_200(cloud: CloudControl, api: httpx.Client,
                                            paired_device: PairedDevice) -> None:
    watch, step = _watch(cloud, "at-refresh")
    pending = watch.wait_for(step, 0, now=0.0)
    form = {"grant_type": "refresh_token", "client_id": paired_device.client_id,
            "client_secret": paired_device.client_secret, "refresh_token": "not-a-token"}
    assert api.post("/v2/auth/token", data=form).status_code >= 400
    assert api.post("/v2/devices/assets", json=ASSET, headers=paired_device.headers).status_code == 200
    assert watch.reached(pending) is None  # a refused refresh and a create are not a refresh
    answer = api.post("/v2/auth/token", data={**form, "refresh_token": paired_device.refresh_token})
    assert answer.status_code == 200, answer.text
    seen = watch.reached(pending)
    assert seen is not None and "token refresh (200)" in seen.note
    assert pending.deadline == 6.0


def test_mid_upload_is_between_stored_parts() -> None:
    assert between_parts({"parts_expected": 3, "parts_received": 2})
    assert not between_parts({"parts_expected": 3, "parts_received": 1})  # one part: not yet
    assert not between_parts({"parts_expected": 3, "parts_received": 3})
    assert between_parts({"parts_expected": 2, "parts_received": 1})
    assert not between_parts({"parts_expected": 1, "parts_received": 0})
    assert not between_parts({"parts_expected": 3, "parts_received": 2, "completed_at": 5.0})

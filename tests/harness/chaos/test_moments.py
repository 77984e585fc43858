"""The moments a fault waits for, on a real emulator over HTTPS shared by two devices: `at-create`
and `at-refresh` are the lane's device's request reaching the cloud, held unanswered until the
watch lets it go (another device's requests pass untouched); `mid-upload` means between parts."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from harness.chaos.history import FaultRecord
from harness.chaos.moments import MomentWatch, Pending, Seen, between_parts
from harness.chaos.runner import ScheduleRun
from harness.chaos.schedule import Step
from harness.chaos.shared_cloud import LaneCloud
from harness.cloud.control import CloudControl
from harness.cloud.testing import PairedDevice, pair_device
from tests.waiting import wait_until

ASSET = {"name": "A001.jpg", "filetype": "image/jpeg", "filesize": 10, "offset": 1}


def _no_rows() -> list[dict[str, object]]:
    return []


def _watch(cloud: CloudControl, device: PairedDevice, when: str) -> tuple[MomentWatch, Pending]:
    watch = MomentWatch(LaneCloud(cloud, device.client_id), _no_rows)
    return watch, watch.wait_for(Step(at=0.0, fault="power:cycle", when=when), 0, now=0.0)


def _seen(watch: MomentWatch, pending: Pending) -> Seen | None:
    pending.next_look = 0.0
    return watch.reached(pending)


def _refresh(api: httpx.Client, device: PairedDevice) -> httpx.Response:
    return api.post("/v2/auth/token", data={"grant_type": "refresh_token", "client_id": device.client_id,
                                            "client_secret": device.client_secret,
                                            "refresh_token": device.refresh_token})


def test_a_create_of_the_lanes_device_is_held_until_the_watch_lets_it_go(
        cloud: CloudControl, api: httpx.Client, paired_device: PairedDevice) -> None:
    other = pair_device(cloud, project_name="neighbour")
    watch, pending = _watch(cloud, paired_device, "at-create")
    assert api.post("/v2/devices/assets", json=ASSET, headers=other.headers).status_code == 200
    assert _seen(watch, pending) is None  # the neighbour's create passed and does not count
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(api.post, "/v2/devices/assets", json={**ASSET, "name": "A002.jpg"},
                           headers=paired_device.headers)
        seen = wait_until(lambda: _seen(watch, pending), what="the create's arrival")
        assert "after a create reached the cloud, its answer held" in seen.note
        assert seen.arrived_at is not None and abs(seen.arrived_at - time.time()) < 30
        # made already, its answer still held (the watch may see the arrival before the row is written)
        wait_until(lambda: [r["name"] for r in cloud.ledger(paired_device.device_id)] == ["A002.jpg"],
                   what="the held create's asset in the cloud's ledger")
        assert not held.done()
        watch.finish(pending)
        assert held.result(timeout=10).status_code == 200
    assert cloud.faults() == []


def test_a_refresh_of_the_lanes_device_is_held_and_a_neighbours_is_not(
        cloud: CloudControl, api: httpx.Client, paired_device: PairedDevice) -> None:
    other = pair_device(cloud, project_name="neighbour")
    watch, pending = _watch(cloud, paired_device, "at-refresh")
    assert _refresh(api, other).status_code == 200
    assert _seen(watch, pending) is None
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(_refresh, api, paired_device)
        seen = wait_until(lambda: _seen(watch, pending), what="the refresh's arrival")
        assert "token refresh reached the cloud" in seen.note
        assert not held.done()
        watch.finish(pending)
        answer = held.result(timeout=10)
    assert answer.status_code == 200 and answer.json()["refresh_token"] != paired_device.refresh_token
    assert pending.deadline == 6.0


def test_a_moment_that_never_comes_leaves_no_rule(cloud: CloudControl, paired_device: PairedDevice) -> None:
    watch, pending = _watch(cloud, paired_device, "at-create")
    assert [r["kind"] for r in cloud.faults(paired_device.client_id)] == ["hold"]
    assert _seen(watch, pending) is None
    watch.finish(pending)
    watch.finish(pending)  # twice (the lane's rules may be cleared already): no error
    assert cloud.faults() == []


def test_mid_upload_is_between_stored_parts() -> None:
    assert between_parts({"parts_expected": 3, "parts_received": 2})
    assert not between_parts({"parts_expected": 3, "parts_received": 1})  # one part: not yet
    assert not between_parts({"parts_expected": 3, "parts_received": 3})
    assert between_parts({"parts_expected": 2, "parts_received": 1})
    assert not between_parts({"parts_expected": 1, "parts_received": 0})
    assert not between_parts({"parts_expected": 3, "parts_received": 2, "completed_at": 5.0})


def test_a_cut_is_only_aimed_if_the_answer_was_still_held_when_it_began() -> None:
    """A hold that timed out (or held nothing) before the cut: the cut did not land between the
    cloud's work and the device's knowing of it, so it did not act as drawn (inconclusive)."""
    def cut(released: float | None) -> FaultRecord:
        record = FaultRecord(step=1, fault="power:cycle", started_at=100.0, stopped_at=101.0, fired=True,
                             note="30 ms after a create reached the cloud, its answer held", aimed_at=99.97)
        ScheduleRun._answer_went(record, released)
        return record

    held = cut(101.01)
    assert held.fired is True and held.answered_at == 101.01
    early = cut(99.5)
    assert early.fired is False and "went 0.50 s before it" in early.note
    assert cut(None).fired is False

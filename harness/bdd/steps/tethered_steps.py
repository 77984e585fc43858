"""Steps of features/tethered_camera.feature: a camera tethered over PTP to the device.

The camera (libgphoto2's virtual camera on the bench) lives inside the device process, so
the shutter is a user action on the device (`control("shutter", count=N)`) or the
operator's finger. Ground truth is the camera side: the frame the camera serves (the
virtual camera's card, every shot a copy of it), hashed by the bench, never the device's
copy in its local storage (a rig that damages its copy would upload a matching hash), and
the number of times the bench fired the shutter: one press, one frame, one asset. The
device names the frames (the virtual camera reuses GPH_0099... after every restart, so
the rig stores a new frame as GPH_0099_1.JPG): names come from the device, the count and
the bytes from the camera.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pytest_bdd import given, parsers, then, when

from harness.bdd.bench import Bench, Capture
from harness.bdd.steps.common import (
    control_or_operator,
    device_status,
    status_or_operator,
    wait_until,
)
from harness.bdd.steps.device_steps import _paired_device
from harness.bdd.steps.oracle_steps import _all_intact, require
from harness.bdd.steps.power_steps import _cut, _restore
from harness.certify.ledger import window_start
from harness.errors import BenchFailure, DeliveryFailure, OperatorUnavailable

# The device has settled when nothing of this scenario is in flight and neither the cloud nor the
# device showed anything new for this long: a frame fetched again after a restart arrives late.
SETTLE_QUIET_S = 5.0
SETTLE_TIMEOUT_S = 120.0


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@runtime_checkable
class CameraCard(Protocol):
    """A device whose tethered camera's card the bench can read (the virtual camera's)."""

    vcamera_dir: Path


def camera_frame(bench: Bench) -> tuple[str, int]:
    """(SHA-256, size) of the frame the camera shoots, read from the camera's card."""
    device = bench.device
    if not isinstance(device, CameraCard):
        raise OperatorUnavailable("the bench cannot read the tethered camera's card: the frames' ground truth "
                                  "must come from the camera, an operator has to compare them")
    card = sorted(p for p in Path(device.vcamera_dir).glob("*") if p.suffix.lower() in {".jpg", ".jpeg"})
    if len(card) != 1:
        raise BenchFailure(f"the virtual camera's card {device.vcamera_dir} holds {len(card)} JPEGs, not one")
    return _sha256(card[0]), card[0].stat().st_size


def _camera_connected(status: dict[str, Any]) -> bool:
    return any(s.get("kind") == "tether" and s.get("state") == "connected" for s in (status.get("sources") or []))


@given(parsers.parse('a paired "{name}" device with a tethered virtual camera'))
def _tethered(bench: Bench, name: str) -> None:
    """A paired device with a tethered camera. A device without the `tether` capability never gets
    here: the checklist's `[scenario_applies]` skips the scenario as not applicable first."""
    _paired_device(bench)


@when(parsers.parse("the camera captures {count:d} photos"))
def _shoot(bench: Bench, count: int) -> None:
    """Fire the shutter `count` times; each downloaded frame joins the capture manifest."""
    if bench.has_status:  # after a boot the camera needs a moment to be detected and claimed
        wait_until(lambda: _camera_connected(device_status(bench)), 60, "the tethered camera to connect")
    # every file the device already lists (earlier scenarios' too) is not a new frame
    known = {c.name for c in bench.state.captures} | {str(f.get("name")) for f in device_status(bench).get("files", [])}
    control_or_operator(bench, "shutter", f"Take {count} photos on the tethered camera. Done?", count=count)
    bench.state.tether_shots += count

    def new_frames() -> list[dict[str, Any]] | None:
        files = [f for f in device_status(bench).get("files", []) if f.get("name") not in known and f.get("path")]
        return files if len(files) >= count else None
    sha, size = camera_frame(bench)  # what the camera shot: the same bytes every frame
    for f in wait_until(new_frames, 60, f"{count} new frames on the device")[:count]:
        bench.state.captures.append(Capture(name=str(f["name"]), path=Path(str(f["path"])), sha256=sha,
                                            size=size, captured_at=time.time(), kind="jpg"))


@when("the rig loses power while a file is uploading")
def _cut_uploading(bench: Bench) -> None:
    """Abrupt power loss once a part PUT has reached the cloud."""
    wait_until(lambda: any(r.get("method") == "PUT" for r in bench.journal()), 120, "an upload in progress")
    _cut(bench)
    captured = {c.name for c in bench.state.captures}
    if captured and captured <= {str(r.get("name")) for r in _window_assets(bench) if _delivered(r)}:
        bench.exercised("the power cut came after every frame so far was in the cloud (a frame uploads in "
                        "milliseconds): it exercised the rig's restart, not a transfer cut in half")


@when("power is restored")
def _power_back(bench: Bench) -> None:
    """Power on again; the device boots from its persisted state."""
    _restore(bench)


def _window_assets(bench: Bench) -> list[dict[str, Any]]:
    """This device's assets the emulator created in this scenario's window (the oracle)."""
    since = window_start(bench.journal())
    return [r for r in bench.cloud.ledger(bench.cloud_device_id())
            if float(r.get("created_at") or since) >= since]


def _delivered(row: dict[str, Any]) -> bool:
    return row.get("state") in {"complete", "completed", "done", "uploaded"} or bool(row.get("completed_at"))


def _superseded(row: dict[str, Any], assets: list[dict[str, Any]]) -> bool:
    """An empty, undelivered asset whose name another asset delivered: a cut between the create
    answer and the device recording it leaves one behind (as on Frame.io); no upload, no copy."""
    return not _delivered(row) and not int(row.get("bytes_received") or 0) and any(
        _delivered(r) for r in assets if r.get("name") == row.get("name") and r is not row)


def _in_flight(row: dict[str, Any], assets: list[dict[str, Any]]) -> bool:
    return not _delivered(row) and not _superseded(row, assets)


def _wait_settled(bench: Bench, timeout: float = SETTLE_TIMEOUT_S, quiet: float = SETTLE_QUIET_S) -> None:
    """Wait until no upload is in flight and nothing new appeared for `quiet` seconds.

    "Nothing new" is judged on the cloud (this device's assets in the window and their states)
    and, where the device has a status, on its file list and queue: a second copy of a frame
    that the device fetches a few seconds after a restart must reach the verdict.
    """
    seen: list[Any] = [None, time.monotonic()]

    def settled() -> bool:
        assets = _window_assets(bench)
        busy = any(_in_flight(r, assets) for r in assets)
        status = device_status(bench) if bench.has_status else {}
        queue = status.get("queue") or {}
        busy = busy or bool(queue.get("remaining_count"))
        signature = (sorted((str(r.get("asset_id")), str(r.get("state"))) for r in assets),
                     sorted((str(f.get("name")), str(f.get("state"))) for f in status.get("files", [])))
        if signature != seen[0]:
            seen[:] = [signature, time.monotonic()]
        return not busy and time.monotonic() - seen[1] >= quiet

    wait_until(settled, timeout, f"the device to settle (no upload in flight, nothing new for {quiet:g} s)")


def _every_frame_once(bench: Bench) -> None:
    """The oracle against the camera: as many frame assets as shutter presses, each captured
    name exactly once, and no camera frame under a name that is not one of the captures."""
    sha, _ = camera_frame(bench)
    shots = bench.state.tether_shots
    captured = {c.name for c in bench.state.captures}
    every = _window_assets(bench)
    assets = [r for r in every if not _superseded(r, every)]
    names = Counter(str(r.get("name")) for r in assets)
    frames = [r for r in assets if r.get("sha256") == sha]
    problems = [f"{n}: uploaded {k} times" for n, k in sorted(names.items()) if n in captured and k > 1]
    problems += [f"{n}: never uploaded" for n in sorted(captured - set(names))]
    problems += [f"{r.get('name')}: a camera frame uploaded under a name that is no frame the camera shot "
                 f"(asset {r.get('asset_id')})" for r in frames if r.get("name") not in captured]
    if len(frames) > shots:
        require(bench, "files_duplicated", len(frames) - shots,
                f"{len(frames)} assets of the camera's frame for {shots} shutter presses: " + "; ".join(problems))
    if len(frames) != shots or problems:
        raise DeliveryFailure(f"{len(frames)} assets of the camera's frame for {shots} shutter presses"
                              + (": " + "; ".join(problems) if problems else ""))


@then("every captured file is delivered exactly once with a matching hash")
def _exactly_once(bench: Bench) -> None:
    """Delivery ledger: every frame intact, none lost or duplicated; then, once the device has
    settled, the cloud holds exactly one asset per shutter press and nothing else of the camera."""
    _all_intact(bench, 300)
    _wait_settled(bench)
    _every_frame_once(bench)
    ledger = bench.ledger(drained=True)
    if ledger.problems():
        raise DeliveryFailure("after the device settled, delivery ledger: " + "; ".join(ledger.problems()))


@then("the tethered camera shows as connected")
def _connected(bench: Bench) -> None:
    """The device reports its tethered camera connected again after the power cut."""
    status_or_operator(
        bench, "Does the device show the tethered camera as connected?",
        _camera_connected, timeout=60)

"""A lane: one device under test with its own proxy, state dir and project, paired once, reused.

Every lane of a campaign talks to one shared emulator (harness.chaos.shared_cloud): its fault
rules name the lane's device, so one lane's `s3:slowdown x2` never answers a neighbour, and a
schedule replayed alone meets the same faults. What stays per lane is what a device owns: its
process, state dir, watch folder, network link (proxy) and project.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from harness.chaos.shared_cloud import LaneCloud, SharedCloud
from harness.device.profile import DeviceProfile
from harness.device.software import SoftwareDevice
from harness.errors import BenchFailure, ConfigError, DeviceFailure
from harness.faults.media.manifest import MediaKit
from harness.faults.network.link import NetworkLink
from harness.timeline import Timeline

PAIR_TIMEOUT = 60.0


@dataclass
class Lane:
    """Everything one device needs; `close()` tears it down, device first."""

    number: int
    workdir: Path
    cloud: LaneCloud
    link: NetworkLink
    device: SoftwareDevice
    media: MediaKit
    timeline: Timeline
    project_id: str = ""
    device_ids: list[str] = field(default_factory=list)
    """The cloud's ids of this lane's device: one, two after an approved re-pair (newest last)."""
    runs: int = 0
    """Schedules run so far (names each run's files apart)."""
    journal_cursor: int = 0
    _closed: bool = field(default=False, repr=False)

    @property
    def client_id(self) -> str:
        return self.device.client_id

    @property
    def device_id(self) -> str:
        """The device's current id in the cloud ("" before it paired)."""
        return self.device_ids[-1] if self.device_ids else ""

    def paired_as(self, device_id: str) -> None:
        """The device holds a grant under `device_id` (its first pairing, or a re-pair)."""
        if device_id not in self.device_ids:
            self.device_ids.append(device_id)

    def paired_rows(self) -> list[dict[str, object]]:
        """The cloud's device rows for this lane's client id (one, unless it re-paired)."""
        return [d for d in self.cloud.devices() if d.get("client_id") == self.client_id]

    def close(self, *, drop_content: bool = False) -> None:
        """Stop the device and its link; `drop_content`: the shared cloud deletes the bytes
        this lane's device uploaded (its ledger rows stay), as the lane's scratch is removed."""
        if self._closed:
            return
        self._closed = True
        steps = [self.device.close, self.media.close, self.link.close]
        if drop_content:
            steps += [partial(self.cloud.drop_content, d) for d in self.device_ids]
        for step in (*steps, self.cloud.close):
            with contextlib.suppress(Exception):
                step()


def open_lane(number: int, profile: DeviceProfile, workdir: Path, *, seed: int, shared: SharedCloud) -> Lane:
    """Start a proxy and the device in front of the shared cloud, and pair it (BenchFailure if
    the bench cannot; DeviceFailure if the device will not boot or pair)."""
    if profile.launch is None:
        raise ConfigError(f"profile {profile.name}: the chaos campaign drives software devices "
                          "(a [launch] command); hardware needs a person per power cut")
    workdir.mkdir(parents=True, exist_ok=True)
    timeline = Timeline()
    control = shared.control
    link: NetworkLink | None = None
    device: SoftwareDevice | None = None
    try:
        link = NetworkLink(urlsplit(control.api_url).netloc, timeline=timeline, seed=seed + number)
        device = SoftwareDevice(profile, api_url=link.device_api_url, ca_bundle=Path(control.ca_bundle),
                                client_secret=control.client_secret, workdir=workdir / "device",
                                timeline=timeline, seed=seed + number,
                                plain_http_url=control.plain_http_url, on_power_loss=link.drop_connections)
        media = MediaKit(seed=seed + number, stash_dir=workdir / "media-stash")
        lane = Lane(number=number, workdir=workdir, cloud=shared.lane_cloud(device.client_id), link=link,
                    device=device, media=media, timeline=timeline)
    except BaseException:
        for closer in (device.close if device else None, link.close if link else None):
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer()
        raise
    try:
        _pair(lane)
    except BaseException:
        lane.close()
        raise
    return lane


def _pair(lane: Lane) -> None:
    """Boot the device, approve the code it shows, wait until it holds its grant."""
    lane.device.start()
    code = lane.device.pairing_code(PAIR_TIMEOUT)
    project = lane.cloud.create_project(f"chaos lane {lane.number}")
    lane.project_id = str(project["id"])
    if not any(str(c.get("user_code")) == code for c in lane.cloud.pending_codes()):
        raise DeviceFailure(f"the device shows code {code!r} that the cloud never issued")
    lane.cloud.approve(code, lane.project_id)
    deadline = time.monotonic() + PAIR_TIMEOUT
    while time.monotonic() < deadline:
        rows = [r for r in lane.paired_rows() if not r.get("revoked")]
        status = lane.device.status() or {}
        state = (status.get("pairing") or {}).get("state") if isinstance(status.get("pairing"), dict) else None
        if rows and state in (None, "paired"):
            lane.paired_as(str(rows[-1]["id"]))
            return
        time.sleep(0.1)
    raise DeviceFailure(f"the device did not collect its grant within {PAIR_TIMEOUT:.0f} s of the approval")


def lane_dir(out: Path, number: int, generation: int = 1) -> Path:
    """Scratch of a lane (a rebuilt lane gets a new one: the old device's state stays for evidence)."""
    return out / "lanes" / f"lane-{number}.{generation}"


__all__ = ["BenchFailure", "Lane", "lane_dir", "open_lane"]

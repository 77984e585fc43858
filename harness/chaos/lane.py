"""A lane: one device under test with its own proxy, state dir and cloud, paired once, reused.

Why a cloud per lane and not one emulator for all devices: the emulator's S3/API error rules
(`s3:slowdown x2`) match any device's requests, so on a shared emulator one lane's fault would
hit its neighbour's device unrecorded, and neither schedule could be replayed exactly. Device-
scoped faults (pause, token expiry) would share one; the rule faults cannot.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from harness.cloud.control import CloudControl
from harness.cloud.runner import EmulatorProcess, forget_secrets
from harness.device.profile import DeviceProfile
from harness.device.software import SoftwareDevice
from harness.errors import BenchFailure, CloudError, ConfigError, DeviceFailure
from harness.faults.media.manifest import MediaKit
from harness.faults.network.link import NetworkLink
from harness.timeline import Timeline

PAIR_TIMEOUT = 60.0
MIB = 1024 * 1024
CLOUD_SETTINGS = {"device_code_interval": 1, "default_part_size": 5 * MIB, "serial_ingest_rate": 20_000_000}
"""Device-code polls once a second (pairing a lane takes seconds); part bodies taken in one at
a time at 20 MB/s, so the parts of a large capture are stored one after another and a power
cut can land between them (resumption is exercised, as in the certification's power-cut
scenario); 5 MiB parts (the S3 minimum) for a device that leaves the part count to the cloud
(c2c-api.md §11.10; the reference device asks for size // 8 MiB parts itself)."""


@dataclass
class Lane:
    """Everything one device needs; `close()` tears it down, device first."""

    number: int
    workdir: Path
    emulator: EmulatorProcess
    cloud: CloudControl
    link: NetworkLink
    device: SoftwareDevice
    media: MediaKit
    timeline: Timeline
    project_id: str = ""
    device_id: str = ""
    runs: int = 0
    journal_cursor: int = 0
    """Schedules run so far (names each run's files apart)."""
    _closed: bool = field(default=False, repr=False)

    @property
    def client_id(self) -> str:
        return self.device.client_id

    def paired_rows(self) -> list[dict[str, object]]:
        """The cloud's device rows for this lane's client id (one, unless it re-paired)."""
        return [d for d in self.cloud.devices() if d.get("client_id") == self.client_id]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for step in (self.device.close, self.media.close, self.link.close, self.emulator.close,
                     lambda: forget_secrets(self.emulator.data_dir)):
            with contextlib.suppress(Exception):
                step()


def open_lane(number: int, profile: DeviceProfile, workdir: Path, *, seed: int) -> Lane:
    """Start a cloud, a proxy and the device, and pair it (BenchFailure if the bench cannot;
    DeviceFailure if the device will not boot or pair)."""
    if profile.launch is None:
        raise ConfigError(f"profile {profile.name}: the chaos campaign drives software devices "
                          "(a [launch] command); hardware needs a person per power cut")
    workdir.mkdir(parents=True, exist_ok=True)
    timeline = Timeline()
    emulator = EmulatorProcess(workdir / "cloud", settings=dict(CLOUD_SETTINGS))
    emulator.start()
    if emulator.control is None:
        emulator.close()
        raise CloudError("the emulator started without a control client")
    cloud = emulator.control
    link: NetworkLink | None = None
    device: SoftwareDevice | None = None
    try:
        link = NetworkLink(urlsplit(cloud.api_url).netloc, timeline=timeline, seed=seed + number)
        device = SoftwareDevice(profile, api_url=link.device_api_url, ca_bundle=Path(cloud.ca_bundle),
                                client_secret=cloud.client_secret, workdir=workdir / "device",
                                timeline=timeline, seed=seed + number,
                                plain_http_url=cloud.plain_http_url, on_power_loss=link.drop_connections)
        media = MediaKit(seed=seed + number, stash_dir=workdir / "media-stash")
        lane = Lane(number=number, workdir=workdir, emulator=emulator, cloud=cloud, link=link,
                    device=device, media=media, timeline=timeline)
    except BaseException:
        for closer in (device.close if device else None, link.close if link else None, emulator.close):
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
            lane.device_id = str(rows[-1]["id"])
            return
        time.sleep(0.1)
    raise DeviceFailure(f"the device did not collect its grant within {PAIR_TIMEOUT:.0f} s of the approval")


def lane_dir(out: Path, number: int, generation: int = 1) -> Path:
    """Scratch of a lane (a rebuilt lane gets a new one: the old device's state stays for evidence)."""
    return out / "lanes" / f"lane-{number}.{generation}"


__all__ = ["BenchFailure", "Lane", "lane_dir", "open_lane"]

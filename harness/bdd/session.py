"""The session bench: what lives for the whole run (emulator, network link, media kit, device).

Built once per pytest session, because the emulator, the proxy and the device process are
expensive; `harness.bdd.bench.Bench` is the per-scenario view steps receive. Each part is
started on first use by `start_cloud`, `start_network`, `make_media`; a part that fails to
start is a BenchFailure (verdict "error"), never a device failure.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.cloud.runner import EmulatorProcess, forget_secrets
from harness.device.hardware import HardwareDevice
from harness.device.operator import OperatorPrompt
from harness.device.profile import DeviceProfile
from harness.device.software import SoftwareDevice
from harness.errors import CloudError, ConfigError
from harness.faults.media.manifest import MediaKit
from harness.faults.network.link import NetworkLink
from harness.faults.network.packet.network import PacketNetwork, split_backend
from harness.items.checklist import Checklist, load_checklist
from harness.protocols import Cloud, Device, DeviceNamespace, Media, Network
from harness.timeline import Timeline

PROJECT_NAME = "c2c-bench certification"


# --- the parts ------------------------------------------------------------------------------
def start_cloud(data_dir: Path) -> tuple[Cloud, Callable[[], None]]:
    """Start the emulator (harness.cloud.runner.EmulatorProcess) and return its control client."""
    proc = EmulatorProcess(data_dir)
    cloud: Cloud | None = proc.start().control
    if cloud is None:
        proc.close()
        raise CloudError("EmulatorProcess started without a control client")

    def close() -> None:
        # the run's scratch stays beside its reports (logs, state): the keys and secrets do not
        proc.close()
        forget_secrets(data_dir)
    return cloud, close


def start_network(
    cloud: Cloud, timeline: Timeline, seed: int, *, profile: str | None = None, software_device: bool = True,
) -> tuple[Network, Callable[[], None]]:
    """The device's path to the emulator: a Toxiproxy-compatible link (harness.faults.network.link),
    or, when the run's profile asks for it (`--network packet:cellular`), a packet-level link
    (harness.faults.network.packet.network) the software device runs inside, proxy on its far side."""
    upstream = urlsplit(cloud.api_url).netloc
    if split_backend(profile)[0]:
        if not software_device:
            raise ConfigError(f"--network {profile}: a packet-level link runs the device in a network namespace, "
                              "which needs a software device (a hardware device keeps the proxy or a real router)")
        packet = PacketNetwork(upstream, timeline=timeline, seed=seed)
        return packet, packet.close
    link = NetworkLink(upstream, timeline=timeline, seed=seed)
    return link, link.close


def make_media(seed: int, manifest: Path) -> Media:
    """The media kit (harness.faults.media.MediaKit); the originals it stashes before a corruption
    stay in the run's folder beside the manifest (evidence), not in a temp dir nobody removes."""
    return MediaKit(seed=seed, manifest_path=manifest, stash_dir=manifest.parent / "media-stash")


@dataclass
class SessionBench:
    """Everything that lives for the whole run."""

    profile: DeviceProfile
    workdir: Path
    seed: int
    prompt: OperatorPrompt
    timeline: Timeline
    checklist: Checklist
    network_profile: str | None = None
    _cloud: Cloud | None = None
    _network: Network | None = None
    _media: Media | None = None
    _device: Device | None = None
    project: dict[str, Any] | None = None
    paired: bool = False
    device_generation: int = 0
    journal_cursor: int = 0
    captured_names: set[str] = field(default_factory=set)  # every capture of the run's earlier scenarios
    # why the next scenario starts from a factory-reset device (the last one ended in fail or error)
    reset_before_next: str | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def cloud(self) -> Cloud:
        if self._cloud is None:
            self._cloud, close = start_cloud(self.workdir / "cloud")
            self._closers.append(close)
        return self._cloud

    @property
    def network(self) -> Network:
        if self._network is None:
            self._network, close = start_network(self.cloud, self.timeline, self.seed, profile=self.network_profile,
                                                 software_device=self.profile.launch is not None)
            self._closers.append(close)
            if self.network_profile:
                self._network.apply_profile(self.network_profile)
        return self._network

    @property
    def media(self) -> Media:
        if self._media is None:
            self._media = make_media(self.seed, self.workdir / "media-manifest.json")
        return self._media

    @property
    def device(self) -> Device:
        if self._device is None:
            self._device = self._make_device()
        return self._device

    def _make_device(self) -> Device:
        self.device_generation += 1
        workdir = self.workdir / f"device-{self.device_generation}"
        if self.profile.launch is None:
            return HardwareDevice(self.profile, prompt=self.prompt, timeline=self.timeline)
        cloud = self.cloud
        return SoftwareDevice(
            self.profile, api_url=self.network.device_api_url, ca_bundle=Path(cloud.ca_bundle),
            client_secret=cloud.client_secret, workdir=workdir, timeline=self.timeline, prompt=self.prompt,
            plain_http_url=cloud.plain_http_url, seed=self.seed,
            on_power_loss=self.network.drop_connections,
            namespace=self.network if isinstance(self.network, DeviceNamespace) else None,
        )

    def fresh_device(self, *, keep_old: bool = False) -> Device:
        """Throw away the device's state (a factory reset): new state dir, new client id.
        `keep_old` leaves the old device's folder (state, console) in the run's work folder as
        evidence of the scenario that left it, e.g. tokens it kept in plain text."""
        if self._device is not None:
            _close_device(self._device)
            if isinstance(self._device, SoftwareDevice) and not keep_old:
                shutil.rmtree(self._device.workdir, ignore_errors=True)
        self._device = self._make_device()
        self.paired = False
        return self._device

    def reset_if_unknown(self) -> str | None:
        """Factory-reset a software device whose last scenario ended in fail or error: what it
        holds then (a file it stalls behind, a flow cut halfway) is not a state a later scenario
        chose, and a defect must fail on its own item, not on every scenario after it. A hardware
        device keeps its state (a reset is a person's job); returns why it was reset."""
        why, self.reset_before_next = self.reset_before_next, None
        if why is None or self._device is None or self.profile.launch is None:
            return None
        self.timeline.record("device", "factory reset", "mark", why=why)
        self.fresh_device(keep_old=True)  # what the failed scenario left is evidence (secret scan, console)
        return why

    def started_network(self) -> Network | None:
        """The network link if this run started one."""
        return self._network

    def started_device(self) -> Device | None:
        """The device if this run launched one (evidence is read from it, never started for it)."""
        return self._device

    def started_cloud(self) -> Cloud | None:
        """The emulator if this run started one (evidence is read from it, never started for it)."""
        return self._cloud

    def journal_head(self) -> int:
        """Id of the newest journal row (pages through the journal from the last known head)."""
        while True:
            rows = self.cloud.journal(since=self.journal_cursor)
            if not rows:
                return self.journal_cursor
            self.journal_cursor = max(int(r.get("id", 0)) for r in rows)

    def ensure_project(self) -> dict[str, Any]:
        if self.project is None:
            self.project = self.cloud.create_project(PROJECT_NAME)
        return self.project

    def close(self) -> None:
        if self._device is not None:
            with contextlib.suppress(Exception):
                _close_device(self._device)
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):
                close()


def _close_device(device: Device) -> None:
    """Stop the device and release what its drivers hold (relay port locks, HTTP clients)."""
    if isinstance(device, SoftwareDevice | HardwareDevice):
        device.close()
    else:
        device.stop()


@contextlib.contextmanager
def session_bench(
    profile: DeviceProfile, workdir: Path, *, seed: int, interactive: bool, network_profile: str | None = None,
) -> Iterator[SessionBench]:
    """Build the session bench and tear everything down (device first) at the end."""
    bench = SessionBench(
        profile=profile, workdir=workdir, seed=seed, prompt=OperatorPrompt(interactive=interactive),
        timeline=Timeline(), checklist=load_checklist(), network_profile=network_profile,
    )
    try:
        yield bench
    finally:
        bench.close()

"""The bench: one object holding cloud, network, power, media, device, timeline and ledger.

`SessionBench` is built once per pytest session (emulator, proxy, device process are
expensive); `Bench` is the per-scenario view steps receive, with the scenario's own
captures, journal cursor and measurements, so scenarios sharing one emulator never read
each other's evidence.

The parts are started by `start_cloud`, `start_network`, `make_media`; a part that fails
to start is a BenchFailure (verdict "error"), never a device failure.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.certify.checklist import Checklist, load_checklist
from harness.certify.ledger import Ledger, build_ledger, window_start
from harness.cloud.runner import EmulatorProcess
from harness.device.hardware import HardwareDevice
from harness.device.operator import OperatorPrompt
from harness.device.profile import DeviceProfile
from harness.device.software import SoftwareDevice
from harness.errors import CloudError, FaultInjectionError
from harness.faults.http.interceptor import Interceptor, interception
from harness.faults.media.manifest import MediaKit
from harness.faults.network.link import NetworkLink
from harness.protocols import Cloud, Device, Media, Network, Power
from harness.timeline import Timeline

PROJECT_NAME = "c2c-bench certification"


# --- the parts ------------------------------------------------------------------------------
def start_cloud(data_dir: Path) -> tuple[Cloud, Callable[[], None]]:
    """Start the emulator (harness.cloud.runner.EmulatorProcess) and return its control client."""
    proc: Any = EmulatorProcess(data_dir)
    started = proc.start()
    cloud = getattr(proc, "control", None) or started
    if callable(cloud) and not isinstance(cloud, Cloud):
        cloud = cloud()
    if not isinstance(cloud, Cloud):
        raise CloudError("EmulatorProcess gave no Cloud control client")
    return cloud, proc.close


def start_network(cloud: Cloud, timeline: Timeline, seed: int) -> tuple[Network, Callable[[], None]]:
    """A Toxiproxy-compatible link in front of the emulator (harness.faults.network.link)."""
    upstream = urlsplit(cloud.api_url).netloc
    link = NetworkLink(upstream, timeline=timeline, seed=seed)
    return link, link.close


def make_media(seed: int, manifest: Path) -> Media:
    """The media kit (harness.faults.media.MediaKit)."""
    return MediaKit(seed=seed, manifest_path=manifest)


# --- per-scenario state ----------------------------------------------------------------------
@dataclass
class Capture:
    """A file the scenario captured (the manifest row the ledger starts from)."""

    name: str
    path: Path
    sha256: str | None
    size: int
    captured_at: float
    corruption: str | None = None
    kind: str = ""
    paused: bool | None = None

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "sha256": self.sha256, "size": self.size,
                "captured_at": self.captured_at, "corruption": self.corruption, "paused": self.paused}


@dataclass
class ScenarioState:
    """What one scenario did: captures, start time, journal cursor, measurements, notes."""

    started_at: float = field(default_factory=time.time)
    journal_since: int = 0
    captures: list[Capture] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)
    pairing_code: str | None = None
    codes_seen: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    exercised: list[str] = field(default_factory=list)
    declared: dict[str, str] = field(default_factory=dict)  # item -> the profile's evidence text
    operator_mark: int = 0  # operator answers before this index belong to earlier scenarios


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
            self._network, close = start_network(self.cloud, self.timeline, self.seed)
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
            plain_http_url=getattr(cloud, "plain_http_url", ""), seed=self.seed,
            on_power_loss=self.network.drop_connections,
        )

    def fresh_device(self) -> Device:
        """Throw away the device's state (a factory reset): new state dir, new client id."""
        if self._device is not None:
            _close_device(self._device)
            old = getattr(self._device, "workdir", None)
            if isinstance(old, Path):
                shutil.rmtree(old, ignore_errors=True)
        self._device = self._make_device()
        self.paired = False
        return self._device

    def started_network(self) -> Network | None:
        """The network link if this run started one."""
        return self._network

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
    closer = getattr(device, "close", None)
    (closer if callable(closer) else device.stop)()


class Bench:
    """What a step sees: the protocols plus this scenario's state."""

    def __init__(self, session: SessionBench, state: ScenarioState | None = None) -> None:
        self.session = session
        self.state = state or ScenarioState()

    # the five protocols + timeline
    @property
    def cloud(self) -> Cloud:
        return self.session.cloud

    @property
    def network(self) -> Network:
        return self.session.network

    @property
    def media(self) -> Media:
        return self.session.media

    @property
    def device(self) -> Device:
        return self.session.device

    @property
    def power(self) -> Power:
        return self.device.power()

    @property
    def timeline(self) -> Timeline:
        return self.session.timeline

    @property
    def profile(self) -> DeviceProfile:
        return self.session.profile

    @property
    def prompt(self) -> OperatorPrompt:
        return self.session.prompt

    @property
    def has_status(self) -> bool:
        return self.profile.status.driver != "none"

    def scratch(self, name: str = "capture") -> Path:
        """A fresh directory for fixtures the scenario makes before capturing them."""
        path = self.session.workdir / "scratch" / f"{name}-{len(self.state.captures)}-{time.monotonic_ns()}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    # TLS interception (C2C-SEC-02): reroute the link's upstream through mitmproxy
    def start_interceptor(self, flaw: str = "untrusted-ca") -> Any:
        """Put mitmproxy between the device and the cloud, showing a certificate with `flaw`.

        `untrusted-ca`: a fresh CA the device has never seen. `wrong-host` / `expired`: signed
        by the bench CA the device trusts (its key lies beside the CA bundle, ca-key.pem).
        """
        link: Any = self.network
        if not hasattr(link, "api") or not hasattr(link, "upstream"):
            raise FaultInjectionError("TLS interception needs the Toxiproxy network link")
        interceptor = Interceptor()
        ca = Path(self.cloud.ca_bundle)
        cm = interception(self.cloud.api_url, ca, [interceptor], self.session.workdir, flaw=flaw,
                          ca_key=ca.with_name("ca-key.pem"))
        proxy = cm.__enter__()
        self.state.notes["_interceptor_cm"] = cm
        link.api.update_proxy(link.name, upstream=f"127.0.0.1:{proxy.port}")
        self.timeline.record("tls", f"{flaw}-interceptor", "start")
        self.state.notes["_interceptor_flaw"] = flaw
        link.switch_path()
        return interceptor

    def stop_interceptor(self) -> None:
        cm = self.state.notes.pop("_interceptor_cm", None)
        if cm is None:
            return
        link: Any = self.network
        link.api.update_proxy(link.name, upstream=link.upstream)
        link.switch_path()
        cm.__exit__(None, None, None)
        flaw = self.state.notes.pop("_interceptor_flaw", "untrusted-ca")
        self.timeline.record("tls", f"{flaw}-interceptor", "stop")

    def cleanup(self) -> None:
        """Undo what the scenario changed on the shared bench (faults, settings, pause, proxy)."""
        # a later scenario's ledger excuses these (a tethered camera's frames are in no media manifest)
        self.session.captured_names.update(c.name for c in self.state.captures)
        steps: list[Callable[[], None]] = [self.stop_interceptor]
        mode = self.state.notes.get("restore_mode")
        if mode and self.session._device is not None:
            device = self.session._device
            steps.append(lambda: device.control("mode", mode=mode) or None)
        if self.session._network is not None:
            steps.append(self.session._network.clear)
        if self.session._cloud is not None:
            cloud = self.session._cloud
            steps.append(cloud.clear_faults)
            restore = self.state.notes.get("restore_settings")
            if restore:
                steps.append(lambda: cloud.update_settings(**restore))
            if self.state.notes.get("paused_now"):
                steps.append(lambda: self._resume_after_failure(cloud))
        for step in steps:
            with contextlib.suppress(Exception):
                step()

    def _resume_after_failure(self, cloud: Cloud) -> None:
        """A scenario that failed while the device was paused: resume it and close the pause
        window, or every later capture would be judged as taken while paused."""
        try:
            cloud.resume_device(self.cloud_device_id())
        finally:
            self.timeline.record("cloud", "pause", "stop", cleanup=True)
            self.state.notes["paused_now"] = False

    # identity of our device in the cloud
    def cloud_device(self) -> dict[str, Any] | None:
        client_id = getattr(self.device, "client_id", None)
        rows = [d for d in self.cloud.devices() if not d.get("revoked")]
        if client_id:
            rows = [d for d in rows if d.get("client_id") == client_id]
        return rows[-1] if rows else None

    def mark_console(self) -> None:
        """Remember how much the device had printed, so evidence shows only this scenario's part."""
        device = self.session._device
        read = getattr(device, "console_text", None)
        if callable(read):
            self.state.notes["console_mark"] = (id(device), len(read()))

    def device_console(self) -> str:
        """What the device printed during this scenario ('' when it keeps no console log)."""
        device = self.session._device
        read = getattr(device, "console_text", None)
        if not callable(read):
            return ""
        text = str(read())
        mark = self.state.notes.get("console_mark")
        if mark and mark[0] == id(device) and len(text) >= mark[1]:
            return text[mark[1]:]
        return text  # a device started (or restarted) during the scenario: all of it

    def cloud_device_id(self) -> str:
        row = self.cloud_device()
        if row is None:
            raise CloudError("the device under test is not registered in the cloud (not paired?)")
        return str(row["id"])

    # evidence
    def journal(self) -> list[dict[str, Any]]:
        """Requests the cloud saw since this scenario began."""
        return self.cloud.journal(since=self.state.journal_since)

    def pause_windows(self) -> list[dict[str, Any]]:
        return [w for w in self.timeline.windows() if w["layer"] == "cloud" and w["name"] == "pause"]

    def ledger(self, *, drained: bool = True) -> Ledger:
        device_id = None
        with contextlib.suppress(Exception):
            device_id = self.cloud_device_id()
        rows = self.cloud.ledger(device_id)
        names = {c.name for c in self.state.captures}
        if device_id is None:  # no device to attribute uploads to: only the captured names count
            rows = [r for r in rows if r.get("name") in names]
        # this device's assets created in this scenario's window (emulator time) that match no
        # capture are `unexpected`; files the bench gave it in other scenarios are excused
        manifest = {str(e.get("name") or Path(str(e.get("path", ""))).name) for e in self.media.manifest()}
        known = (manifest | self.session.captured_names) - names
        status = self.device.status() or {}
        return build_ledger(
            [c.row() for c in self.state.captures], rows, device_files=status.get("files", []),
            pause_windows=self.pause_windows(), drained=drained, since=window_start(self.journal()),
            known_names=known, proxies="proxies" in self.profile.capabilities,
        )

    def exercised(self, what: str) -> None:
        """Say what the scenario really exercised where it compresses the field (an accelerated
        clock, clock jumps, a reused scenario), so the certificate shows the compression."""
        if what not in self.state.exercised:
            self.state.exercised.append(what)

    def measure(self, item: str, name: str, value: float, **context: float) -> bool:
        """Record a measurement against the checklist limits; returns whether it is in limits."""
        m = self.session.checklist[item].measurement(name)
        passed = m.check(value, **context)
        limits = m.describe()
        for key, val in context.items():
            limits = limits.replace(key, f"{int(val)}" if float(val).is_integer() else f"{val:g}")
        self.state.measurements.append(
            {"item": item, "name": name, "value": value, "unit": m.unit, "low": m.low, "high": m.high,
             "limits": limits, "passed": passed, "context": context}
        )
        return passed


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

"""The per-scenario bench: what a step sees (`Bench`) and what one scenario did (`ScenarioState`).

`Bench` is a view over the run's `harness.bdd.session.SessionBench` (emulator, proxy and
device process are started once) with the scenario's own captures, journal cursor and
measurements, so scenarios sharing one emulator never read each other's evidence. Its
jobs live beside it: session set-up in `harness.bdd.session`, the TLS interceptor's
lifetime in `harness.bdd.interception`, measurements in `harness.bdd.recording`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.bdd.interception import TlsInterception
from harness.bdd.recording import note_exercised, pause_windows, record_measurement
from harness.bdd.session import (
    PROJECT_NAME,
    SessionBench,
    make_media,
    session_bench,
    start_cloud,
    start_network,
)
from harness.bdd.state import Capture, ScenarioState
from harness.certify.ledger import Ledger, build_ledger, window_start
from harness.device.operator import OperatorPrompt
from harness.device.profile import DeviceProfile
from harness.errors import CloudError
from harness.faults.http.interceptor import Interceptor
from harness.faults.vocabulary import ActiveFault
from harness.protocols import ClientIdentity, Cloud, ConsoleLog, Device, Media, Network, Power
from harness.timeline import Timeline

__all__ = [
    "PROJECT_NAME",
    "Bench",
    "Capture",
    "ScenarioState",
    "SessionBench",
    "make_media",
    "session_bench",
    "start_cloud",
    "start_network",
]


class Bench:
    """What a step sees: the protocols plus this scenario's state."""

    def __init__(self, session: SessionBench, state: ScenarioState | None = None) -> None:
        self.session = session
        self.state = state or ScenarioState()
        self.faults: list[ActiveFault] = []  # running faults the scenario injected

    def hold(self, fault: ActiveFault) -> ActiveFault:
        """Keep a running fault so `cleanup` stops it (closing its timeline window) whatever
        the scenario did; the steps inject through harness.faults.vocabulary only."""
        self.faults.append(fault)
        return fault

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
    def start_interceptor(self, flaw: str = "untrusted-ca") -> Interceptor:
        """Put mitmproxy between the device and the cloud, showing a certificate with `flaw`
        (harness.bdd.interception); undone by `stop_interceptor` or the scenario's cleanup."""
        interception = TlsInterception(self.network, self.cloud, self.session.workdir, self.timeline)
        self.state.interception = interception
        return interception.start(flaw)

    def stop_interceptor(self) -> None:
        if self.state.interception is not None:
            self.state.interception.stop()

    def cleanup(self) -> None:
        """Undo what the scenario changed on the shared bench (faults, settings, pause, proxy)."""
        # a later scenario's ledger excuses these (a tethered camera's frames are in no media manifest)
        self.session.captured_names.update(c.name for c in self.state.captures)
        steps: list[Callable[[], object]] = [*(f.stop for f in reversed(self.faults)), self.stop_interceptor]
        mode = self.state.restore_mode
        if mode and self.session._device is not None:
            device = self.session._device
            steps.append(lambda: device.control("mode", mode=mode) or None)
        if self.session._network is not None:
            steps.append(self.session._network.clear)
        if self.session._cloud is not None:
            cloud = self.session._cloud
            steps.append(cloud.clear_faults)
            restore = self.state.restore_settings
            if restore:
                steps.append(lambda: cloud.update_settings(**restore))
        for step in steps:
            with contextlib.suppress(Exception):
                step()

    # identity of our device in the cloud
    def cloud_device(self) -> dict[str, Any] | None:
        device = self.device
        client_id = device.client_id if isinstance(device, ClientIdentity) else None
        rows = [d for d in self.cloud.devices() if not d.get("revoked")]
        if client_id:
            rows = [d for d in rows if d.get("client_id") == client_id]
        return rows[-1] if rows else None

    def mark_console(self) -> None:
        """Remember how much the device had printed, so evidence shows only this scenario's part."""
        device = self.session._device
        if isinstance(device, ConsoleLog):
            self.state.console_mark = (id(device), len(device.console_text()))

    def device_console(self) -> str:
        """What the device printed during this scenario ('' when it keeps no console log)."""
        device = self.session._device
        if not isinstance(device, ConsoleLog):
            return ""
        text = str(device.console_text())
        mark = self.state.console_mark
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
        """Requests the cloud saw since this scenario began.

        Read incrementally: the journal only grows (each row gets the next id and never changes),
        so a read asks the cloud only for the rows after the last one already held. A wait that
        polled the whole scenario's part every half second re-read the same rows again and again.
        Callers get their own copies of the rows.
        """
        held = self.state.journal_rows
        held.extend(self.cloud.journal(since=int(held[-1]["id"]) if held else self.state.journal_since))
        return [dict(row) for row in held]

    def pause_windows(self) -> list[dict[str, Any]]:
        return pause_windows(self.timeline)

    def ledger(self, *, drained: bool = True) -> Ledger:
        """This scenario's delivery ledger: its captures against this device's assets in the cloud."""
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
        note_exercised(self.state.exercised, what)

    def measure(self, item: str, name: str, value: float, **context: float) -> bool:
        """Record a measurement against the checklist limits; returns whether it is in limits."""
        return record_measurement(self.session.checklist, self.state.measurements, item, name, value,
                                  **context)

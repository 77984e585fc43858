"""HardwareDevice: a device on the bench the harness cannot launch, only power and observe.

Power comes from the profile (a relay channel or a person), status from its HTTP JSON page
when it has one, capture from a command (e.g. a shutter trigger) or the operator, and the
pairing code from status or the operator.

    device = HardwareDevice(profile, prompt=OperatorPrompt(interactive=True), timeline=timeline)
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from harness.device.operator import OperatorPrompt
from harness.device.profile import DeviceProfile, default_values, render_template
from harness.device.software import wait_for
from harness.errors import DeviceFailure, OperatorUnavailable
from harness.faults.power import HeldPower, LabgridPower, ManualPower, relay_power
from harness.protocols import Power
from harness.timeline import Timeline
from harness.tls import default_context


class HardwareDevice:
    """Implements harness.protocols.Device for a profile with no [launch] section."""

    def __init__(self, profile: DeviceProfile, *, prompt: OperatorPrompt, timeline: Timeline | None = None,
                 power: Power | None = None) -> None:
        self.profile = profile
        self.name = profile.name
        self.kind = profile.kind
        self.firmware = profile.firmware
        self.prompt = prompt
        self.timeline = timeline or Timeline()
        spec = profile.power
        if power is not None:
            self._power = power
        elif spec.driver == "relay" and spec.port is not None and spec.channel is not None:
            self._power = relay_power(spec.port, spec.channel, spec.board, self.timeline, spec.off_time)
        elif spec.driver == "labgrid" and spec.env is not None:
            self._power = LabgridPower(Path(spec.env), target=spec.target, driver=spec.name,
                                       min_off_time=spec.off_time, timeline=self.timeline)
        else:
            self._power = ManualPower(prompt.confirm if prompt.interactive else None)
        self._http = httpx.Client(timeout=5.0, verify=default_context())

    def _url(self, template: str | None) -> str | None:
        return render_template(template, default_values()) if template else None

    def start(self) -> None:
        self._power.on()
        if self.profile.status.driver == "http-json":
            wait_for(lambda: self.status() is not None, 120, f"{self.name} to boot")

    def stop(self) -> None:
        self._power.off()

    def close(self) -> None:
        """Power off and let go of the relay board (its port lock) and the status client."""
        try:
            self.stop()
        finally:
            if isinstance(self._power, HeldPower):
                self._power.close()
            self._http.close()

    def power(self) -> Power:
        return self._power

    def status(self) -> dict[str, Any] | None:
        url = self._url(self.profile.status.url) if self.profile.status.driver == "http-json" else None
        if url is None:
            return None
        try:
            r = self._http.get(url)
            data = r.json() if r.status_code == 200 else None
        except (httpx.HTTPError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def pairing_code(self, timeout: float) -> str:
        if self.profile.pairing.source == "status":
            def code() -> str | None:
                pairing = (self.status() or {}).get("pairing") or {}
                return str(pairing["user_code"]) if pairing.get("user_code") else None
            return str(wait_for(code, timeout, f"{self.name} to show a pairing code"))
        return self.prompt.ask(f"Type the pairing code {self.name} shows")

    def capture(self, files: Sequence[Path]) -> list[Path]:
        if self.profile.capture.driver == "command":
            for f in files:
                argv = [render_template(a, {**default_values(), "file": str(f)}) for a in self.profile.capture.command]
                done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
                if done.returncode != 0:
                    raise DeviceFailure(f"capture command failed ({done.returncode}): {done.stderr[-400:]}")
            return list(files)
        if not self.prompt.confirm(f"Record {len(files)} clip(s) on {self.name}. Done?"):
            raise OperatorUnavailable("capture not performed by the operator")
        return list(files)

    def control(self, action: str, **args: Any) -> bool:
        return False

    def inspect_paths(self) -> list[Path]:
        return [Path(render_template(t, default_values())) for t in self.profile.inspect]

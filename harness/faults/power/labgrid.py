"""`harness.protocols.Power` through labgrid, for labs whose rigs labgrid already drives.

A lab that describes its rigs in a labgrid environment file keeps doing so: this backend
takes the target's `PowerProtocol` driver (ExternalPowerDriver, NetworkPowerDriver, a
USB/PDU driver... whatever the YAML binds) and drives the device's supply through it. Every
flip is recorded on the fault timeline; `on()` honours the minimum off-time, as RelayPower's.
labgrid is an optional extra (`pip install .[labgrid]`); the project's own drivers stay the
default.

Profile example (a device profile's power through labgrid):

    [power]
    driver = "labgrid"
    env = "rig.yaml"       # labgrid environment file (relative to the profile)
    target = "main"        # the target (role) in it
    name = "supply"        # optional: which power driver of the target, if it has several
    off_time = 2.0         # the minimum off-time

Environment example (labgrid's command-driven driver switching one channel of a relay board
through this module's `switch` command; any labgrid power driver works the same way):

    targets:
      main:
        drivers:
          ExternalPowerDriver:
            cmd_on: "python -m harness.faults.power.labgrid switch --board lcus --port /dev/ttyUSB0 --channel 1 on"
            cmd_off: "python -m harness.faults.power.labgrid switch --board lcus --port /dev/ttyUSB0 --channel 1 off"
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, RelayError
from harness.timeline import Timeline


class LabgridPower:
    """Power for a device whose supply a labgrid target's power driver switches."""

    def __init__(self, env_file: Path, *, target: str = "main", driver: str | None = None,
                 min_off_time: float = 1.0, timeline: Timeline | None = None, name: str = "labgrid") -> None:
        if min_off_time < 0:
            raise ConfigError(f"min_off_time must be >= 0, got {min_off_time}")
        if not env_file.is_file():
            raise ConfigError(f"labgrid: no environment file {env_file}")
        try:
            from labgrid import Environment  # type: ignore[import-untyped]
        except ModuleNotFoundError:
            raise ConfigError("labgrid power needs labgrid: pip install '.[labgrid]'") from None
        self.env_file, self.target_name, self.min_off_time = env_file, target, min_off_time
        self.timeline, self.name = timeline, name
        self._env: Any = Environment(str(env_file))
        self._target: Any = self._env.get_target(target)
        if self._target is None:
            raise ConfigError(f"labgrid: {env_file} has no target {target!r}")
        try:
            self._driver: Any = self._target.get_driver("PowerProtocol", name=driver)
        except Exception as exc:  # labgrid's NoDriverFoundError and binding errors: the YAML is wrong
            raise ConfigError(f"labgrid: target {target!r} of {env_file} has no usable power driver: {exc}") from None
        self._off_since: float | None = None
        self._state: bool | None = None

    def on(self) -> None:
        if self._off_since is not None:
            remaining = self.min_off_time - (time.monotonic() - self._off_since)
            if remaining > 0:
                time.sleep(remaining)
        self._flip(True)
        self._off_since = None

    def off(self) -> None:
        self._flip(False)
        if self._off_since is None:
            self._off_since = time.monotonic()

    def cycle(self, off_time: float | None = None) -> None:
        """Off, stay off for max(off_time, min_off_time), then on (our timing, not the driver's delay)."""
        self.off()
        wanted = self.min_off_time if off_time is None else max(off_time, self.min_off_time)
        remaining = wanted - (time.monotonic() - (self._off_since or time.monotonic()))
        if remaining > 0:
            time.sleep(remaining)
        self.on()

    def is_on(self) -> bool | None:
        """The driver's read-back where it has one (`get()`), else None: a command gives no read-back."""
        getter = getattr(self._driver, "get", None)  # optional in labgrid's PowerProtocol
        if not callable(getter):
            return None
        try:
            return bool(getter())
        except NotImplementedError:
            return None

    def close(self) -> None:
        """Deactivate the target's drivers (labgrid releases what they hold)."""
        self._target.deactivate_all_drivers()
        self._env.cleanup()

    def _flip(self, on: bool) -> None:
        try:
            self._driver.on() if on else self._driver.off()
        except Exception as exc:  # a failing command or PDU: the bench's power failed, not the device
            raise RelayError(f"labgrid power {'on' if on else 'off'} failed ({self.env_file}, "
                             f"target {self.target_name}): {type(exc).__name__}: {str(exc)[:300]}") from exc
        self._state = on
        if self.timeline is not None:
            self.timeline.record("power", self.name, "flip", state="on" if on else "off",
                                 env=str(self.env_file), target=self.target_name)


def labgrid_power_from_config(config: dict[str, object], *, base: Path, timeline: Timeline | None = None,
                              off_time: float = 1.0) -> LabgridPower:
    """`LabgridPower` from a profile's `[power]` table (`env` relative to the profile's folder `base`)."""
    env = config.get("env")
    if not isinstance(env, str) or not env:
        raise ConfigError('[power] driver = "labgrid" needs env = "<labgrid environment file>"')
    target = config.get("target", "main")
    driver = config.get("name")
    if not isinstance(target, str) or (driver is not None and not isinstance(driver, str)):
        raise ConfigError("[power] target and name must be strings")
    path = Path(env) if Path(env).is_absolute() else base / env
    return LabgridPower(path, target=target, driver=driver, min_off_time=off_time, timeline=timeline)


def switch(argv: Sequence[str] | None = None) -> int:
    """`python -m harness.faults.power.labgrid switch --board B --port P --channel N on|off`:
    one relay flip through our board drivers, for labgrid's ExternalPowerDriver commands."""
    from harness.faults.power.relay import open_board

    parser = argparse.ArgumentParser(prog="python -m harness.faults.power.labgrid")
    sub = parser.add_subparsers(dest="command", required=True)
    flip = sub.add_parser("switch", help="switch one relay channel on or off")
    flip.add_argument("--board", default="lcus")
    flip.add_argument("--port", required=True)
    flip.add_argument("--channel", type=int, default=1)
    flip.add_argument("--channels", type=int, default=None)
    flip.add_argument("state", choices=("on", "off"))
    args = parser.parse_args(argv)
    try:
        board = open_board(args.board, args.port, channel=args.channel, channels=args.channels)
        try:
            board.set(args.channel, args.state == "on")
        finally:
            board.close()
    except (ConfigError, RelayError) as exc:
        print(f"labgrid switch: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(switch())

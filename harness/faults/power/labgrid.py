"""`harness.protocols.Power` through labgrid, for labs whose rigs labgrid already drives.

A lab that describes its rigs in a labgrid environment file keeps doing so: this backend
takes the target's `PowerProtocol` driver (ExternalPowerDriver, NetworkPowerDriver, a
USB/PDU driver... whatever the YAML binds) and drives the device's supply through it. Every
flip is recorded on the fault timeline; `on()` honours the minimum off-time (the bookkeeping
is `MinOffTimePower`'s, shared with RelayPower). labgrid is an optional extra
(`pip install .[labgrid]`); the project's own drivers stay the default.

Profile example (a device profile's power through labgrid; `c2c-certify check-profile` loads
the environment and finds the driver, so a wrong file, target or name is refused before a run):

    [power]
    driver = "labgrid"
    env = "rig.yaml"       # labgrid environment file (relative to the profile)
    target = "main"        # the target (role) in it
    name = "supply"        # optional: which power driver of the target, if it has several
    off_time = 2.0         # the minimum off-time

A hardware device (no [launch]) gets `LabgridPower`. A software device (with [launch]) gets
`LabgridSuppliedProcess`: labgrid's driver switches its supply, and the bench boots the
device's process group once the supply is on. The rig's off command must then cut that
group: the bench writes it to a file whose path the environment reads as
`!template $LG_C2C_DEVICE_GROUP` (labgrid's own way of handing LG_* values to a YAML), and
`python -m harness.faults.power.labgrid kill-group --group-file F` SIGKILLs it. Every
environment the bench loads also gets `$LG_C2C_PYTHON`, the bench's own interpreter. An off that
leaves the device running is a RelayError, never a pass.

Environment examples. A relay channel switched through this module's `switch` command (any
labgrid power driver works the same way):

    targets:
      main:
        drivers:
          ExternalPowerDriver:
            cmd_on: "python -m harness.faults.power.labgrid switch --board lcus --port /dev/ttyUSB0 --channel 1 on"
            cmd_off: "python -m harness.faults.power.labgrid switch --board lcus --port /dev/ttyUSB0 --channel 1 off"

A software device's supply (fixtures/devices/labgrid-rig.yaml):

    targets:
      main:
        drivers:
          ExternalPowerDriver:
            cmd_on: "true"
            cmd_off: !template "$LG_C2C_PYTHON -m harness.faults.power.labgrid kill-group --group-file $LG_C2C_DEVICE_GROUP"
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, FaultInjectionError, RelayError
from harness.faults.power.base import MinOffTimePower
from harness.faults.power.process import ProcessGroupPower, kill_group, live_group_members
from harness.timeline import Timeline

PYTHON_VARIABLE = "LG_C2C_PYTHON"
"""The `!template` variable naming the bench's interpreter (the one that can import harness)."""
DEVICE_GROUP_VARIABLE = "LG_C2C_DEVICE_GROUP"
"""The `!template` variable naming the file that holds a software device's process group."""
CUT_TIMEOUT = 10.0
"""How long after labgrid's off the device's process group may still have live members."""
_ENVIRON_LOCK = threading.Lock()  # LG_* values are in os.environ only while one environment loads


def load_environment(env_file: Path, substitutions: Mapping[str, str] | None = None) -> Any:
    """labgrid's `Environment` for `env_file`, its `!template $LG_*` strings filled from `substitutions`."""
    if not env_file.is_file():
        raise ConfigError(f"labgrid: no environment file {env_file}")
    try:
        from labgrid import Environment  # type: ignore[import-untyped]
        from labgrid.exceptions import InvalidConfigError, NoConfigFoundError  # type: ignore[import-untyped]
    except ModuleNotFoundError:
        raise ConfigError("labgrid power needs labgrid: pip install '.[labgrid]'") from None
    values = {PYTHON_VARIABLE: sys.executable, **(substitutions or {})}
    if any(not key.startswith("LG_") for key in values):
        raise ConfigError(f"labgrid reads only LG_* variables into a YAML, not {sorted(values)}")
    with _ENVIRON_LOCK:
        saved = {key: os.environ.get(key) for key in values}
        os.environ.update(values)
        try:
            return Environment(str(env_file))
        except (InvalidConfigError, NoConfigFoundError) as exc:
            raise ConfigError(f"labgrid: {env_file}: {exc}") from None
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old


def _power_driver(environment: Any, env_file: Path, target: str, driver: str | None, *, activate: bool) -> Any:
    """The target's PowerProtocol driver; a missing target or driver is the YAML's fault (ConfigError)."""
    bound = environment.get_target(target)
    if bound is None:
        raise ConfigError(f"labgrid: {env_file} has no target {target!r}")
    try:
        return bound.get_driver("PowerProtocol", name=driver, activate=activate)
    except Exception as exc:  # labgrid's NoDriverFoundError and binding errors: the YAML is wrong
        raise ConfigError(f"labgrid: target {target!r} of {env_file} has no usable power driver: {exc}") from None


def check_environment(env_file: Path, *, target: str = "main", driver: str | None = None) -> None:
    """What `check-profile` asks of a labgrid profile: the file loads and the target has the driver."""
    environment = load_environment(env_file, {DEVICE_GROUP_VARIABLE: str(env_file.parent / "device.group")})
    try:
        _power_driver(environment, env_file, target, driver, activate=False)
    finally:
        environment.cleanup()


class LabgridPower(MinOffTimePower):
    """Power for a device whose supply a labgrid target's power driver switches."""

    def __init__(self, env_file: Path, *, target: str = "main", driver: str | None = None,
                 min_off_time: float = 1.0, timeline: Timeline | None = None, name: str = "labgrid",
                 substitutions: Mapping[str, str] | None = None) -> None:
        super().__init__(min_off_time)
        self.env_file, self.target_name = env_file, target
        self.timeline, self.name = timeline, name
        self._env: Any = load_environment(env_file, substitutions)
        self._target: Any = self._env.get_target(target)
        self._driver: Any = _power_driver(self._env, env_file, target, driver, activate=True)

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
        if self.timeline is not None:
            self.timeline.record("power", self.name, "flip", state="on" if on else "off",
                                 env=str(self.env_file), target=self.target_name)


class LabgridSuppliedProcess(ProcessGroupPower):
    """A software device on a labgrid-switched supply: labgrid cuts and restores it, the bench boots it.

    `off()` asks labgrid's driver to cut and then checks the cut: the device's process group
    must be gone within CUT_TIMEOUT, or the rig does not power this device (RelayError).
    """

    def __init__(self, argv: Sequence[str], *, env_file: Path, group_file: Path, target: str = "main",
                 driver: str | None = None, off_time: float = 1.0, console: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None, timeline: Timeline | None = None,
                 before_on: Callable[[], None] | None = None, after_off: Callable[[], None] | None = None) -> None:
        self.group_file = group_file
        self.supply = LabgridPower(env_file, target=target, driver=driver, min_off_time=off_time, timeline=timeline,
                                   substitutions={DEVICE_GROUP_VARIABLE: str(group_file)})
        super().__init__(argv, env=env, cwd=cwd, console=console, timeline=timeline, off_time=off_time,
                         before_on=before_on, after_off=after_off)

    def on(self) -> None:
        if self.is_on():
            return
        self.supply.on()
        super().on()
        if self.pid is not None:
            write_group_file(self.group_file, self.pid)

    def off(self) -> None:
        pid = self.pid
        self.supply.off()
        if pid is not None:
            deadline = time.monotonic() + CUT_TIMEOUT
            while live_group_members(pid):
                if time.monotonic() > deadline:
                    raise RelayError(f"labgrid power off ({self.supply.env_file}, target {self.supply.target_name}) "
                                     f"left the device running (process group {pid}): the rig does not cut this "
                                     f"device; its off command must kill the group named in ${DEVICE_GROUP_VARIABLE}")
                time.sleep(0.02)
        super().off()  # reaps the leader, drops the dead device's sockets, records the flip
        self.group_file.unlink(missing_ok=True)

    def close(self) -> None:
        self.supply.close()


def _start_ticks(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (/proc stat field 22): tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()[19]


def write_group_file(path: Path, pgid: int) -> None:
    """`<pgid> <leader start ticks>`, atomically: what `kill-group` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"{pgid} {_start_ticks(pgid) or ''}\n", encoding="utf-8")
    tmp.replace(path)


def kill_group_in(path: Path) -> str:
    """SIGKILL the process group a group file names; what was done, in words.

    No file: the supply is already off. A leader alive with another start time: the file is
    stale (the pid was reused) and nothing is killed.
    """
    try:
        fields = path.read_text(encoding="utf-8").split()
    except FileNotFoundError:
        return "no device group: nothing to cut"
    if not fields or not fields[0].isdigit():
        raise ConfigError(f"{path} does not name a process group")
    pgid = int(fields[0])
    started = _start_ticks(pgid)
    if started is not None and len(fields) > 1 and started != fields[1]:
        return f"process {pgid} is not the device any more (stale {path}): nothing cut"
    kill_group(pgid)
    return f"process group {pgid} cut"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m harness.faults.power.labgrid switch|kill-group ...`: the commands a rig's
    ExternalPowerDriver runs (one relay flip through our board drivers; a software device's cut)."""
    from harness.faults.power.relay import open_board

    parser = argparse.ArgumentParser(prog="python -m harness.faults.power.labgrid")
    sub = parser.add_subparsers(dest="command", required=True)
    flip = sub.add_parser("switch", help="switch one relay channel on or off")
    flip.add_argument("--board", default="lcus")
    flip.add_argument("--port", required=True)
    flip.add_argument("--channel", type=int, default=1)
    flip.add_argument("--channels", type=int, default=None)
    flip.add_argument("state", choices=("on", "off"))
    cut = sub.add_parser("kill-group", help="SIGKILL the software device's process group named in a file")
    cut.add_argument("--group-file", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "kill-group":
            print(f"labgrid kill-group: {kill_group_in(args.group_file)}")
            return 0
        board = open_board(args.board, args.port, channel=args.channel, channels=args.channels)
        try:
            board.set(args.channel, args.state == "on")
        finally:
            board.close()
    except (ConfigError, FaultInjectionError) as exc:
        print(f"labgrid {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


switch = main  # the name the relay example and its test use


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


if __name__ == "__main__":
    raise SystemExit(main())

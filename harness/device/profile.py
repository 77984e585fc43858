"""Device profiles (fixtures/devices/NAME.toml): what a device is and how the bench drives it.

A vendor describes a device in TOML, no code: identity, capabilities, items declared not
applicable, and one driver per concern (power, capture, status, pairing code, control).
A software device is launched from a command template; the harness fills the
placeholders {api_url} {ca_bundle} {media_dir} {state_dir} {client_id} {client_secret}
{status_port} (plus {python}, {repo}, {plain_http_url} and {vcamera_dir}: a directory
holding exactly one generated JPEG, the card of libgphoto2's virtual camera for a tethered
rig). `{client_secret}` may only appear in
`[launch.env]` values and `[launch.files]` contents: argv is world-readable, so a
profile that puts it in `command` is refused with ConfigError.

    profile = load_profile("reference")          # fixtures/devices/reference.toml
    profile = load_profile("mutant:no-retry-503")  # reference device with a seeded defect
"""

from __future__ import annotations

import re
import signal
import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.config_files import read_toml
from harness.errors import ConfigError
from harness.items.applies import DEVICE_KINDS as KINDS
from harness.items.checklist import load_checklist

REPO_ROOT = Path(__file__).resolve().parents[2]
PROFILE_DIR = REPO_ROOT / "fixtures" / "devices"
PLACEHOLDERS = frozenset(
    {"api_url", "ca_bundle", "media_dir", "state_dir", "client_id", "client_secret", "status_port", "python", "repo",
     "plain_http_url", "vcamera_dir"}
)
SECRET_PLACEHOLDERS = frozenset({"client_secret"})
DEVICE_KINDS = KINDS  # the codes applicability expressions read (harness.items.applies)
POWER_DRIVERS = frozenset({"process", "relay", "manual", "labgrid"})
CAPTURE_DRIVERS = frozenset({"watch-folder", "gphoto2", "command", "operator"})
STATUS_DRIVERS = frozenset({"http-json", "none"})
PAIRING_SOURCES = frozenset({"status", "console", "operator"})
CONTROL_DRIVERS = frozenset({"local-api", "none"})
# a stack dump request must never be what ends or pauses the device under test
STOPPING_SIGNALS = frozenset({"SIGKILL", "SIGSTOP", "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGTSTP",
                              "SIGCONT", "SIGCHLD", "SIGTTIN", "SIGTTOU"})


@dataclass(frozen=True)
class LaunchSpec:
    """How to start a software device: argv template, env and files written before start."""

    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    ready_timeout: float = 30.0
    # the device dumps every thread's stack on this signal (Python's faulthandler): the
    # bench asks for it when a scenario fails. The dump goes to the console, or to this file.
    stack_dump_signal: str | None = None
    stack_dump_file: str | None = None


@dataclass(frozen=True)
class PowerSpec:
    driver: str = "process"
    port: str | None = None  # relay: serial port or URL (loop://, socket://...)
    channel: int | None = None
    board: str | None = None
    off_time: float = 1.0
    env: str | None = None  # labgrid: environment file, absolute (written relative to the profile)
    target: str = "main"  # labgrid: the target (role) in it
    name: str | None = None  # labgrid: which power driver of the target, if it has several


@dataclass(frozen=True)
class CaptureSpec:
    driver: str = "watch-folder"
    folder: str = "{media_dir}"
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class StatusSpec:
    driver: str = "none"
    url: str | None = None


@dataclass(frozen=True)
class PairingSpec:
    source: str = "operator"
    regex: str | None = None


@dataclass(frozen=True)
class ControlSpec:
    driver: str = "none"
    url: str | None = None


@dataclass(frozen=True)
class DeviceProfile:
    """A validated device profile."""

    name: str
    kind: str
    firmware: str
    description: str = ""
    capabilities: frozenset[str] = frozenset()
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    declared: Mapping[str, str] = field(default_factory=dict)
    launch: LaunchSpec | None = None
    power: PowerSpec = PowerSpec()
    capture: CaptureSpec = CaptureSpec()
    status: StatusSpec = StatusSpec()
    pairing: PairingSpec = PairingSpec()
    control: ControlSpec = ControlSpec()
    inspect: tuple[str, ...] = ()
    mutant: str | None = None
    path: Path | None = None

    @property
    def device_id(self) -> str:
        """The identity shown in reports (name, plus the mutant when one is seeded)."""
        return self.name if self.mutant is None else f"{self.name}+{self.mutant}"

    def render(self, template: str, values: Mapping[str, str | int]) -> str:
        """Fill placeholders in one template string; unknown placeholders are a ConfigError."""
        return render_template(template, values, where=f"profile {self.name}")

    def summary(self) -> dict[str, Any]:
        """Identity for the certificate and Allure parameters (never secrets)."""
        return {
            "name": self.name,
            "id": self.device_id,
            "kind": self.kind,
            "firmware": self.firmware,
            "description": self.description,
            "capabilities": sorted(self.capabilities),
            "mutant": self.mutant,
            "profile": str(self.path) if self.path else None,
        }


def placeholders_in(template: str) -> set[str]:
    """The {names} a template uses (format-spec syntax; `{{` escapes a brace)."""
    names: set[str] = set()
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None:
            names.add(name)
    return names


def render_template(template: str, values: Mapping[str, str | int], *, where: str = "template") -> str:
    names = placeholders_in(template)
    unknown = names - set(values)
    if unknown:
        raise ConfigError(f"{where}: unknown placeholder(s) {sorted(unknown)} in {template!r}")
    return template.format_map({k: str(v) for k, v in values.items()})


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


def _str(data: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: field {key!r} must be a non-empty string")
    return value


def _choice(data: Mapping[str, Any], key: str, choices: frozenset[str], where: str, default: str) -> str:
    value = data.get(key, default)
    if value not in choices:
        raise ConfigError(f"{where}: field {key!r} must be one of {sorted(choices)}, got {value!r}")
    return str(value)


def _check_placeholders(template: str, where: str, *, secrets_allowed: bool) -> None:
    try:
        names = placeholders_in(template)
    except ValueError as exc:
        raise ConfigError(f"{where}: bad template {template!r}: {exc}") from exc
    unknown = names - PLACEHOLDERS
    if unknown:
        raise ConfigError(f"{where}: unknown placeholder(s) {sorted(unknown)}; known: {sorted(PLACEHOLDERS)}")
    if not secrets_allowed and names & SECRET_PLACEHOLDERS:
        raise ConfigError(
            f"{where}: {{client_secret}} is not allowed here (argv is visible to every user); "
            "pass it through [launch.env] or [launch.files]"
        )


def _launch(data: Mapping[str, Any], where: str) -> LaunchSpec | None:
    if "launch" not in data:
        return None
    raw = _table(data, "launch", where)
    where = f"{where} [launch]"
    command = raw.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise ConfigError(f"{where}: field 'command' must be a non-empty list of strings")
    for n, arg in enumerate(command):
        _check_placeholders(arg, f"{where} command[{n}]", secrets_allowed=False)
    env = _table(raw, "env", where)
    for key, value in env.items():
        if not isinstance(value, str):
            raise ConfigError(f"{where} env.{key}: must be a string")
        _check_placeholders(value, f"{where} env.{key}", secrets_allowed=True)
    files = _table(raw, "files", where)
    for key, value in files.items():
        if not isinstance(value, str):
            raise ConfigError(f"{where} files.{key!r}: must be a string")
        _check_placeholders(key, f"{where} files (path {key!r})", secrets_allowed=False)
        _check_placeholders(value, f"{where} files.{key!r}", secrets_allowed=True)
    cwd = raw.get("cwd")
    if cwd is not None:
        _check_placeholders(_str(raw, "cwd", where), f"{where} cwd", secrets_allowed=False)
    timeout = raw.get("ready_timeout", 30.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{where}: field 'ready_timeout' must be a positive number")
    dump_signal = _stack_dump_signal(raw, where)
    dump_file = raw.get("stack_dump_file")
    if dump_file is not None:
        _check_placeholders(_str(raw, "stack_dump_file", where), f"{where} stack_dump_file", secrets_allowed=False)
        if dump_signal is None:
            raise ConfigError(f"{where}: field 'stack_dump_file' needs 'stack_dump_signal'")
    return LaunchSpec(command=tuple(command), env=dict(env), files=dict(files), cwd=cwd, ready_timeout=float(timeout),
                      stack_dump_signal=dump_signal, stack_dump_file=dump_file)


def _stack_dump_signal(raw: Mapping[str, Any], where: str) -> str | None:
    """`stack_dump_signal = "SIGUSR1"`: a signal name this machine knows, never one that stops the device."""
    value = raw.get("stack_dump_signal")
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("SIG") or value.startswith("SIG_"):
        raise ConfigError(f"{where}: field 'stack_dump_signal' must be a signal name such as \"SIGUSR1\", got {value!r}")
    if not isinstance(getattr(signal, value, None), signal.Signals):
        raise ConfigError(f"{where}: field 'stack_dump_signal': {value!r} is not a signal on this machine")
    if value in STOPPING_SIGNALS:
        raise ConfigError(f"{where}: field 'stack_dump_signal': {value} stops or kills a process; "
                          "use the signal the device registered its stack dump on (e.g. SIGUSR1)")
    return value


def _labgrid_power(p: Mapping[str, Any], spec: PowerSpec, where: str, path: Path | None) -> PowerSpec:
    """`driver = "labgrid"` (harness/faults/power/labgrid.py): the environment file, relative to the
    profile, must load and its target must have the power driver, before anything runs."""
    # imported here: only a labgrid profile pays for the power package
    from harness.faults.power.labgrid import check_environment

    env = Path(_str(p, "env", where))
    target = _str(p, "target", where, "main")
    name = p.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError(f"{where}: field 'name' must be a non-empty string (the target's power driver)")
    if not env.is_absolute():
        env = ((path.parent if path is not None else Path.cwd()) / env).resolve()
    try:
        check_environment(env, target=target, driver=name)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return replace(spec, env=str(env), target=target, name=name)


def _check_declarations(na: Mapping[str, Any], declared: Mapping[str, Any], where: str) -> None:
    """What a vendor may say instead of being tested, checked against the checklist before any run.

    Every key must be an item of the checklist; every entry needs its reason or evidence; and a
    declaration may only stand where the checklist verifies the item by declaration (a profile
    cannot declare its way past an item the oracle decides).
    """
    checklist = load_checklist()
    for table_name, table in (("not_applicable", na), ("declared", declared)):
        for item_id, reason in table.items():
            if not re.match(r"^C2C-[A-Z]+-\d{2}$", item_id):
                raise ConfigError(f"{where}: [{table_name}] key {item_id!r} is not a checklist ID")
            if item_id not in checklist:
                raise ConfigError(f"{where}: [{table_name}] {item_id} is not an item of the checklist")
            if not isinstance(reason, str) or not reason.strip():
                raise ConfigError(f"{where}: [{table_name}] {item_id} needs a reason/evidence string")
    for item_id in declared:
        how = checklist[item_id].how_verified
        if "declared" not in how:
            raise ConfigError(f"{where}: [declared] {item_id} is verified by {' / '.join(how)}, not by declaration; "
                              "remove it (the bench measures it)")


def parse_profile(data: Mapping[str, Any], *, path: Path | None = None) -> DeviceProfile:
    """Validate a decoded profile; every error names the field."""
    name = _str(data, "name", "profile")
    where = f"profile {name}"
    kind = _choice(data, "kind", DEVICE_KINDS, where, "")
    firmware = _str(data, "firmware", where)
    caps = data.get("capabilities", [])
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise ConfigError(f"{where}: field 'capabilities' must be a list of strings")
    na = _table(data, "not_applicable", where)
    declared = _table(data, "declared", where)
    _check_declarations(na, declared, where)
    launch = _launch(data, where)

    p = _table(data, "power", where)
    power = PowerSpec(
        driver=_choice(p, "driver", POWER_DRIVERS, f"{where} [power]", "process" if launch else "manual"),
        port=p.get("port"),
        channel=p.get("channel"),
        board=p.get("board"),
        off_time=float(p.get("off_time", 1.0)),
    )
    if power.driver == "process" and launch is None:
        raise ConfigError(f"{where} [power]: driver 'process' needs a [launch] command")
    if power.driver == "relay" and (not isinstance(power.port, str) or not isinstance(power.channel, int)):
        raise ConfigError(f"{where} [power]: driver 'relay' needs string 'port' and integer 'channel'")
    if power.driver == "labgrid":
        power = _labgrid_power(p, power, f"{where} [power]", path)

    c = _table(data, "capture", where)
    command = c.get("command", [])
    if not isinstance(command, list) or not all(isinstance(a, str) for a in command):
        raise ConfigError(f"{where} [capture]: field 'command' must be a list of strings")
    capture = CaptureSpec(
        driver=_choice(c, "driver", CAPTURE_DRIVERS, f"{where} [capture]", "watch-folder"),
        folder=str(c.get("folder", "{media_dir}")),
        command=tuple(command),
    )
    _check_placeholders(capture.folder, f"{where} [capture] folder", secrets_allowed=False)
    if capture.driver == "command" and not capture.command:
        raise ConfigError(f"{where} [capture]: driver 'command' needs field 'command'")

    s = _table(data, "status", where)
    status = StatusSpec(driver=_choice(s, "driver", STATUS_DRIVERS, f"{where} [status]", "none"), url=s.get("url"))
    if status.driver == "http-json":
        _check_placeholders(_str(s, "url", f"{where} [status]"), f"{where} [status] url", secrets_allowed=False)

    pr = _table(data, "pairing", where)
    pairing = PairingSpec(
        source=_choice(pr, "source", PAIRING_SOURCES, f"{where} [pairing]", "operator"), regex=pr.get("regex")
    )
    if pairing.source == "console":
        rx = _str(pr, "regex", f"{where} [pairing]")
        try:
            compiled = re.compile(rx)
        except re.error as exc:
            raise ConfigError(f"{where} [pairing]: field 'regex' is not a valid regex: {exc}") from exc
        if compiled.groups < 1:
            raise ConfigError(f"{where} [pairing]: field 'regex' needs one group capturing the code")
        if launch is None:
            raise ConfigError(f"{where} [pairing]: source 'console' needs a [launch] command to read")
    if pairing.source == "status" and status.driver == "none":
        raise ConfigError(f"{where} [pairing]: source 'status' needs a [status] driver")

    ct = _table(data, "control", where)
    control = ControlSpec(driver=_choice(ct, "driver", CONTROL_DRIVERS, f"{where} [control]", "none"), url=ct.get("url"))
    if control.driver == "local-api":
        _check_placeholders(_str(ct, "url", f"{where} [control]"), f"{where} [control] url", secrets_allowed=False)

    inspect = data.get("inspect", [])
    if not isinstance(inspect, list) or not all(isinstance(i, str) for i in inspect):
        raise ConfigError(f"{where}: field 'inspect' must be a list of path templates")
    for n, i in enumerate(inspect):
        _check_placeholders(i, f"{where} inspect[{n}]", secrets_allowed=False)

    known = {"name", "kind", "firmware", "description", "capabilities", "not_applicable", "declared",
             "launch", "power", "capture", "status", "pairing", "control", "inspect"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    return DeviceProfile(
        name=name, kind=kind, firmware=firmware, description=str(data.get("description", "")),
        capabilities=frozenset(caps), not_applicable=dict(na), declared=dict(declared), launch=launch,
        power=power, capture=capture, status=status, pairing=pairing, control=control,
        inspect=tuple(inspect), path=path,
    )


# Devices a mutant can be seeded into, by the module their profile runs with `-m`; a mutant
# named "<profile>-<defect>" (independent-forget-queue) is a defect of that profile's device.
MUTABLE_MODULES = {"reference": "reference_device", "independent": "tests.console_device.device"}


def mutant_base(mutant: str) -> str:
    """The profile a mutant's defect is seeded into: "independent-..." -> independent, else reference."""
    head = mutant.split("-", 1)[0]
    return head if head != mutant and head in MUTABLE_MODULES else "reference"


def with_mutant(profile: DeviceProfile, mutant: str) -> DeviceProfile:
    """The profile launched through tests/mutants/launch.py with one seeded defect."""
    if profile.launch is None:
        raise ConfigError(f"profile {profile.name}: a mutant needs a [launch] command")
    command = list(profile.launch.command)
    # "{python} -m reference_device ARGS" -> "{python} -m tests.mutants.launch NAME -- ARGS"
    module = MUTABLE_MODULES.get(profile.name, "reference_device")
    try:
        at = command.index(module)
    except ValueError as exc:
        raise ConfigError(f"profile {profile.name}: mutants patch `-m {module}`, not {command!r}") from exc
    command[at:at + 1] = ["tests.mutants.launch", mutant, "--"]
    env = {**profile.launch.env, "C2C_MUTANT": mutant, "C2C_PLAIN_HTTP_URL": "{plain_http_url}"}
    # replace(): the rest of the launch (files, ready timeout, stack dumps) stays the reference's
    launch = replace(profile.launch, command=tuple(command), env=env, cwd=profile.launch.cwd or "{repo}")
    return DeviceProfile(**{**profile.__dict__, "launch": launch, "mutant": mutant})


def load_profile(name_or_path: str | Path, *, directory: Path = PROFILE_DIR) -> DeviceProfile:
    """Load a profile by name (fixtures/devices/NAME.toml), path, or `mutant:NAME`."""
    text = str(name_or_path)
    if text.startswith("mutant:"):
        name = text.split(":", 1)[1]
        return with_mutant(load_profile(mutant_base(name), directory=directory), name)
    path = Path(text)
    if path.suffix != ".toml":
        path = directory / f"{text}.toml"
    if text.startswith("mutant-") and not path.exists():
        name = text.removeprefix("mutant-")
        return with_mutant(load_profile(mutant_base(name), directory=directory), name)
    known = sorted(p.stem for p in directory.glob("*.toml")) if directory.is_dir() else []
    data = read_toml(path, f"device profile {text!r}", missing_hint=f" (known profiles: {known})")
    return parse_profile(data, path=path)


def default_values(**overrides: str | int) -> dict[str, str | int]:
    """Placeholder values that do not depend on the bench ({python}, {repo})."""
    return {"python": sys.executable, "repo": str(REPO_ROOT), **overrides}

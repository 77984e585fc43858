"""One fault vocabulary across every layer, so a scenario names faults the same way everywhere.

A fault is written `LAYER:NAME [modifiers]`:

    network:mesh-roam            a named network profile (until stopped)
    network:link-down            the device's link goes down (until stopped)
    s3:slowdown x3               the next 3 S3 requests get 503 SlowDown
    api:internal-error path=^/v2/devices/heartbeat
    http:expired-url x2          the same errors injected by mitmproxy instead of the emulator
    tls:wrong-host               an interceptor on the device's path shows the trusted CA's
                                 certificate for another host (also: tls:untrusted-ca, tls:expired)
    api:conflict-slow-down x4    the next 4 asset creations get 409 `slow_down` (API only:
                                 no s3: form; http: defaults to target=api and asset creation)
    auth:expire-tokens           access tokens expire now
    auth:refresh-failure         /v2/auth/token fails until stopped
    auth:poll-slow-down x2       the next 2 device-code polls get `slow_down` (RFC 8628)
    cloud:pause                  the device's channel is paused (until stopped, then resumed)
    cloud:settings device_code_lifetime=12
                                 emulator settings changed (until stopped, then put back)
    power:cut                    relay open (until stopped, then closed again)
    power:cycle off_time=5
    media:truncate path=/media/A001.mov

Modifiers: `xN` sets `count`; `KEY=VALUE` sets a parameter (ints, floats, true/false are
converted); `5s` / `250ms` sets `duration` in seconds. `s3:` and `api:` are the cloud
layer's error rules. Unknown layers, names or modifiers fail with a `ConfigError` naming them.

`inject(fault, targets)` runs it against the protocol objects in `FaultTargets` and records
its start and stop on the timeline; lasting faults return an `ActiveFault` to `stop()`. This
is the only way faults are applied: the BDD steps inject through it and hand the handle to
the scenario's bench, which stops it at cleanup whatever happened. The emulator's rule
format stays private to `harness.faults.cloud` (`arm`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.cloud.fault_responses import API_ONLY_KINDS, check_kind
from harness.cloud.paths import ASSET_CREATE_PATH, TOKEN_RULE
from harness.errors import ConfigError
from harness.faults.cloud import EVERY_TIME, S3_KINDS, arm
from harness.faults.http.flawed_certs import SIGNED_FLAWS
from harness.faults.network.profiles import PROFILES
from harness.protocols import Cloud, Media, Network, Power
from harness.timeline import Timeline

LAYERS = ("network", "http", "tls", "auth", "cloud", "power", "media")
RULE_PREFIXES = ("s3", "api")
"""Written `s3:KIND`, stored as layer `cloud`, name `s3-KIND`."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")


@dataclass(frozen=True)
class Fault:
    """A fault to inject: which layer, which fault, with what parameters."""

    layer: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Fault:
        """Parse `LAYER:NAME [xN] [KEY=VALUE ...] [DURATION]`, checking the name is known."""
        fault = _parse(text)
        if (fault.layer, fault.name) not in REGISTRY:
            known = sorted(n for layer, n in REGISTRY if layer == fault.layer)
            raise ConfigError(f"unknown fault {text.split()[0]!r} ({fault.layer}:{fault.name}); "
                              f"known {fault.layer} faults: {', '.join(known) or 'none'}")
        return fault

    def __str__(self) -> str:
        prefix, _, rest = self.name.partition("-")
        head = (f"{prefix}:{rest}" if self.layer == "cloud" and prefix in RULE_PREFIXES
                else f"{self.layer}:{self.name}")
        mods = [f"x{v}" if k == "count" else f"{k}={v}" for k, v in self.params.items()]
        return " ".join([head, *mods])


def _parse(text: str) -> Fault:
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("empty fault: write LAYER:NAME, e.g. 'power:cut'")
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ConfigError(f"fault {text!r} cannot be parsed: {exc}") from None
    head, mods = words[0], words[1:]
    layer, sep, name = head.partition(":")
    layer, name = layer.strip().lower(), name.strip().lower().replace("_", "-")
    if not sep or not name:
        raise ConfigError(f"fault {text!r} must be written LAYER:NAME, e.g. 'power:cut'")
    if layer in RULE_PREFIXES:
        layer, name = "cloud", f"{layer}-{name}"
    if layer not in LAYERS:
        raise ConfigError(f"unknown fault layer {layer!r} in {text!r}; known layers: "
                          f"{', '.join((*LAYERS, *RULE_PREFIXES))}")
    if not _NAME.match(name):
        raise ConfigError(f"fault name {name!r} in {text!r} has characters other than a-z 0-9 - _")
    params: dict[str, Any] = {}
    for mod in mods:
        if re.fullmatch(r"x\d+", mod):
            params["count"] = int(mod[1:])
            if params["count"] < 1:
                raise ConfigError(f"fault count must be >= 1 in {text!r}")
        elif (m := _DURATION.match(mod)) is not None:
            scale = {"ms": 0.001, "s": 1.0, "m": 60.0}[m.group(2)]
            params["duration"] = float(m.group(1)) * scale
        elif "=" in mod:
            key, value = mod.split("=", 1)
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", key):
                raise ConfigError(f"bad fault parameter name {key!r} in {text!r}")
            params[key] = _scalar(value)
        else:
            raise ConfigError(f"fault modifier {mod!r} in {text!r} is not xN, KEY=VALUE or a "
                              f"duration like 5s")
    return Fault(layer, name, params)


def _scalar(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value


class TlsPath(Protocol):
    """Puts a TLS interceptor on the device's path and takes it away (the BDD bench does)."""

    def start_interceptor(self, flaw: str = "untrusted-ca") -> Any: ...
    def stop_interceptor(self) -> None: ...


@dataclass
class FaultTargets:
    """The protocol objects faults act on. Only the ones a fault needs must be given."""

    timeline: Timeline = field(default_factory=Timeline)
    network: Network | None = None
    power: Power | None = None
    cloud: Cloud | None = None
    media: Media | None = None
    http: Any = None  # a harness.faults.http.addons.ErrorInjector inside a running MitmProxy
    tls: TlsPath | None = None
    device_id: str | None = None
    project_id: str | None = None
    media_path: Path | None = None

    def need(self, what: str, fault: Fault) -> Any:
        value = getattr(self, what)
        if value is None:
            raise ConfigError(f"fault {fault} needs a {what} target and none was given")
        return value


StopFn = Callable[[], None]
StartFn = Callable[[FaultTargets, Fault], StopFn | None]
"""Starts the fault; returns how to stop it, or None for an instant fault."""

REGISTRY: dict[tuple[str, str], StartFn] = {}


def register(layer: str, name: str) -> Callable[[StartFn], StartFn]:
    """Add a fault to the vocabulary (`@register("power", "cut")`)."""
    if layer not in LAYERS:
        raise ConfigError(f"cannot register fault in unknown layer {layer!r}")

    def add(fn: StartFn) -> StartFn:
        REGISTRY[(layer, name)] = fn
        return fn

    return add


class ActiveFault:
    """A running fault. `stop()` ends it and records the stop (idempotent)."""

    def __init__(self, fault: Fault, timeline: Timeline, stop: StopFn | None) -> None:
        self.fault = fault
        self._timeline = timeline
        self._stop = stop
        self.stopped = stop is None

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        try:
            if self._stop is not None:
                self._stop()
        finally:
            _record(self._timeline, self.fault, "stop")

    def __enter__(self) -> ActiveFault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def inject(fault: Fault | str, targets: FaultTargets) -> ActiveFault:
    """Start `fault` (a Fault or its text) on `targets`; instant faults are already stopped."""
    parsed = Fault.parse(fault) if isinstance(fault, str) else fault
    start = REGISTRY.get((parsed.layer, parsed.name))
    if start is None:
        raise ConfigError(f"unknown fault {parsed}")
    _record(targets.timeline, parsed, "start")
    try:
        stop = start(targets, parsed)
    except BaseException as exc:
        _record(targets.timeline, parsed, "stop", failed=type(exc).__name__)
        raise
    active = ActiveFault(parsed, targets.timeline, stop)
    if stop is None:
        _record(targets.timeline, parsed, "stop")
    return active


def _record(timeline: Timeline, fault: Fault, action: str, **extra: Any) -> None:
    timeline.record(fault.layer, fault.name, action, fault=str(fault), params=dict(fault.params),
                    **extra)


@contextmanager
def active(fault: Fault | str, targets: FaultTargets) -> Iterator[ActiveFault]:
    """The fault is active inside the block and stopped after it, even on error."""
    running = inject(fault, targets)
    try:
        yield running
    finally:
        running.stop()


# --- network -------------------------------------------------------------------------------
def _network_profiles() -> tuple[str, ...]:
    return tuple(PROFILES)


def _profile(name: str) -> StartFn:
    def start(t: FaultTargets, f: Fault) -> StopFn:
        network: Network = t.need("network", f)
        network.apply_profile(name)
        return network.clear

    return start


for _name in _network_profiles():
    register("network", _name)(_profile(_name))


@register("network", "link-down")
def _link_down(t: FaultTargets, f: Fault) -> StopFn:
    network: Network = t.need("network", f)
    network.link_down()
    return network.link_up


@register("network", "switch-path")
def _switch_path(t: FaultTargets, f: Fault) -> None:
    t.need("network", f).switch_path()


@register("network", "clear")
def _network_clear(t: FaultTargets, f: Fault) -> None:
    t.need("network", f).clear()


# --- power ---------------------------------------------------------------------------------
@register("power", "cut")
def _power_cut(t: FaultTargets, f: Fault) -> StopFn:
    power: Power = t.need("power", f)
    power.off()
    return power.on


@register("power", "cycle")
def _power_cycle(t: FaultTargets, f: Fault) -> None:
    off_time = f.params.get("off_time", f.params.get("duration"))
    t.need("power", f).cycle(None if off_time is None else float(off_time))


@register("power", "on")
def _power_on(t: FaultTargets, f: Fault) -> None:
    t.need("power", f).on()


@register("power", "off")
def _power_off(t: FaultTargets, f: Fault) -> None:
    t.need("power", f).off()


# --- auth and cloud --------------------------------------------------------------------------
def _device_id(t: FaultTargets, f: Fault, required: bool) -> str | None:
    device_id = f.params.get("device_id", t.device_id)
    if required and device_id is None:
        raise ConfigError(f"fault {f} needs a device_id (parameter or FaultTargets.device_id)")
    return None if device_id is None else str(device_id)


@register("auth", "expire-tokens")
def _expire_tokens(t: FaultTargets, f: Fault) -> None:
    cloud: Cloud = t.need("cloud", f)
    cloud.expire_tokens(_device_id(t, f, required=False))


@register("auth", "refresh-failure")
def _refresh_failure(t: FaultTargets, f: Fault) -> StopFn:
    """The token endpoint as a whole fails, so device-code polls fail too while it is active."""
    return arm(t.need("cloud", f), "api", str(f.params.get("kind", "unauthorized")),
               count=int(f.params.get("count", EVERY_TIME)), path=TOKEN_RULE, method="POST")


@register("auth", "poll-slow-down")
def _poll_slow_down(t: FaultTargets, f: Fault) -> StopFn:
    return arm(t.need("cloud", f), "api", "slow_down", **_rule_args(f) | {"path": TOKEN_RULE,
                                                                           "method": "POST"})


@register("auth", "revoke")
def _revoke(t: FaultTargets, f: Fault) -> None:
    cloud: Cloud = t.need("cloud", f)
    cloud.revoke_device(str(_device_id(t, f, required=True)))


@register("cloud", "pause")
def _pause(t: FaultTargets, f: Fault) -> StopFn:
    cloud: Cloud = t.need("cloud", f)
    device_id = str(_device_id(t, f, required=True))
    cloud.pause_device(device_id)
    return lambda: cloud.resume_device(device_id)


@register("cloud", "settings")
def _settings(t: FaultTargets, f: Fault) -> StopFn:
    """Change emulator settings (`device_code_lifetime=12`); stopping puts back what was there."""
    if not f.params:
        raise ConfigError(f"fault {f} needs at least one KEY=VALUE setting")
    cloud: Cloud = t.need("cloud", f)
    before = cloud.update_settings()
    cloud.update_settings(**f.params)
    restore = {k: before[k] for k in f.params if k in before}

    def put_back() -> None:
        if restore:
            cloud.update_settings(**restore)

    return put_back


@register("cloud", "rename-project")
def _rename_project(t: FaultTargets, f: Fault) -> None:
    project_id = f.params.get("project_id", t.project_id)
    name = f.params.get("name")
    if project_id is None or not name:
        raise ConfigError(f"fault {f} needs project_id (or FaultTargets.project_id) and name=")
    cloud: Cloud = t.need("cloud", f)
    cloud.rename_project(str(project_id), str(name))


@register("cloud", "advance-clock")
def _advance_clock(t: FaultTargets, f: Fault) -> None:
    seconds = f.params.get("seconds", f.params.get("duration"))
    if seconds is None:
        raise ConfigError(f"fault {f} needs seconds= or a duration like 3600s")
    cloud: Cloud = t.need("cloud", f)
    cloud.advance_clock(float(seconds))


def _rule_args(f: Fault, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    unknown = set(f.params) - {"count", "path", "method", "retry_after", *extra}
    if unknown:
        raise ConfigError(f"fault {f}: unknown parameter(s) {', '.join(sorted(unknown))}")
    args: dict[str, Any] = {k: f.params[k] for k in ("path", "method", "retry_after") if k in f.params}
    args["count"] = int(f.params.get("count", 1))
    return args


def _cloud_rule(target: str, kind: str) -> StartFn:
    def start(t: FaultTargets, f: Fault) -> StopFn:
        return arm(t.need("cloud", f), target, kind, **_asset_create_default(kind, _rule_args(f)))

    return start


def _http_rule(kind: str) -> StartFn:
    def start(t: FaultTargets, f: Fault) -> StopFn:
        from harness.faults.http.addons import ErrorRule

        injector = t.need("http", f)
        args = _asset_create_default(kind, _rule_args(f, extra=("target",)))
        target = str(f.params.get("target", "api" if kind in API_ONLY_KINDS else "s3"))
        check_kind(kind, target)
        rule = injector.add(ErrorRule(kind=kind, target=target, **args))
        return lambda: injector.remove(rule)

    return start


def _asset_create_default(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """API-only kinds (the 409s of asset creation) aim at asset creation unless told otherwise."""
    if kind in API_ONLY_KINDS and "path" not in args:
        args = {**args, "path": ASSET_CREATE_PATH, "method": args.get("method", "POST")}
    return args


for _kind in S3_KINDS:
    _hyphen = _kind.replace("_", "-")
    if _kind not in API_ONLY_KINDS:
        register("cloud", f"s3-{_hyphen}")(_cloud_rule("s3", _kind))
    register("cloud", f"api-{_hyphen}")(_cloud_rule("api", _kind))
    register("http", _hyphen)(_http_rule(_kind))


# --- tls -------------------------------------------------------------------------------------
def _interceptor(flaw: str) -> StartFn:
    def start(t: FaultTargets, f: Fault) -> StopFn:
        path: TlsPath = t.need("tls", f)
        path.start_interceptor(flaw)
        return path.stop_interceptor

    return start


for _flaw in ("untrusted-ca", *SIGNED_FLAWS):
    register("tls", _flaw)(_interceptor(_flaw))


# --- media ---------------------------------------------------------------------------------
MEDIA_CORRUPTIONS = ("truncate", "bitflip", "zero-length", "header-damage", "vanish",
                     "permission-denied", "grow", "rename")


def _corrupt(how: str) -> StartFn:
    def start(t: FaultTargets, f: Fault) -> None:
        media: Media = t.need("media", f)
        path = f.params.get("path", t.media_path)
        if path is None:
            raise ConfigError(f"fault {f} needs path= (or FaultTargets.media_path)")
        media.corrupt(Path(path), how.replace("-", "_"))

    return start


for _how in MEDIA_CORRUPTIONS:
    register("media", _how)(_corrupt(_how))

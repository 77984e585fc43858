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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError
from harness.faults.vocabulary.targets import FaultTargets

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


StopFn = Callable[[], None]
StartFn = Callable[[FaultTargets, Fault], StopFn | None]
"""Starts the fault; returns how to stop it, or None for an instant fault."""

REGISTRY: dict[tuple[str, str], StartFn] = {}


def until_stopped(begin: Callable[[], object], end: StopFn) -> StopFn:
    """A lasting fault: `begin` it now, and `end` is how it stops."""
    begin()
    return end


def register(layer: str, name: str) -> Callable[[StartFn], StartFn]:
    """Add a fault to the vocabulary (`@register("power", "cut")`)."""
    if layer not in LAYERS:
        raise ConfigError(f"cannot register fault in unknown layer {layer!r}")

    def add(fn: StartFn) -> StartFn:
        REGISTRY[(layer, name)] = fn
        return fn

    return add

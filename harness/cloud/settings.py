"""Emulator settings: every open question of c2c-api.md §11 becomes a documented knob.

Defaults follow c2c-api.md §8 so the emulator behaves like the documented cloud; tests
and bench operators shorten lifetimes or turn on strict modes through TOML or the
control API (`PUT /_bench/v1/settings`).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

MIB = 1024 * 1024


@dataclass
class CloudSettings:
    """Effective emulator behaviour. Field comments say which §11 question each answers."""

    # §11.3: device code lifetime (schema bound 120 s).
    device_code_lifetime: int = 120
    # §11.1: poll interval handed out with a code, and RFC 8628 slow_down increment.
    device_code_interval: int = 5
    slow_down_increment: int = 5
    # §4: access and refresh token lifetimes in seconds.
    access_token_lifetime: int = 28800
    refresh_token_lifetime: int = 14 * 24 * 3600
    # §11.10: size of the parts the server hands out when the device does not ask.
    default_part_size: int = 20 * MIB
    # Minimum non-final part size (S3 multipart rule).
    min_part_size: int = 5 * MIB
    max_parts: int = 10000
    # §11.11: honour the `parts` count cameras send (when it satisfies the S3 rules).
    honour_parts: bool = True
    # §5.1/§11.11: lengths of a basic asset's part PUTs. "uniform": the device picks one part
    # size P for all parts but the last (the even split ceil(filesize / n) or, like Fujifilm
    # cameras, its own, e.g. 23,109,632 bytes), fixed by its first PUT (part_lengths.py);
    # "exact": only the even split (§8.6). S3 URLs sign no length, so Frame.io takes either.
    part_lengths: str = "uniform"
    # §11.12: "abs" treats a negative offset as its absolute value, "strict" rejects it.
    offset_sign: str = "abs"
    # §3.1: URL/QR pairing: a device that opts in (x-client-platypus-enabled: true) is
    # given verification_uri_complete; off, no device is (the account has it disabled).
    url_pairing: bool = True
    # §11.17: "websocket" offers the status socket (heartbeats work too); "heartbeat" models
    # REST-status device models: the socket handshake is refused (403), devices must heartbeat.
    status_mode: str = "websocket"
    # §11.5: serve legacy spellings (/v2/assets, GET /v2/auth/token, /v2/device/code).
    legacy_paths: bool = True
    # §11.23: reject a missing or non-semver x-client-version with 400.
    strict_client_version: bool = False
    # §11.2: require client_secret on the device-code poll.
    strict_poll_secret: bool = False
    # §11.13: upload URL lifetime (X-Amz-Expires).
    upload_url_lifetime: int = 86400
    # CONTRACTS §1: base URL of part URLs; empty = built from the Host of the create call.
    upload_base_url: str = ""
    # §3.6: seconds of silence before a device is shown offline.
    offline_threshold: int = 300
    # §3.14: websocket closes after this many seconds without a heartbeat.
    websocket_timeout: int = 60
    # §11.24: longest accepted asset name, in characters.
    max_name_length: int = 255
    # Largest accepted file (5 TiB, spec).
    max_filesize: int = 5_497_558_138_880
    # Bench knob, not a contract question: > 0 takes part bodies in one at a time, first come
    # first served, at most this many bytes/s per device (a narrow uplink in front of the cloud), so
    # parts complete one after another whatever a device's parallelism and a power cut can land
    # mid-file (features/queue.feature). 0 = bodies read side by side at link speed.
    serial_ingest_rate: int = 0
    # Answers the contract leaves to inference (see ANSWER_EVIDENCE): a bench can switch them.
    # [INF] §3.8 "400/422": status of a field-validation error on asset create.
    asset_create_invalid_status: int = 422
    # [INF] §3.12 (lists only 401/409): status of a bad channel-connect body.
    channel_invalid_status: int = 422
    # [DOC] body / [INF] status, §2.2, §11.8: a re-used refresh token is {"error":"invalid_request"}.
    refresh_reuse_status: int = 400

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def updated(self, changes: dict[str, Any]) -> CloudSettings:
        """A validated copy with `changes` applied; unknown keys and bad types raise ConfigError."""
        if not isinstance(changes, dict):
            raise ConfigError("settings must be a JSON/TOML object of name = value")
        known = {f.name: f for f in fields(self)}
        values = self.to_dict()
        for key, value in changes.items():
            if key not in known:
                raise ConfigError(f"unknown setting {key!r}; known: {', '.join(sorted(known))}")
            values[key] = _coerce(key, known[key].type, value)
        result = CloudSettings(**values)
        result.validate()
        return result

    def validate(self) -> None:
        if self.offset_sign not in ("abs", "strict"):
            raise ConfigError("setting offset_sign must be 'abs' or 'strict'")
        if self.part_lengths not in ("uniform", "exact"):
            raise ConfigError("setting part_lengths must be 'uniform' or 'exact'")
        if self.status_mode not in ("websocket", "heartbeat"):
            raise ConfigError("setting status_mode must be 'websocket' or 'heartbeat'")
        if not 1 <= self.device_code_lifetime <= 120:
            raise ConfigError("setting device_code_lifetime must be within 1..120 seconds")
        if self.min_part_size < 0 or self.default_part_size < max(1, self.min_part_size):
            raise ConfigError("setting default_part_size must be >= min_part_size >= 0")
        if not 1 <= self.max_parts <= 10000:
            raise ConfigError("setting max_parts must be within 1..10000")
        for name, allowed in (("asset_create_invalid_status", (400, 422)),
                              ("channel_invalid_status", (400, 422)),
                              ("refresh_reuse_status", (400, 401))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"setting {name} must be one of {allowed}")
        if self.upload_base_url and not self.upload_base_url.startswith(("http://", "https://")):
            raise ConfigError("setting upload_base_url must start with http:// or https://")
        for name in (
            "device_code_interval",
            "slow_down_increment",
            "access_token_lifetime",
            "refresh_token_lifetime",
            "upload_url_lifetime",
            "offline_threshold",
            "websocket_timeout",
            "max_name_length",
            "max_filesize",
            "serial_ingest_rate",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"setting {name} must be >= 0")

    @classmethod
    def from_toml(cls, path: Path) -> CloudSettings:
        """Load a TOML file (flat `name = value`, or under a `[cloud]` table)."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from exc
        if isinstance(data.get("cloud"), dict):
            data = data["cloud"]
        try:
            return cls().updated(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def part_plan(self, filesize: int, requested: int | None) -> tuple[int, int]:
        """(part count, part size) for a basic upload; the last part holds the remainder.

        The device's `parts` is honoured when 1..max_parts and every non-final part would be
        >= min_part_size; otherwise ceil(filesize / default_part_size) parts, growing the
        part size once that exceeds max_parts.
        """
        if requested is not None and self.honour_parts and 1 <= requested <= self.max_parts:
            if requested == 1:
                return 1, filesize
            size = math.ceil(filesize / requested)
            if size >= self.min_part_size and size * (requested - 1) < filesize:
                return requested, size
        count = min(self.max_parts, max(1, math.ceil(filesize / self.default_part_size)))
        if count == 1:
            return 1, filesize
        return count, math.ceil(filesize / count)


@dataclass(frozen=True)
class Evidence:
    """How firm the contract is about a behaviour: its c2c-api.md tag and section."""

    tag: str  # DOC | SPEC | SDK | OBS | INF
    section: str
    note: str


# The settings whose default answers a point the contract marks (partly) as inference, with
# the evidence beside them: docs/contract.md cites this table, a bench switches the value.
ANSWER_EVIDENCE: dict[str, Evidence] = {
    "asset_create_invalid_status": Evidence("INF", "§3.8", "validation on asset create: 400/422"),
    "channel_invalid_status": Evidence("INF", "§3.12", "bad channel-connect body: not listed"),
    "refresh_reuse_status": Evidence("INF", "§2.2, §11.8", "re-used refresh token: status"),
    "offset_sign": Evidence("INF", "§11.12", "negative offset: abs() or 400"),
    "strict_client_version": Evidence("INF", "§2.1, §11.23", "non-semver version: accept or 400"),
    "strict_poll_secret": Evidence("INF", "§11.2", "poll without client_secret"),
    "honour_parts": Evidence("OBS", "§3.8, §11.11", "camera-chosen parts count"),
    "part_lengths": Evidence("OBS", "§3.8, §5.1, §8.6", "camera's own part size (fujidrop)"),
    "default_part_size": Evidence("INF", "§5.2, §11.10", "server part size"),
    "status_mode": Evidence("OBS", "§3.14, §11.17", "status socket offered"),
    "websocket_timeout": Evidence("OBS", "§3.14", "socket closed after 60 s silence"),
    "upload_url_lifetime": Evidence("OBS", "§5.3", "X-Amz-Expires=86400"),
}


def _coerce(key: str, annotation: Any, value: Any) -> Any:
    kind = {"int": int, "bool": bool, "str": str}.get(str(annotation))
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind is str and isinstance(value, str):
        return value
    raise ConfigError(
        f"setting {key} must be of type {getattr(kind, '__name__', annotation)}, got {value!r}"
    )


def dump_toml(values: dict[str, Any]) -> str:
    """Serialise a flat dict of scalars as TOML (the stdlib only reads TOML)."""
    lines = []
    for key, value in values.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = repr(value)
        elif isinstance(value, str):
            text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        else:
            raise ConfigError(f"setting {key}: cannot write {type(value).__name__} to TOML")
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"

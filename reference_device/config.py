"""Device configuration: a TOML file, overridden by environment, overridden by CLI options.

`load_config(path, env, overrides)` is the one entry point. The client secret comes from
`C2C_CLIENT_SECRET`, a `client_secret_file` or the TOML file, never from argv.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reference_device.errors import ConfigError
from reference_device.sources.tether_config import TetherConfig

MIB = 1024 * 1024
MIN_PART = 5 * MIB
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
ENV_PREFIX = "C2C_DEVICE_"
SECRET_ENV = "C2C_CLIENT_SECRET"
DEFAULT_PRIORITIES = {".mov": 30, ".mp4": 30, ".mxf": 30, ".wav": 20, ".jpg": 10, ".jpeg": 10}


@dataclass
class DeviceConfig:
    """Everything the engine needs. Times in seconds, sizes in bytes."""

    state_dir: Path
    api_url: str = "https://api.frame.io"
    ca_bundle: Path | None = None
    client_id: str = ""
    client_secret: str | None = field(default=None, repr=False)
    client_secret_file: Path | None = None
    name: str = "REF-1"
    kind: str = "camera"
    firmware_version: str = "1.0.0"
    media_dirs: list[Path] = field(default_factory=list)
    mode: str = "auto"
    parallelism: int = 4  # part PUTs on the wire across the device (one pool of part slots)
    parallel_files: int = 2  # files feeding those slots (claimed, parts not all sent yet)
    part_size: int = 8 * MIB
    max_upload_rate: int = 0  # bytes/s for part bodies, 0 = unlimited (metered links)
    filetype_priorities: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PRIORITIES))
    realtime: bool = False
    status_port: int = 0
    status_file: Path | None = None
    heartbeat_interval: float = 120.0
    websocket: bool = True
    socket_heartbeat_interval: float = 20.0
    me_poll_interval: float = 60.0
    scan_interval: float = 0.5
    quiet_period: float = 2.0
    max_growth_time: float = 4 * 3600.0
    refresh_margin: float = 600.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_budget: int = 500
    request_timeout: float = 30.0
    url_ttl: float = 86400.0
    network_type: str = "unknown"
    log_file: Path | None = None
    tether: TetherConfig | None = None  # `[sources.tether]` or --tether; None = no tethered camera

    @property
    def credentials_path(self) -> Path:
        return self.state_dir / "credentials.enc"

    @property
    def key_path(self) -> Path:
        return self.state_dir / "key"

    @property
    def queue_path(self) -> Path:
        return self.state_dir / "queue.sqlite3"


_PATH_FIELDS = {"state_dir", "ca_bundle", "client_secret_file", "status_file", "log_file"}
_INT_FIELDS = {"parallelism", "parallel_files", "max_upload_rate", "part_size", "status_port", "retry_budget"}
_FLOAT_FIELDS = {
    "heartbeat_interval", "socket_heartbeat_interval", "me_poll_interval", "scan_interval",
    "quiet_period", "max_growth_time", "refresh_margin", "backoff_base", "backoff_cap",
    "request_timeout", "url_ttl",
}
_BOOL_FIELDS = {"realtime", "websocket"}
_FIELDS = {f.name for f in dataclasses.fields(DeviceConfig)}
_SOURCES = ("tether",)  # tables allowed under [sources]; the watch folders are `media_dirs`


def _coerce(name: str, value: Any) -> Any:
    try:
        if name in _PATH_FIELDS:
            return None if value in (None, "") else Path(str(value)).expanduser()
        if name == "media_dirs":
            if isinstance(value, str):
                value = [v for v in value.split(os.pathsep) if v]
            return [Path(str(v)).expanduser() for v in value]
        if name in _INT_FIELDS:
            if isinstance(value, bool):
                raise ValueError("boolean")
            return int(value)
        if name in _FLOAT_FIELDS:
            if isinstance(value, bool):
                raise ValueError("boolean")
            return float(value)
        if name in _BOOL_FIELDS:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if name == "filetype_priorities":
            if isinstance(value, str):
                pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
                value = {k.strip(): v for k, v in pairs}
            return {_norm_ext(str(k)): int(v) for k, v in dict(value).items()}
        if name == "client_secret":
            return None if value is None else str(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(name, f"cannot use {type(value).__name__} value ({exc})") from None


def _norm_ext(ext: str) -> str:
    ext = ext.strip().lower()
    return ext if ext.startswith(".") else "." + ext


def _validate(cfg: DeviceConfig) -> None:
    parts = urlsplit(cfg.api_url)
    if parts.scheme == "http":
        raise ConfigError("api_url", "plain http:// is refused; C2C is HTTPS only")
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError("api_url", "must be an https:// URL with a host")
    if not SEMVER.match(cfg.firmware_version):
        raise ConfigError("firmware_version", "must be a semantic version like 1.4.0")
    if cfg.mode not in ("auto", "manual"):
        raise ConfigError("mode", "must be 'auto' or 'manual'")
    if not 1 <= cfg.parallelism <= 64:
        raise ConfigError("parallelism", "must be between 1 and 64")
    if not 1 <= cfg.parallel_files <= 16:
        raise ConfigError("parallel_files", "must be between 1 and 16")
    if cfg.part_size < MIN_PART:
        raise ConfigError("part_size", f"must be at least {MIN_PART} bytes (S3 minimum)")
    if cfg.max_upload_rate < 0:
        raise ConfigError("max_upload_rate", "must be >= 0 (0 = unlimited)")
    if not 0 <= cfg.status_port <= 65535:
        raise ConfigError("status_port", "must be a TCP port number")
    if cfg.ca_bundle is not None and not cfg.ca_bundle.is_file():
        raise ConfigError("ca_bundle", "file does not exist")
    for name in _FLOAT_FIELDS:
        if getattr(cfg, name) <= 0:
            raise ConfigError(name, "must be positive")
    if cfg.backoff_cap < cfg.backoff_base:
        raise ConfigError("backoff_cap", "must be >= backoff_base")
    if cfg.network_type not in ("ethernet", "wifi", "cellular", "unknown"):
        raise ConfigError("network_type", "must be ethernet, wifi, cellular or unknown")
    if cfg.client_id:
        try:
            uuid.UUID(cfg.client_id)
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9._-]{4,128}", cfg.client_id) or "@" in cfg.client_id:
                raise ConfigError("client_id", "must be a UUID or serial number") from None


def _persisted_client_id(state_dir: Path) -> str:
    """A UUID generated once per unit and kept in the state dir (never a MAC, never PII)."""
    path = state_dir / "client_id"
    try:
        existing = path.read_text().strip()
        if existing:
            return existing
    except FileNotFoundError:
        pass
    new = str(uuid.uuid4())
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        fh.write(new + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return new


def _read_secret_file(path: Path) -> str:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError("client_secret_file", f"cannot read ({exc.strerror})") from None
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("client_secret_file", f"invalid TOML ({exc})") from None
        secret = data.get("client_secret")
        if not isinstance(secret, str) or not secret:
            raise ConfigError("client_secret_file", "has no client_secret string")
        return secret
    secret = text.strip()
    if not secret:
        raise ConfigError("client_secret_file", "is empty")
    return secret


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> DeviceConfig:
    """Build the config: TOML file < env (`C2C_DEVICE_<FIELD>`, `C2C_CLIENT_SECRET`) < overrides.

    Creates the state dir (0700) and the persisted client_id. Raises ConfigError naming the field.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw.update(tomllib.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise ConfigError("config", f"file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", f"invalid TOML in {path}: {exc}") from None
        raw = dict(raw.get("device", {}), **{k: v for k, v in raw.items() if k != "device"})
        base = Path(path).resolve().parent
        for key in ("state_dir", "ca_bundle", "client_secret_file", "status_file", "log_file"):
            if isinstance(raw.get(key), str) and not Path(raw[key]).expanduser().is_absolute():
                raw[key] = str(base / raw[key])
    else:
        base = Path.cwd()
    sources = raw.pop("sources", None)
    env = os.environ if env is None else env
    for key, value in env.items():
        name = key[len(ENV_PREFIX):].lower()
        if key.startswith(ENV_PREFIX) and name in _FIELDS:  # other C2C_DEVICE_* vars are not ours
            raw[name] = value
    if env.get(SECRET_ENV):
        raw["client_secret"] = env[SECRET_ENV]
    for key, value in (overrides or {}).items():
        if value is not None:
            raw[key] = value
    tether_switch = raw.pop("tether", None)
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise ConfigError(unknown[0], "unknown field")
    if "state_dir" not in raw:
        raise ConfigError("state_dir", "is required")
    values = {k: _coerce(k, v) for k, v in raw.items()}
    cfg = DeviceConfig(**values)
    tether_table = _tether_table(sources, tether_switch)
    if tether_table is not None:
        cfg.tether = tether_config(tether_table, cfg.state_dir, cfg.media_dirs, base)
    if not cfg.media_dirs and cfg.tether is None:
        raise ConfigError("media_dirs", "at least one media directory (or a tethered camera) is required")
    _validate(cfg)
    try:
        cfg.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        cfg.state_dir.chmod(0o700)  # one made earlier by someone else keeps its mode otherwise
    except OSError as exc:
        raise ConfigError("state_dir", f"cannot create ({exc.strerror})") from None
    if cfg.client_secret is None and cfg.client_secret_file is not None:
        cfg.client_secret = _read_secret_file(cfg.client_secret_file)
    if not cfg.client_id:
        cfg.client_id = _persisted_client_id(cfg.state_dir)
    return cfg


# --- [sources.tether] -----------------------------------------------------------------------
_TETHER_TYPES: dict[str, tuple[type, ...]] = {
    "dest": (str,), "state_dir": (str,), "camera": (str,), "port": (str,), "card_files": (str,),
    "import_existing": (bool,), "event_timeout_ms": (int,), "event_budget": (int, float),
    "redetect_interval": (int, float), "busy_retries": (int,), "busy_backoff": (int, float),
    "busy_backoff_max": (int, float), "trigger_every": (int, float),
}


def _switch(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError("tether", f"not a boolean: {value!r}")


def _tether_table(sources: Any, switch: Any) -> dict[str, Any] | None:
    """The `[sources.tether]` table merged with the --tether / C2C_DEVICE_TETHER switch."""
    table: dict[str, Any] | None = None
    if sources is not None:
        if not isinstance(sources, dict):
            raise ConfigError("sources", "must be a table, e.g. [sources.tether]")
        unknown = sorted(set(sources) - set(_SOURCES))
        if unknown:
            raise ConfigError(f"sources.{unknown[0]}", f"unknown source; known: {', '.join(_SOURCES)}")
        if "tether" in sources:
            if not isinstance(sources["tether"], dict):
                raise ConfigError("sources.tether", "must be a table ([sources.tether])")
            table = dict(sources["tether"])
            enabled = table.pop("enabled", True)
            if not isinstance(enabled, bool):
                raise ConfigError("sources.tether.enabled", "must be true or false")
            if not enabled:
                table = None
    if switch is not None:
        if isinstance(switch, dict):
            table = {**(table or {}), **switch}
        elif _switch(switch):
            table = table if table is not None else {}
        else:
            table = None
    return table


def tether_config(table: dict[str, Any], state_dir: Path, media_dirs: list[Path], base: Path) -> TetherConfig:
    """Check `[sources.tether]` and fill the defaults: dest = first media dir or STATE_DIR/tether,
    state_dir (the download ledger) = the device state dir."""
    known = [f.name for f in dataclasses.fields(TetherConfig)]
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"sources.tether.{unknown[0]}", f"unknown key; known: enabled, {', '.join(known)}")
    for key, value in table.items():
        allowed = _TETHER_TYPES[key]
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            what = {str: "string", bool: "boolean", int: "integer"}.get(allowed[0], "number")
            if float in allowed:
                what = "number"
            raise ConfigError(f"sources.tether.{key}", f"must be a {what}, not {type(value).__name__}")
    values = dict(table)
    for key in ("dest", "state_dir"):
        if key in values:
            p = Path(values[key]).expanduser()
            values[key] = p if p.is_absolute() else base / p
    values.setdefault("dest", media_dirs[0] if media_dirs else state_dir / "tether")
    values.setdefault("state_dir", state_dir)
    try:
        return TetherConfig.from_mapping(values)
    except ConfigError as exc:
        raise ConfigError(f"sources.{exc.field}", exc.problem) from None

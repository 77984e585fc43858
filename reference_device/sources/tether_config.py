"""`[sources.tether]`: the tethered camera source's config, apart from the source itself so the
device config and the stand-alone runner (tether_cli) read it without the camera machinery."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from reference_device.errors import ConfigError

CARD_POLICIES = ("keep", "until_confirmed", "delete")


@dataclass
class TetherConfig:
    """Config keys of `[sources.tether]`; `from_mapping` names any bad key."""

    dest: Path
    state_dir: Path
    camera: str | None = None  # model name as autodetect shows it; None = the first camera
    port: str | None = None  # e.g. "usb:001,004"
    card_files: str = "keep"  # keep | until_confirmed | delete (right after download)
    import_existing: bool = False  # on the very first connection, also download what is on the card
    event_timeout_ms: int = 200
    event_budget: float = 1.0  # seconds of event pumping before the loop does other work
    redetect_interval: float = 2.0
    busy_retries: int = 20
    busy_backoff: float = 0.01
    busy_backoff_max: float = 0.5
    trigger_every: float | None = None

    def __post_init__(self) -> None:
        self.dest = Path(self.dest)
        self.state_dir = Path(self.state_dir)
        if self.card_files not in CARD_POLICIES:
            raise ConfigError("tether.card_files",
                              f"{self.card_files!r} is not one of {', '.join(CARD_POLICIES)}")
        for name in ("event_budget", "redetect_interval", "busy_backoff", "busy_backoff_max"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"tether.{name}", f"must be > 0, got {getattr(self, name)!r}")
        if self.event_timeout_ms < 1:
            raise ConfigError("tether.event_timeout_ms", f"must be >= 1, got {self.event_timeout_ms!r}")
        if self.busy_retries < 0:
            raise ConfigError("tether.busy_retries", f"must be >= 0, got {self.busy_retries!r}")
        if self.trigger_every is not None and self.trigger_every <= 0:
            raise ConfigError("tether.trigger_every", f"must be > 0, got {self.trigger_every!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TetherConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"tether.{unknown[0]}",
                              f"unknown config key(s) {', '.join(unknown)}; known: {', '.join(known)}")
        for required in ("dest", "state_dir"):
            if required not in data:
                raise ConfigError(f"tether.{required}", "required")
        try:
            return cls(**dict(data))
        except TypeError as exc:
            raise ConfigError("tether", str(exc)) from exc

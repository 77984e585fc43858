"""Fault timeline: when each fault was active, so reports can draw it beside the uploads."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TimelineEvent:
    """One fault start/stop, relay flip or bench action. Times are Unix seconds (wall clock)."""

    layer: str  # network | http | tls | power | media | auth | cloud | device
    name: str
    action: str  # start | stop | flip | mark
    at: float
    details: dict[str, Any] = field(default_factory=dict)


class Timeline:
    """Thread-safe append-only record of fault events."""

    def __init__(self) -> None:
        self._events: list[TimelineEvent] = []
        self._lock = threading.Lock()

    def record(self, layer: str, name: str, action: str, **details: Any) -> TimelineEvent:
        event = TimelineEvent(layer=layer, name=name, action=action, at=time.time(), details=details)
        with self._lock:
            self._events.append(event)
        return event

    @contextmanager
    def window(self, layer: str, name: str, **details: Any) -> Iterator[None]:
        """Record `start` on entry and `stop` on exit, even when the body raises."""
        self.record(layer, name, "start", **details)
        try:
            yield
        finally:
            self.record(layer, name, "stop", **details)

    @property
    def events(self) -> list[TimelineEvent]:
        with self._lock:
            return list(self._events)

    def windows(self) -> list[dict[str, Any]]:
        """Pair start/stop events into [{layer, name, start, stop}] (stop None if still active)."""
        open_: dict[tuple[str, str], float] = {}
        out: list[dict[str, Any]] = []
        for ev in self.events:
            key = (ev.layer, ev.name)
            if ev.action == "start":
                open_[key] = ev.at
            elif ev.action == "stop" and key in open_:
                out.append({"layer": ev.layer, "name": ev.name, "start": open_.pop(key), "stop": ev.at})
        out.extend({"layer": k[0], "name": k[1], "start": v, "stop": None} for k, v in open_.items())
        return sorted(out, key=lambda w: w["start"])

    def to_json(self) -> str:
        return json.dumps([asdict(e) for e in self.events], indent=2)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())

"""Applying a fault: `inject` starts it and records it on the timeline, `ActiveFault` stops it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.errors import ConfigError
from harness.faults.vocabulary.language import REGISTRY, Fault, StopFn
from harness.faults.vocabulary.targets import FaultTargets
from harness.timeline import Timeline


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

"""Steps that cut and restore the device's supply (Power protocol: abrupt off, then on)."""

from __future__ import annotations

import random
from typing import Any

from pytest_bdd import parsers, when

from harness.bdd.recovery import fault_ending, poll_recovery
from harness.bdd.steps.common import hold_for, wait_until
from harness.errors import BenchFailure, DeviceTimeout

ACK_GRACE_S = 0.3  # the last parts of a fast link arrive ~1 s after the first ones


def _cut(bench: Any) -> None:
    bench.timeline.record("power", "cut", "start")
    bench.power.off()


def _restore(bench: Any) -> None:
    with fault_ending(bench, "power cut"):  # recovery is measured from here (harness/bdd/recovery.py)
        bench.power.on()
    bench.timeline.record("power", "cut", "stop")
    if bench.has_status:
        wait_until(lambda: bench.device.status() is not None, 60, "the device to boot after the power cut")


@when("the power is cut once the cloud has received part of the upload")
def _cut_mid_upload(bench: Any) -> None:
    """Abrupt power loss (SIGKILL / relay open) once a part of the largest captured file reached the cloud."""
    big = max(bench.state.captures, key=lambda c: c.size).name

    def part_received() -> bool:
        # two parts when the file has three or more: a device that restarts from zero then
        # re-sends more than the one part C2C-CTL-01 allows (after one part it would not)
        rows = [r for r in bench.cloud.ledger() if r.get("name") == big]
        return any(int(r.get("parts_received") or 0) >= min(2, max(1, int(r.get("parts_expected") or 1) - 1))
                   for r in rows)
    wait_until(part_received, 120, f"the first parts of {big} in the cloud", interval=0.05)
    # A part the cloud stored but whose 200 the device had no time to read is legitimately re-sent;
    # give the device a moment to record its finished parts, then cut mid-file.
    hold_for(ACK_GRACE_S)
    _cut(bench)
    if any(r.get("completed_at") for r in bench.cloud.ledger() if r.get("name") == big):
        raise BenchFailure(f"the power cut came after {big} was complete: resumption was not exercised")


@when("the power comes back")
def _power_on(bench: Any) -> None:
    """Power restored: the device boots with whatever state it had persisted."""
    _restore(bench)


@when(parsers.parse("the power is cut {count:d} times at random points"))
def _random_cuts(bench: Any, count: int) -> None:
    """Cuts at seeded-random moments while the queue drains (replayable with --c2c-seed)."""
    rng = random.Random(bench.session.seed)
    for _ in range(count):
        before = len(bench.journal())
        target = before + rng.randint(1, 6)
        def reached(t: int = target) -> bool:
            poll_recovery(bench)  # the previous cut's recovery is seen here, before the next cut
            return len(bench.journal()) >= t
        try:
            wait_until(reached, 30, "requests before the next cut")
        except DeviceTimeout:
            pass  # a quiet device is cut anyway
        _cut(bench)
        _restore(bench)

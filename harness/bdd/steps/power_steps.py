"""Steps that cut and restore the device's supply (Power protocol: abrupt off, then on)."""

from __future__ import annotations

import random
from typing import Any

from pytest_bdd import given, parsers, when

from harness.bdd.bench import Bench, Capture
from harness.bdd.recovery import fault_ending, poll_recovery
from harness.bdd.steps.common import hold_for, wait_until
from harness.bdd.steps.media_steps import MB, capture_entries
from harness.errors import BenchFailure, DeviceTimeout
from harness.protocols import LargeMedia

ACK_GRACE_S = 0.3  # the last parts of a fast link arrive ~1 s after the first ones
CUT_ATTEMPTS = 3  # files tried before a cut that never lands mid-transfer is a bench error
INGEST_SETTING = "serial_ingest_rate"  # harness/cloud/settings.py
RETRY_INGEST_RATE = 2 * 1024 * 1024  # bytes/s, for a retry in a scenario that left the knob off


def _cut(bench: Bench) -> None:
    bench.timeline.record("power", "cut", "start")
    bench.power.off()


def _restore(bench: Bench) -> None:
    with fault_ending(bench, "power cut"):  # recovery is measured from here (harness/bdd/recovery.py)
        bench.power.on()
    bench.timeline.record("power", "cut", "stop")
    if bench.has_status:
        wait_until(lambda: bench.device.status() is not None, 60, "the device to boot after the power cut")


@given(parsers.parse("the cloud takes in one part at a time at {mb_s:g} MB/s"))
def _serial_ingest(bench: Bench, mb_s: float) -> None:
    """A narrow uplink in front of the cloud (emulator setting `serial_ingest_rate`): part bodies
    are taken one at a time at this aggregate rate, so parts complete one after another however
    many a device sends in parallel and a power cut can land between two of them."""
    set_ingest_rate(bench, round(mb_s * MB))


def set_ingest_rate(bench: Bench, rate: int) -> None:
    """Set `serial_ingest_rate` (bytes/s, 0 = off); the scenario's cleanup puts back the old value."""
    restore = bench.state.restore_settings
    if INGEST_SETTING not in restore:
        restore[INGEST_SETTING] = int(bench.cloud.update_settings().get(INGEST_SETTING) or 0)
    bench.cloud.update_settings(**{INGEST_SETTING: int(rate)})


def _rows(bench: Bench, name: str) -> list[dict[str, Any]]:
    return [r for r in bench.cloud.ledger() if r.get("name") == name]


def _complete(rows: list[dict[str, Any]]) -> bool:
    return any(r.get("completed_at") for r in rows)


def parts_needed(row: dict[str, Any]) -> int:
    """Parts the cloud must hold before the cut: two when the file has three or more, so a device
    that restarts from zero then re-sends more than the one part C2C-CTL-01 allows (after one
    part it would not); one when the file has two."""
    return min(2, max(1, int(row.get("parts_expected") or 1) - 1))


def _cut_within(bench: Bench, name: str) -> str | None:
    """Cut the power while `name` is part-way into the cloud: None when the cut landed mid-file,
    else why it did not (the power is on again then, ready for another attempt)."""
    def started() -> bool:
        rows = _rows(bench, name)
        return _complete(rows) or any(int(r.get("parts_received") or 0) >= parts_needed(r) for r in rows)
    wait_until(started, 120, f"the first parts of {name} in the cloud", interval=0.05)
    if all(int(r.get("parts_expected") or 1) < 2 for r in _rows(bench, name)):
        raise BenchFailure(f"the device uploads {name} as one part: no part boundary for a power cut to "
                           "land on, resumption cannot be exercised")
    # A part the cloud stored but whose 200 the device had no time to read is legitimately re-sent;
    # give the device a moment to record its finished parts, then cut mid-file.
    hold_for(ACK_GRACE_S)
    if _complete(_rows(bench, name)):
        return "complete before the cut was due"
    _cut(bench)
    if _complete(_rows(bench, name)):
        _restore(bench)
        return "complete at the moment of the cut"
    return None


def _capture_like(bench: Bench, like: Capture) -> Capture:
    """Another data file of the same size as `like`, for another attempt at a mid-file cut."""
    kit = bench.media
    if not isinstance(kit, LargeMedia):
        raise BenchFailure("the media kit cannot make another large file for a second attempt at the cut")
    return capture_entries(bench, [kit.large(bench.scratch(), like.size)])[0]


@when("the power is cut once the cloud has received part of the upload")
def _cut_mid_upload(bench: Bench) -> None:
    """Abrupt power loss (SIGKILL / relay open) while the largest captured file is part-way into
    the cloud: it holds some of its parts, not all.

    A device fast enough to finish the file before the cut gets another file of the same size,
    with the cloud taking parts in more slowly (halving `serial_ingest_rate`, switched on if the
    scenario left it off), up to CUT_ATTEMPTS files; a cut that never lands mid-file is a bench
    error, never a pass. The files the cut hit are noted for the re-sent-bytes measure."""
    target = max(bench.state.captures, key=lambda c: c.size)
    misses: list[str] = []
    for attempt in range(1, CUT_ATTEMPTS + 1):
        if attempt > 1:
            rate = int(bench.cloud.update_settings().get(INGEST_SETTING) or 0)
            set_ingest_rate(bench, rate // 2 if rate else RETRY_INGEST_RATE)
            target = _capture_like(bench, target)
        missed = _cut_within(bench, target.name)
        if missed is None:
            bench.state.power_cut_hits.append(target.name)
            if misses:
                bench.exercised(f"the power cut landed mid-file on attempt {attempt} ({'; '.join(misses)}), "
                                f"with the cloud taking in parts one at a time")
            return
        misses.append(f"{target.name} {missed}")
    raise BenchFailure(f"the power cut never landed mid-transfer in {CUT_ATTEMPTS} attempts "
                       f"({'; '.join(misses)}): resumption was not exercised")


@when("the power comes back")
def _power_on(bench: Bench) -> None:
    """Power restored: the device boots with whatever state it had persisted."""
    _restore(bench)


@when(parsers.parse("the power is cut {count:d} times at random points"))
def _random_cuts(bench: Bench, count: int) -> None:
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

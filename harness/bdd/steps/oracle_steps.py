"""Then-steps the cloud decides about delivery: the ledger against the capture manifest, and
the measurements every oracle step records (`measure_all`, `require`, `out_of_limits`).

The oracle is what the emulator saw (Cloud.journal/ledger/plain_http_attempts), checked
against the capture manifest: never the device's own claims. Part-level figures (re-sent
bytes, throughput, parts after a cancel) are in `transfer_oracle_steps`, the device's tokens
in `token_oracle_steps`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from pytest_bdd import parsers, then

from harness.bdd.bench import Bench
from harness.bdd.measures import delivery_counts, retries_seen
from harness.bdd.recovery import fault_ends, poll_recovery
from harness.bdd.steps.common import cpu_wait, refuse_on_starved_bench, wait_until
from harness.bdd.steps.device_steps import pair_again_if_grant_lost
from harness.certify.ledger import Ledger
from harness.certify.throughput import part_rates_mbps, part_upload_rate
from harness.errors import BenchFailure, DeliveryFailure, DeviceTimeout
from harness.protocols import OfferedCapacity

GAVE_UP_GRACE_S = 10.0
# Outcomes no later upload can undo.
FINAL_FAILURES = frozenset({"corrupt", "duplicated", "leaked"})
# A file that arrives after the scenario's deadline but within this fraction more is late
# (time_to_deliver_s out of its limit), not lost: the certificate says how late it was.
DEADLINE_GRACE = 0.25


def _settle(bench: Bench, seconds: int, done: Callable[[Ledger], bool], what: str,
            watched: set[str] | None = None, awaited: set[str] | None = None) -> tuple[Ledger, float | None]:
    """Poll the ledger until `done`, then classify with the deadline reached (drained).

    Returns the ledger and the seconds from the start of the wait until `done` first held
    (None when it never did). Waits up to the deadline plus DEADLINE_GRACE, so a late
    delivery is measured as late. Stops early when the device has shown an undelivered
    capture it is `awaited` for (all when None) as "failed" (it gave up: only an operator retry
    moves it) for GAVE_UP_GRACE_S — a bad file the device rightly gave up on ends no wait —,
    or once a `watched` file (all when None) is corrupt, duplicated or leaked for good.
    Polls the journal for recovery after faults (harness/bdd/recovery.py) meanwhile.
    """
    started = time.monotonic()
    gave_up_since: list[float] = []
    took: list[float] = []

    def settled() -> bool:
        poll_recovery(bench)
        pair_again_if_grant_lost(bench)
        lg = bench.ledger(drained=False)
        if done(lg):
            took.append(time.monotonic() - started)
            return True
        if any(f.outcome in FINAL_FAILURES and (watched is None or f.name in watched) for f in lg.files):
            return True  # a corrupt, duplicated or leaked file stays so: same verdict, no wait
        if any(f.device_state in {"failed", "cancelled"} and f.outcome not in {"intact", "withheld"}
               and (awaited is None or f.name in awaited) for f in lg.files):
            gave_up_since[:] = gave_up_since or [time.monotonic()]
            return time.monotonic() - gave_up_since[0] >= GAVE_UP_GRACE_S
        gave_up_since.clear()
        return False
    try:
        wait_until(settled, seconds * (1 + DEADLINE_GRACE), what, interval=0.5)
    except DeviceTimeout:
        pass
    poll_recovery(bench)
    return bench.ledger(drained=True), (took[0] if took else None)


def declaring(bench: Bench, name: str) -> list[str]:
    """The scenario's items whose checklist entry declares measurement `name`."""
    out = []
    for item_id in bench.state.items:
        try:
            bench.session.checklist[item_id].measurement(name)
        except KeyError:
            continue
        out.append(item_id)
    return out


DELIVERY_MEASUREMENTS = frozenset({"files_intact", "files_lost", "files_corrupt", "files_duplicated",
                                   "time_to_deliver_s"})


def measure_all(bench: Bench, name: str, value: float, **context: float) -> bool:
    """Record `name` for every item of the scenario that declares it; False if any is out of limits."""
    return all([bench.measure(item_id, name, value, **context) for item_id in declaring(bench, name)])


def out_of_limits(bench: Bench, since: int = 0, names: frozenset[str] | None = None) -> list[str]:
    """Measurements outside their limits, as "name=value outside limits (items)": those recorded
    from index `since` on (by the step that asks, not by earlier steps: an earlier step's figure
    fails its own item, never the whole scenario), and of `names` when given."""
    seen: dict[str, list[str]] = {}
    for m in bench.state.measurements[since:]:
        if names is not None and m["name"] not in names:
            continue
        if m.get("passed") is False:
            items = seen.setdefault(f"{m['name']}={m['value']} outside {m['limits']}", [])
            if m["item"] not in items:
                items.append(m["item"])
    return [f"{text} ({', '.join(items)})" for text, items in seen.items()]


def require(bench: Bench, name: str, value: float, what: str, **context: float) -> None:
    """Measure `name` for the declaring items; out of limits is a device failure naming it."""
    mark = len(bench.state.measurements)
    if not measure_all(bench, name, value, **context):
        raise DeliveryFailure("; ".join([*out_of_limits(bench, mark), what]))


def _deliver(bench: Bench, seconds: int, expected: set[str], what: str, *, all_problems: bool = False) -> Ledger:
    """Wait for `expected` files to arrive intact; measure the delivery for every declaring item.

    Measured (checklist: files_intact, files_lost, files_corrupt, files_duplicated,
    time_to_deliver_s, and where declared the recovery and retry figures): a figure out of
    its limits, or any delivery problem the ledger lists, is a DeliveryFailure that names
    the measurements out of limits first.
    """
    mark = len(bench.state.measurements)
    ledger, took = _settle(bench, seconds, lambda lg: all(f.outcome == "intact" for f in lg.files if f.name in expected),
                           what, None if all_problems else expected, awaited=expected)
    counts = delivery_counts(ledger, expected)
    measure_all(bench, "files_intact", counts.intact, expected_files=len(expected))
    measure_all(bench, "files_lost", counts.lost + counts.pending)
    measure_all(bench, "files_corrupt", counts.corrupt)
    measure_all(bench, "files_duplicated", counts.duplicated)
    if took is not None:  # never all there: files_lost / files_intact say so
        measure_all(bench, "time_to_deliver_s", round(took, 1), deadline_s=seconds)
    _measure_recovery(bench)
    _measure_retries(bench)
    slow = _measure_throughput(bench)
    _note_roaming(bench)
    problems = [p for p in ledger.problems() if all_problems or p.split(":", 1)[0] in expected]
    # the delivery is every item's premise: its counts fail the scenario; recovery, retry and
    # throughput figures fail only the items that declare them (through their measurements)
    bad = out_of_limits(bench, mark, DELIVERY_MEASUREMENTS)
    if problems or bad:
        raise DeliveryFailure("; ".join(bad + (["delivery ledger: " + "; ".join(problems)] if problems else [])))
    if slow:  # judged after the delivery: a lost file is the device's fail, whatever the bench's load
        refuse_on_starved_bench(*slow)
    return ledger


def _measure_recovery(bench: Bench) -> None:
    """uploads_resumed / time_to_recover_s after the faults that ended with uploads pending."""
    items = declaring(bench, "uploads_resumed")
    ends = fault_ends(bench)
    if not items or not ends:
        return
    pending = [e for e in ends if e.pending]
    if not pending:
        bench.exercised(f"{', '.join(e.what for e in ends)}: every file was already in the cloud when the "
                        "fault ended, so the time to recover was not measured")
        return
    measure_all(bench, "uploads_resumed", pending[-1].resumed)
    times = [e.time_to_recover_s for e in pending]
    if all(t is not None for t in times):
        measure_all(bench, "time_to_recover_s", max(t for t in times if t is not None), faults=len(pending))


def _measure_retries(bench: Bench) -> None:
    """retries_seen: error answers the cloud gave and later answered with success for the same request."""
    if not declaring(bench, "retries_seen"):
        return
    names = {str(a.get("asset_id")): str(a.get("name")) for a in bench.cloud.ledger()}
    r = retries_seen(bench.journal(), names, files={c.name for c in bench.state.captures} or None)
    if r.failed == 0:
        injected = [e for e in bench.timeline.windows() + [
            {"layer": ev.layer, "name": ev.name, "start": ev.at} for ev in bench.timeline.events if ev.action == "mark"]
            if e["layer"] == "cloud" and str(e["name"]).startswith(("s3 ", "api ")) and e["start"] >= bench.state.started_at]
        if injected:
            raise BenchFailure(f"the cloud answered no request with an error although {injected[0]['name']!r} was "
                               "injected: retrying was not exercised")
        bench.exercised("no request was answered with an error (the device refreshed before using an expired "
                        "token): retries_seen not measured")
        return
    measure_all(bench, "retries_seen", r.retried, errors_answered=r.failed)


# A throughput floor judges the device only where the link offered well above it: a recorded
# trace's gap (zero capacity for seconds) under a latency-bound transfer of a few parts is the link's.
GAP_FACTOR = 4.0


def _measure_throughput(bench: Bench) -> tuple[float | None, str] | None:
    """throughput_Mbps on a shaped profile: the upper median of the accepted parts' own rates
    (each part's bytes over its own PUT time). The floor flags a device that dribbles its parts;
    a dribbler is slow on most parts, while one part of a few small files delayed by a lost
    packet's retransmission timeout on a lossy trace (21 KB in 2.4 s beside 21 KB in 0.14 s, seen
    in the full matrix) says nothing about the device. The union rate (as C2C-NETW-01) is kept
    beside it as context.

    On a link that knows what it offered (a packet-level trace), a transfer that fell into a gap
    (the link offered under GAP_FACTOR times the item's floor while the parts were on the wire)
    is recorded as exercised, not judged: there the link allowed next to nothing.

    A figure under its floor may be the bench's, on a CPU-starved bench (harness.machine): returns
    (the bench's CPU wait share, what failed) for the caller to judge once the delivery is
    judged, else None."""
    items = declaring(bench, "throughput_Mbps")
    if not items:
        return None
    journal = bench.journal()
    rate = part_upload_rate(journal)
    rates = part_rates_mbps(journal)
    if not rate.parts or not rates:
        return None
    figure = statistics.median_high(rates)
    network = bench.network
    offered = (network.offered_mbps(rate.first_start, rate.first_start + rate.span_s)
               if isinstance(network, OfferedCapacity) and rate.span_s > 0 else None)
    floors = [bench.session.checklist[i].measurement("throughput_Mbps").low for i in items]
    floor = max((float(f) for f in floors if isinstance(f, int | float)), default=0.0)
    if offered is not None and offered < GAP_FACTOR * floor:
        bench.exercised(f"throughput {figure:.2f} Mbit/s not judged: the link offered only {offered:.2f} Mbit/s over "
                        f"the {rate.span_s:.2f} s the parts were on the wire (under {GAP_FACTOR:.0f} x the {floor} "
                        "Mbit/s floor: a gap in the recorded trace)")
        return None
    context = {"offered_Mbps": round(offered, 2)} if offered is not None else {}
    starved = bench.state.cpu_mark.share_since()
    if measure_all(bench, "throughput_Mbps", round(figure, 2), part_bytes=rate.nbytes, busy_s=round(rate.busy_s, 3),
                   accepted_parts=rate.parts, union_Mbps=round(rate.mbps, 2), **context, **cpu_wait(starved)):
        return None
    return starved, f"throughput {figure:.2f} Mbit/s below its {floor:g} Mbit/s floor"


def _note_roaming(bench: Bench) -> None:
    """On the mesh-roam profile, say how many roaming cuts the scenario's uploads met (none: not exercised)."""
    if bench.state.network_profile != "mesh-roam":
        return
    cuts = [w for w in bench.timeline.windows() if w["layer"] == "network" and w["name"] == "phase:roaming"
            and w["start"] >= bench.state.started_at]
    if not cuts:
        raise BenchFailure("the mesh-roam profile cut the link no time during the scenario: roaming was not exercised")
    bench.exercised(f"mesh-roam: the link was cut {len(cuts)} time(s) (1 s every 10 s) while files were captured "
                    "and uploaded")


# what a scenario tagged with these items really exercised, beyond its own steps
EXERCISED = {
    "C2C-QA-01": "stable launch and operation: the 3-file upload scenario of C2C-UPL-01, reused "
                 "(device launch {launches} of this run, paired once, {files} files uploaded); "
                 "not a repeated launch / pair / upload cycle",
}


def _note_exercised(bench: Bench) -> None:
    for item_id in bench.state.items:
        if item_id in EXERCISED:
            bench.exercised(EXERCISED[item_id].format(launches=bench.session.device_generation,
                                                      files=len(bench.state.captures)))


@then(parsers.parse("every captured file arrives intact within {seconds:d} seconds"))
def _all_intact(bench: Bench, seconds: int) -> None:
    """Every captured file is in the cloud exactly once with its SHA-256 (none lost, duplicated, corrupt)."""
    _note_exercised(bench)
    expected = {c.name for c in bench.state.captures if not c.paused}
    ledger = _deliver(bench, seconds, expected, "every captured file to arrive", all_problems=True)
    not_intact = [f.name for f in ledger.files if f.outcome not in {"intact", "withheld"}]
    if not_intact:
        raise DeliveryFailure(f"not delivered intact: {not_intact}")


@then(parsers.parse("every intact captured file arrives within {seconds:d} seconds"))
def _intact_ones(bench: Bench, seconds: int) -> None:
    """Every undamaged capture arrives intact; intentionally damaged ones may be rejected."""
    good = {c.name for c in bench.state.captures if not c.corruption}
    _deliver(bench, seconds, good, "every intact file to arrive")


@then(parsers.parse("the files captured after the pause arrive intact within {seconds:d} seconds"))
def _after_pause(bench: Bench, seconds: int) -> None:
    """Files captured after resume are delivered."""
    after = {c.name for c in bench.state.captures if c.paused is False}
    _deliver(bench, seconds, after, "the files captured after the pause")


@then("the files captured while paused are withheld")
def _withheld(bench: Bench) -> None:
    """Media captured inside the pause window never reaches the cloud (measured: none slipped, all withheld)."""
    paused = {c.name for c in bench.state.captures if c.paused}
    if not paused:
        raise BenchFailure("no file was captured inside the pause window: withholding was not exercised")
    ledger = bench.ledger(drained=True)
    counts = delivery_counts(ledger, (), paused)
    mark = len(bench.state.measurements)
    measure_all(bench, "files_withheld", counts.withheld, paused_files=len(paused))
    slipped = [f.name for f in ledger.files if f.name in paused and f.outcome == "leaked"]
    require(bench, "files_slipped_while_paused", counts.leaked, f"captured while paused but uploaded: {slipped}")
    bad = out_of_limits(bench, mark)
    if bad:
        raise DeliveryFailure("; ".join(bad))


@then(parsers.parse("only the first captured file arrives within {seconds:d} seconds"))
def _only_first(bench: Bench, seconds: int) -> None:
    """Manual mode: the selected file arrives, the others stay on the device (measured)."""
    first = bench.state.captures[0].name
    ledger = _deliver(bench, seconds, {first}, f"{first} to arrive")
    others = [f.name for f in ledger.files[1:] if f.assets]
    require(bench, "unselected_files_uploaded", len(others), f"manual mode uploaded unselected files: {others}")
    assert not others, f"manual mode uploaded unselected files: {others}"


@then("the corrupted file did not block the queue")
def _not_blocked(bench: Bench) -> None:
    """Files captured after the damaged one were delivered (ledger; measured as files_blocked_behind_corrupt)."""
    ledger = bench.ledger(drained=True)
    bad = next((i for i, c in enumerate(bench.state.captures) if c.corruption), None)
    if bad is None:
        raise BenchFailure("no corrupted file in this scenario: not blocking the queue was not exercised")
    after = [f for f in ledger.files[bad + 1:] if not f.corruption]
    if not after:
        raise BenchFailure("no file was captured after the corrupted one: not blocking the queue was not exercised")
    blocked = [f.name for f in after if f.outcome != "intact"]
    require(bench, "files_blocked_behind_corrupt", len(blocked), f"queue blocked behind the corrupted file: {blocked}",
            captured_after=len(after))
    assert not blocked, f"queue blocked behind the corrupted file: {blocked}"

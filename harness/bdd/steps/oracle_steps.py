"""Then-steps the cloud decides: the delivery ledger, the request journal, measurements.

The oracle is what the emulator saw (Cloud.journal/ledger/plain_http_attempts), checked
against the capture manifest: never the device's own claims.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable

from pytest_bdd import parsers, then

from harness.bdd.bench import Bench
from harness.bdd.measures import delivery_counts, retries_seen
from harness.bdd.recovery import fault_ends, poll_recovery
from harness.bdd.steps.cloud_steps import refreshes
from harness.bdd.steps.common import device_status, hold_for, wait_until
from harness.certify.ledger import Ledger
from harness.certify.throughput import part_upload_rate
from harness.cloud.paths import S3_PART
from harness.errors import BenchFailure, DeliveryFailure, DeviceTimeout

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
    _measure_throughput(bench)
    _note_roaming(bench)
    problems = [p for p in ledger.problems() if all_problems or p.split(":", 1)[0] in expected]
    # the delivery is every item's premise: its counts fail the scenario; recovery, retry and
    # throughput figures fail only the items that declare them (through their measurements)
    bad = out_of_limits(bench, mark, DELIVERY_MEASUREMENTS)
    if problems or bad:
        raise DeliveryFailure("; ".join(bad + (["delivery ledger: " + "; ".join(problems)] if problems else [])))
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
    r = retries_seen(bench.journal(), names)
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


def _measure_throughput(bench: Bench) -> None:
    """throughput_Mbps on a shaped profile: accepted part bytes over part-PUT busy time (as C2C-NETW-01)."""
    if not declaring(bench, "throughput_Mbps"):
        return
    rate = part_upload_rate(bench.journal())
    if rate.parts:
        measure_all(bench, "throughput_Mbps", round(rate.mbps, 2), part_bytes=rate.nbytes,
                    busy_s=round(rate.busy_s, 3), accepted_parts=rate.parts)


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


def _await_device_idle(bench: Bench, seconds: float = 60) -> None:
    """Until the device reports nothing uploading (a device without status counts as idle)."""
    def idle() -> bool:
        queue = device_status(bench).get("queue") or {}
        return not queue.get("uploading") and not queue.get("remaining_count")
    try:
        wait_until(idle, seconds, "the device to stop sending", interval=0.5)
    except DeviceTimeout:
        pass


def _bytes_to_stored_parts(bench: Bench, assets: set[str]) -> int:
    """Bytes the cloud received, this scenario, for parts of `assets` it had already stored."""
    stored: set[tuple[str, str]] = set()
    total = 0
    for r in sorted(bench.journal(), key=lambda r: int(r.get("id") or 0)):
        m = S3_PART.match(str(r.get("path") or "").split("?", 1)[0])
        if r.get("method") != "PUT" or not m or m.group(1) not in assets:
            continue
        key = (m.group(1), m.group(2))
        if key in stored:
            total += int(r.get("bytes_in") or 0)
        elif r.get("status") == 200:
            stored.add(key)
    return total


@then("the bytes re-sent per power cut are at most one part")
def _resent(bench: Bench) -> None:
    """Resume from the last part: duplicate bytes per power cut <= one part (measured)."""
    ledger = bench.ledger(drained=True)
    # the files the cut step landed in mid-transfer, one per cut (a cut that came after its file
    # was complete was retried on another file and is not judged); else every capture, every cut
    hits = bench.state.power_cut_hits
    cuts = len(hits) or max(1, sum(1 for w in bench.timeline.windows()
                                   if w["layer"] == "power" and w["start"] >= bench.state.started_at))
    names = set(hits) or {c.name for c in bench.state.captures}
    rows = [r for r in bench.cloud.ledger() if r.get("name") in names]
    part = max((int(r.get("filesize") or 0) / max(1, int(r.get("parts_expected") or 1)) for r in rows), default=0)
    # re-sent = bytes sent again to a part the cloud had already stored (complete or cut short:
    # the asset may complete while a device that restarted from zero is still re-sending)
    # + bytes of assets abandoned and created again
    _await_device_idle(bench)
    resent = _bytes_to_stored_parts(bench, {str(r.get("asset_id")) for r in rows})
    rows = [r for r in bench.cloud.ledger() if r.get("name") in names]
    for name in names:
        mine = [r for r in rows if r.get("name") == name]
        if any(r.get("completed_at") for r in mine):
            resent += sum(int(r.get("bytes_received") or 0) for r in mine if not r.get("completed_at"))
    per_cut = resent / cuts
    assert ledger.files, "nothing captured"
    # measured, not asserted: a full re-upload fails C2C-CTL-01 only, the queue items still pass
    bench.measure("C2C-CTL-01", "resent_bytes_per_cut", per_cut, part_size=math.ceil(part))


@then(parsers.parse("the measured upload throughput is at least {mbps:d} Mbps"))
def _throughput(bench: Bench, mbps: int) -> None:
    """Accepted part-PUT bytes over the time a part PUT was in flight (harness/certify/throughput.py)."""
    rate = part_upload_rate(bench.journal())
    assert rate.parts, "no accepted part upload seen"
    value = round(rate.mbps, 2)
    passed = bench.measure("C2C-NETW-01", "upload_Mbps", value, part_bytes=rate.nbytes,
                           busy_s=round(rate.busy_s, 3), span_s=round(rate.span_s, 3), accepted_parts=rate.parts)
    assert passed, f"{value:.1f} Mbit/s < {mbps} Mbit/s: {rate.describe()}"


CANCEL_SETTLE_S = 10.0


def _parts_received(bench: Bench) -> int:
    """Part PUTs the cloud accepted (aborted or refused bodies are not received parts)."""
    return sum(1 for r in bench.journal() if r.get("method") == "PUT" and 200 <= int(r.get("status") or 0) < 300)


def _in_flight_drain_s(bench: Bench, names: set[str]) -> float:
    """How long parts already on the wire at the cancel may take to land.

    A part body the device wrote before the cancel sits in the network's buffers and still
    reaches the cloud (it cannot be recalled); on a rate-limited link that is one part's
    transfer time. Parts the device starts after the cancel are what the check forbids.
    """
    mbps = bench.state.upload_rate_mbps
    if not mbps:
        return 2.0
    rows = [r for r in bench.cloud.ledger() if r.get("name") in names]
    part = max((int(r.get("filesize") or 0) / max(1, int(r.get("parts_expected") or 1)) for r in rows), default=0)
    return 2.0 + 1.3 * part * 8 / (float(mbps) * 1e6)


@then(parsers.parse("the cloud receives no more parts for the cancelled files within {seconds:d} seconds"))
def _no_more_parts(bench: Bench, seconds: int) -> None:
    """After cancel, parts in flight may land until the device shows the uploads stopped;
    from then on no part is received for the rest of the window, and the file is not complete."""
    names = {c.name for c in bench.state.captures}
    started = time.monotonic()
    stuck: DeviceTimeout | None = None
    if bench.has_status:
        def stopped() -> bool:
            st = device_status(bench)
            mine = [f for f in st.get("files", []) if f.get("name") in names]
            return bool(mine) and all(f.get("state") != "uploading" for f in mine) \
                and (st.get("current") or {}).get("name") not in names
        try:
            wait_until(stopped, CANCEL_SETTLE_S, "the device to show the cancelled uploads stopped")
        except DeviceTimeout as exc:  # still a failure, once the cloud's side is measured too
            stuck = exc
    hold_for(_in_flight_drain_s(bench, names))
    baseline = _parts_received(bench)

    def check() -> None:
        late = _parts_received(bench) - baseline
        if late:  # measured as soon as seen: a device that keeps sending fails without waiting out the window
            require(bench, "parts_after_cancel", late, f"{late} part(s) received after the cancel settled")
    hold_for(max(1.0, seconds - (time.monotonic() - started)), check, interval=1.0)
    require(bench, "parts_after_cancel", _parts_received(bench) - baseline, "parts received after the cancel settled")
    ledger = bench.ledger(drained=False)
    completed = [f.name for f in ledger.files if f.outcome == "intact"]
    require(bench, "cancelled_files_completed", len(completed), f"the cancelled file completed anyway: {completed}")
    assert len(completed) < len(ledger.files), "the cancelled file completed anyway"
    if stuck is not None:
        raise stuck


# after a connected period of short-lived tokens, a device still at zero refreshes this much later never will
NO_REFRESH_GIVE_UP_S = 15.0


@then(parsers.re(r"the device refreshed its token at least (?P<count>\d+) times?$"))
def _refreshed(bench: Bench, count: str) -> None:
    """Token refreshes the cloud saw during the scenario (measured as `refreshes`)."""
    n = int(count)
    started = time.monotonic()

    def enough() -> bool:
        got = refreshes(bench)
        if n > 1 and got == 0 and time.monotonic() - started > NO_REFRESH_GIVE_UP_S:
            return True  # its tokens expired again and again, it never refreshed: stop waiting
        return got >= n
    try:
        wait_until(enough, 60, f"{n} token refresh(es)")
    except DeviceTimeout:
        pass
    got = refreshes(bench)
    item = "C2C-NET-02" if n > 1 else "C2C-RTY-03"
    bench.measure(item, "refreshes", got)
    assert got >= n, f"the device refreshed its token {got} time(s), expected >= {n}"


def _revoke_calls(bench: Bench) -> int:
    """Revocations the cloud accepted in this scenario (POST /v2/auth/revoke answered 2xx)."""
    return sum(1 for r in bench.journal() if str(r.get("path", "")).split("?", 1)[0].endswith("/v2/auth/revoke")
               and r.get("method") == "POST" and 200 <= int(r.get("status") or 0) < 300)


@then(parsers.parse("the cloud sees the device's tokens revoked within {seconds:d} seconds"))
def _revoked(bench: Bench, seconds: int) -> None:
    """Logout calls /v2/auth/revoke and the cloud accepts it (measured as revoke_calls)."""
    started = time.monotonic()
    try:
        wait_until(lambda: _revoke_calls(bench) > 0, seconds, "a call to /v2/auth/revoke")
    except DeviceTimeout:
        pass
    require(bench, "revoke_calls", _revoke_calls(bench), f"no accepted call to /v2/auth/revoke within {seconds} s",
            waited_s=round(time.monotonic() - started, 1))


@then(parsers.parse("the interceptor saw no completed request from the device within {seconds:d} seconds"))
def _interceptor(bench: Bench, seconds: int) -> None:
    """The device refused the interceptor's certificate: no request completed through it."""
    mitm = bench.state.interceptor
    assert mitm is not None, "no interceptor in place"
    shown = bench.state.interceptor_certificate or "an untrusted certificate"

    def check() -> None:
        assert not mitm.requests_seen and not mitm.established_handshakes, \
            f"the device completed a TLS handshake with an interceptor showing {shown}"
    hold_for(seconds, check, interval=1.0)
    if mitm.verdict() == "no-attempt":
        raise DeviceTimeout("the device made no connection attempt through the interceptor (inconclusive)")


LAST_JUMP_REFRESH_S = 30.0


@then("the device refreshed its token after every clock jump")
def _refreshed_per_jump(bench: Bench) -> None:
    """Each clock jump of the soak outlives the access token: a refresh must follow every jump before the
    next one (or before the end, for the last). Measured: refreshes (>= the jumps) and
    jumps_without_refresh (== 0), from the journal's order (ids), whatever the emulator clock says."""
    jumps = list(bench.state.clock_jumps)
    if not jumps:
        raise BenchFailure("no clock jump happened in this scenario: the shift was not exercised")

    def refreshed() -> tuple[list[int], list[bool]]:
        tokens = [int(r.get("id") or 0) for r in bench.journal() if str(r.get("path", "")).endswith("/v2/auth/token")
                  and r.get("method") == "POST" and r.get("status") == 200]
        bounds = [*jumps[1:], None]
        return tokens, [any(t > a and (b is None or t <= b) for t in tokens) for a, b in zip(jumps, bounds, strict=True)]
    # the earlier jumps are decided (the next jump came); the last may still be followed by one
    if all(refreshed()[1][:-1]):
        with contextlib.suppress(DeviceTimeout):
            wait_until(lambda: refreshed()[1][-1], LAST_JUMP_REFRESH_S, "a token refresh after the last clock jump")
    tokens, per_jump = refreshed()
    tokens = [t for t in tokens if t > jumps[0]]  # the shift's refreshes (not a pairing before it)
    missed = per_jump.count(False)
    mark = len(bench.state.measurements)
    measure_all(bench, "refreshes", len(tokens), clock_jumps=len(jumps))
    require(bench, "jumps_without_refresh", missed, f"{missed} of {len(jumps)} clock jumps were not followed by a "
            "token refresh", clock_jumps=len(jumps))
    bad = out_of_limits(bench, mark)
    if bad:
        raise DeliveryFailure("; ".join(bad))

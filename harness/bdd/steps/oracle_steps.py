"""Then-steps the cloud decides: the delivery ledger, the request journal, measurements.

The oracle is what the emulator saw (Cloud.journal/ledger/plain_http_attempts), checked
against the capture manifest: never the device's own claims.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any

from pytest_bdd import parsers, then

from harness.bdd.steps.cloud_steps import refreshes
from harness.bdd.steps.common import device_status, hold_for, wait_until
from harness.certify.ledger import Ledger
from harness.certify.throughput import part_upload_rate
from harness.errors import DeliveryFailure, DeviceTimeout

GAVE_UP_GRACE_S = 10.0
# Outcomes no later upload can undo.
FINAL_FAILURES = frozenset({"corrupt", "duplicated", "leaked"})


def _settle(bench: Any, seconds: int, done: Callable[[Ledger], bool], what: str) -> Ledger:
    """Poll the ledger until `done`, then classify with the deadline reached (drained).

    Stops early when the device has shown an undelivered capture as "failed" (it gave up:
    only an operator retry moves it) for GAVE_UP_GRACE_S, instead of waiting out the deadline.
    """
    gave_up_since: list[float] = []

    def settled() -> bool:
        lg = bench.ledger(drained=False)
        if done(lg) or any(f.outcome in FINAL_FAILURES for f in lg.files):
            return True  # a corrupt, duplicated or leaked file stays so: same verdict, no wait
        if any(f.device_state in {"failed", "cancelled"} and f.outcome not in {"intact", "withheld"} for f in lg.files):
            gave_up_since[:] = gave_up_since or [time.monotonic()]
            return time.monotonic() - gave_up_since[0] >= GAVE_UP_GRACE_S
        gave_up_since.clear()
        return False
    try:
        wait_until(settled, seconds, what, interval=0.5)
    except DeviceTimeout:
        pass
    return bench.ledger(drained=True)


def _assert_delivered(ledger: Ledger, names: set[str] | None = None) -> None:
    problems = [p for p in ledger.problems() if names is None or p.split(":", 1)[0] in names]
    if problems:
        raise DeliveryFailure("delivery ledger: " + "; ".join(problems))


@then(parsers.parse("every captured file arrives intact within {seconds:d} seconds"))
def _all_intact(bench: Any, seconds: int) -> None:
    """Every captured file is in the cloud exactly once with its SHA-256 (none lost, duplicated, corrupt)."""
    ledger = _settle(bench, seconds, lambda lg: all(f.outcome in {"intact", "withheld"} for f in lg.files),
                     "every captured file to arrive")
    _assert_delivered(ledger)
    not_intact = [f.name for f in ledger.files if f.outcome not in {"intact", "withheld"}]
    if not_intact:
        raise DeliveryFailure(f"not delivered intact: {not_intact}")


@then(parsers.parse("every intact captured file arrives within {seconds:d} seconds"))
def _intact_ones(bench: Any, seconds: int) -> None:
    """Every undamaged capture arrives intact; intentionally damaged ones may be rejected."""
    good = {c.name for c in bench.state.captures if not c.corruption}
    ledger = _settle(bench, seconds, lambda lg: all(f.outcome == "intact" for f in lg.files if f.name in good),
                     "every intact file to arrive")
    _assert_delivered(ledger, good)


@then(parsers.parse("the files captured after the pause arrive intact within {seconds:d} seconds"))
def _after_pause(bench: Any, seconds: int) -> None:
    """Files captured after resume are delivered."""
    after = {c.name for c in bench.state.captures if c.paused is False}
    ledger = _settle(bench, seconds, lambda lg: all(f.outcome == "intact" for f in lg.files if f.name in after),
                     "the files captured after the pause")
    _assert_delivered(ledger, after)


@then("the files captured while paused are withheld")
def _withheld(bench: Any) -> None:
    """Media captured inside the pause window never reaches the cloud (none leaked)."""
    ledger = bench.ledger(drained=True)
    leaked = [f.name for f in ledger.files if f.outcome == "leaked"]
    if leaked:
        raise DeliveryFailure(f"captured while paused but uploaded: {leaked}")
    assert ledger.by_outcome("withheld"), "no file was captured inside the pause window"


@then(parsers.parse("only the first captured file arrives within {seconds:d} seconds"))
def _only_first(bench: Any, seconds: int) -> None:
    """Manual mode: the selected file arrives, the others stay on the device."""
    first = bench.state.captures[0].name
    ledger = _settle(bench, seconds, lambda lg: lg.files[0].outcome == "intact", f"{first} to arrive")
    assert ledger.files[0].outcome == "intact", f"{first}: {ledger.files[0].outcome}"
    others = [f.name for f in ledger.files[1:] if f.assets]
    assert not others, f"manual mode uploaded unselected files: {others}"


@then("the corrupted file did not block the queue")
def _not_blocked(bench: Any) -> None:
    """Files captured after the damaged one were delivered (checked by the ledger)."""
    ledger = bench.ledger(drained=True)
    bad = next((i for i, c in enumerate(bench.state.captures) if c.corruption), None)
    assert bad is not None, "no corrupted file in this scenario"
    after = [f for f in ledger.files[bad + 1:] if not f.corruption]
    blocked = [f.name for f in after if f.outcome != "intact"]
    assert not blocked, f"queue blocked behind the corrupted file: {blocked}"


S3_PART = re.compile(r"/s3/parts/([^/?]+)/(\d+)/")


def _await_device_idle(bench: Any, seconds: float = 60) -> None:
    """Until the device reports nothing uploading (a device without status counts as idle)."""
    def idle() -> bool:
        queue = device_status(bench).get("queue") or {}
        return not queue.get("uploading") and not queue.get("remaining_count")
    try:
        wait_until(idle, seconds, "the device to stop sending", interval=0.5)
    except DeviceTimeout:
        pass


def _bytes_to_stored_parts(bench: Any, assets: set[str]) -> int:
    """Bytes the cloud received, this scenario, for parts of `assets` it had already stored."""
    stored: set[tuple[str, str]] = set()
    total = 0
    for r in sorted(bench.journal(), key=lambda r: int(r.get("id") or 0)):
        m = S3_PART.search(str(r.get("path") or ""))
        if r.get("method") != "PUT" or not m or m.group(1) not in assets:
            continue
        key = (m.group(1), m.group(2))
        if key in stored:
            total += int(r.get("bytes_in") or 0)
        elif r.get("status") == 200:
            stored.add(key)
    return total


@then("the bytes re-sent per power cut are at most one part")
def _resent(bench: Any) -> None:
    """Resume from the last part: duplicate bytes per power cut <= one part (measured)."""
    ledger = bench.ledger(drained=True)
    cuts = max(1, sum(1 for w in bench.timeline.windows() if w["layer"] == "power" and w["start"] >= bench.state.started_at))
    names = {c.name for c in bench.state.captures}
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
    resent = resent / cuts
    assert ledger.files, "nothing captured"
    # measured, not asserted: a full re-upload fails C2C-CTL-01 only, the queue items still pass
    bench.measure("C2C-CTL-01", "resent_bytes_per_cut", resent, part_size=math.ceil(part))


@then(parsers.parse("the measured upload throughput is at least {mbps:d} Mbps"))
def _throughput(bench: Any, mbps: int) -> None:
    """Accepted part-PUT bytes over the time a part PUT was in flight (harness/certify/throughput.py)."""
    rate = part_upload_rate(bench.journal())
    assert rate.parts, "no accepted part upload seen"
    value = round(rate.mbps, 2)
    passed = bench.measure("C2C-NETW-01", "upload_Mbps", value, part_bytes=rate.nbytes,
                           busy_s=round(rate.busy_s, 3), span_s=round(rate.span_s, 3), accepted_parts=rate.parts)
    assert passed, f"{value:.1f} Mbit/s < {mbps} Mbit/s: {rate.describe()}"


CANCEL_SETTLE_S = 10.0


def _parts_received(bench: Any) -> int:
    """Part PUTs the cloud accepted (aborted or refused bodies are not received parts)."""
    return sum(1 for r in bench.journal() if r.get("method") == "PUT" and 200 <= int(r.get("status") or 0) < 300)


def _in_flight_drain_s(bench: Any, names: set[str]) -> float:
    """How long parts already on the wire at the cancel may take to land.

    A part body the device wrote before the cancel sits in the network's buffers and still
    reaches the cloud (it cannot be recalled); on a rate-limited link that is one part's
    transfer time. Parts the device starts after the cancel are what the check forbids.
    """
    mbps = bench.state.notes.get("upload_rate_mbps")
    if not mbps:
        return 2.0
    rows = [r for r in bench.cloud.ledger() if r.get("name") in names]
    part = max((int(r.get("filesize") or 0) / max(1, int(r.get("parts_expected") or 1)) for r in rows), default=0)
    return 2.0 + 1.3 * part * 8 / (float(mbps) * 1e6)


@then(parsers.parse("the cloud receives no more parts for the cancelled files within {seconds:d} seconds"))
def _no_more_parts(bench: Any, seconds: int) -> None:
    """After cancel, parts in flight may land until the device shows the uploads stopped;
    from then on no part is received for the rest of the window, and the file is not complete."""
    names = {c.name for c in bench.state.captures}
    started = time.monotonic()
    if bench.has_status:
        def stopped() -> bool:
            st = device_status(bench)
            mine = [f for f in st.get("files", []) if f.get("name") in names]
            return bool(mine) and all(f.get("state") != "uploading" for f in mine) \
                and (st.get("current") or {}).get("name") not in names
        wait_until(stopped, CANCEL_SETTLE_S, "the device to show the cancelled uploads stopped")
    hold_for(_in_flight_drain_s(bench, names))
    baseline = _parts_received(bench)

    def check() -> None:
        now = _parts_received(bench)
        assert now == baseline, f"{now - baseline} part(s) received after the cancel settled"
    hold_for(max(1.0, seconds - (time.monotonic() - started)), check, interval=1.0)
    ledger = bench.ledger(drained=False)
    assert any(f.outcome != "intact" for f in ledger.files), "the cancelled file completed anyway"


# after a connected period of short-lived tokens, a device still at zero refreshes this much later never will
NO_REFRESH_GIVE_UP_S = 15.0


@then(parsers.re(r"the device refreshed its token at least (?P<count>\d+) times?$"))
def _refreshed(bench: Any, count: str) -> None:
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


@then(parsers.parse("the cloud sees the device's tokens revoked within {seconds:d} seconds"))
def _revoked(bench: Any, seconds: int) -> None:
    """Logout calls /v2/auth/revoke."""
    wait_until(lambda: any(str(r.get("path", "")).endswith("/v2/auth/revoke") for r in bench.journal()),
               seconds, "a call to /v2/auth/revoke")


@then(parsers.parse("the interceptor saw no completed request from the device within {seconds:d} seconds"))
def _interceptor(bench: Any, seconds: int) -> None:
    """The device refused the interceptor's certificate: no request completed through it."""
    mitm = bench.state.notes.get("interceptor")
    assert mitm is not None, "no interceptor in place"
    shown = bench.state.notes.get("interceptor_certificate", "an untrusted certificate")

    def check() -> None:
        assert not mitm.requests_seen and not mitm.established_handshakes, \
            f"the device completed a TLS handshake with an interceptor showing {shown}"
    hold_for(seconds, check, interval=1.0)
    if mitm.verdict() == "no-attempt":
        raise DeviceTimeout("the device made no connection attempt through the interceptor (inconclusive)")

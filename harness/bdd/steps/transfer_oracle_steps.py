"""Then-steps the cloud decides part by part: the bytes re-sent per power cut, the upload
throughput, and no more parts once the device cancelled.

Read from the emulator's journal and ledger (each part PUT with its status and bytes), never
from the device's own claims; measured against the checklist limits like the delivery
(harness.bdd.steps.oracle_steps).
"""

from __future__ import annotations

import math
import time
from typing import Any

from pytest_bdd import parsers, then

from harness.bdd.bench import Bench
from harness.bdd.steps.common import (
    cpu_wait,
    device_status,
    hold_for,
    refuse_on_starved_bench,
    wait_until,
)
from harness.bdd.steps.oracle_steps import require
from harness.certify.throughput import part_upload_rate
from harness.cloud.paths import S3_PART
from harness.errors import BenchFailure, DeviceTimeout


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


def _largest_part(rows: list[dict[str, Any]]) -> float:
    """The largest part size among these cloud ledger rows (file size over the parts it was cut
    into); 0 without a row."""
    return max((int(r.get("filesize") or 0) / max(1, int(r.get("parts_expected") or 1)) for r in rows), default=0)


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
    part = _largest_part(rows)
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
    starved = bench.state.cpu_mark.share_since()
    passed = bench.measure("C2C-NETW-01", "upload_Mbps", value, part_bytes=rate.nbytes,
                           busy_s=round(rate.busy_s, 3), span_s=round(rate.span_s, 3), accepted_parts=rate.parts,
                           **cpu_wait(starved))
    if not passed:
        refuse_on_starved_bench(starved, f"{value:.1f} Mbit/s < {mbps} Mbit/s")
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
    return 2.0 + 1.3 * _largest_part(rows) * 8 / (float(mbps) * 1e6)


def parts_started_before(journal: list[dict[str, Any]], asset_ids: set[str], cloud_t: float) -> dict[str, set[int]]:
    """Per asset, the part numbers whose PUT reached the cloud (`started_at`) before `cloud_t`."""
    started: dict[str, set[int]] = {a: set() for a in asset_ids}
    for r in journal:
        m = S3_PART.match(str(r.get("path") or ""))
        at = r.get("started_at")
        if r.get("method") == "PUT" and m and m.group("asset") in started and at is not None and float(at) <= cloud_t:
            started[m.group("asset")].add(int(m.group("number")))
    return started


def _require_parts_left_at_cancel(bench: Bench, completed: list[str]) -> None:
    """A file that completed after the cancel is the device's fail only if the cancel left it
    parts to stop: when every part was already on the wire (a device with more parts in flight
    than the file has), the scenario did not create its condition, which is the bench's error."""
    cut = bench.state.cancelled_cloud_t
    rows = [r for r in bench.cloud.ledger() if r.get("name") in set(completed)]
    if cut is None or not rows:
        return
    started = parts_started_before(bench.journal(), {str(r["asset_id"]) for r in rows}, cut)
    if all(len(started[str(r["asset_id"])]) >= int(r.get("parts_expected") or 0) > 0 for r in rows):
        raise BenchFailure(f"every part of {completed} was on the wire before the cancel "
                           f"({', '.join(str(r.get('parts_expected')) for r in rows)} part(s), all started): nothing was "
                           "left to cancel, so the scenario did not create its condition (a larger file would)")


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
    if completed:
        _require_parts_left_at_cancel(bench, completed)
    require(bench, "cancelled_files_completed", len(completed), f"the cancelled file completed anyway: {completed}")
    assert len(completed) < len(ledger.files), "the cancelled file completed anyway"
    if stuck is not None:
        raise stuck

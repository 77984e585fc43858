"""Then-steps on how the device worked its queue and where files landed, decided by the cloud.

Parallelism and upload order come from the request journal's part-PUT intervals (each row
carries `started_at`, when the request reached the emulator, and `duration_ms`, how long its
body took): what was on the wire, not when an asset was created. Names and projects come
from the emulator's ledger. Never the device's own claims (C2C-QUE-01, OPT-03/04/05,
WF-03, WF-08).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pytest_bdd import parsers, then, when

from harness.bdd.bench import Bench
from harness.bdd.measures import max_overlap, part_put_spans
from harness.bdd.steps.common import device_status, wait_until
from harness.bdd.steps.media_steps import capture_kind
from harness.errors import BenchFailure, DeviceTimeout


def _asset_names(bench: Bench) -> dict[str, str]:
    """asset id -> captured name, for this device's assets of this scenario's captures."""
    names = {c.name for c in bench.state.captures}
    return {str(r["asset_id"]): str(r["name"]) for r in bench.cloud.ledger(bench.cloud_device_id())
            if r.get("name") in names}


def first_parts(journal: Iterable[Mapping[str, Any]], asset_names: Mapping[str, str]) -> dict[str, tuple[float, float]]:
    """name -> (start of its first part PUT, end of its first finished part PUT) in emulator time."""
    out: dict[str, tuple[float, float]] = {}
    for asset, start, end in part_put_spans(journal):
        name = asset_names.get(asset)
        if name is None:
            continue
        first, done = out.get(name, (math.inf, math.inf))
        out[name] = (min(first, start), min(done, end))
    return out


def finished_before(order: Mapping[str, tuple[float, float]], target: str, others: Iterable[str]) -> list[str]:
    """Of `others`, the files that had a part fully received before `target`'s first part began."""
    begin = order[target][0]
    return sorted(n for n in others if n in order and order[n][1] <= begin)


def files_at_once(journal: Iterable[Mapping[str, Any]], asset_names: Mapping[str, str]) -> int:
    """How many files the device had in flight at the same instant (first part begun, last part
    not yet received): the journal's file-level parallelism."""
    spans: dict[str, tuple[float, float]] = {}
    for asset, start, end in part_put_spans(journal):
        if asset in asset_names:
            first, last = spans.get(asset, (math.inf, -math.inf))
            spans[asset] = (min(first, start), max(last, end))
    return max_overlap(list(spans.values())) if spans else 0


UNSEEN_CLAIMS = 2
"""Files a device may claim together though the journal shows them one after another: its file
slots show only when the files' PUTs overlap, and a device whose work before a file's first PUT
is serial (a check, the create) shows one file at a time while it claimed two. The excuse counts
at least this many files at once, whatever the journal saw."""


@dataclass(frozen=True)
class OrderJudgement:
    """Files done before the prioritised file began, and how many of them a correct device may
    have: one working P files at once claims the prioritised files first, and P - M others beside
    M of them when P > M (on a loaded machine a small part of one of those may be received before
    a prioritised file's first PUT begins). P is the journal's, and never less than UNSEEN_CLAIMS."""

    early: list[str]
    excused: int
    at_once: int

    @property
    def beyond(self) -> list[str]:
        return self.early[self.excused:]


def judge_order(order: Mapping[str, tuple[float, float]], last: str, others: list[str], prioritised: int,
                at_once: int) -> OrderJudgement:
    """Judge the order only where it can tell: a device ignoring the priority, working P files at
    once, finishes a part of at least len(others) - (P - 1) other files before the last
    prioritised one is claimed. When that is no more than the excuse the scenario cannot tell the
    two devices apart, and the bench says so instead of passing."""
    p = max(at_once, UNSEEN_CLAIMS)
    excused = max(0, p - prioritised)
    ignoring_floor = len(others) - (p - 1)
    if ignoring_floor <= excused:
        raise BenchFailure(
            f"the device worked {p} files at once: with {len(others)} other files a device "
            f"ignoring the priority could finish as few as {max(0, ignoring_floor)} before it, "
            f"within the {excused} excused; the scenario needs more files to judge the order")
    return OrderJudgement(finished_before(order, last, others), excused, at_once)


def _put_order(bench: Bench) -> dict[str, tuple[float, float]]:
    order = first_parts(bench.journal(), _asset_names(bench))
    missing = [c.name for c in bench.state.captures if c.name not in order]
    assert not missing, f"the cloud saw no part upload of {missing}"
    return order


# --- queue and parallelism -----------------------------------------------------------------
BUSY_ATTEMPTS = 3
"""Bursts the bench makes before it says it could not capture while the device was uploading."""


@when(parsers.parse('{count:d} more "{kind}" files are captured while the device is uploading'))
def _capture_while_busy(bench: Bench, count: int, kind: str) -> None:
    """Captures keep arriving while the queue is busy: a capture counts when, once its file is in
    place, the cloud still has an unfinished upload of an earlier capture (a part PUT seen, the
    asset not complete). A fast device may drain the burst first: then another burst of the same
    kind keeps it busy, up to BUSY_ATTEMPTS, before the bench says it could not make the condition."""
    taken: list[str] = []
    for _attempt in range(BUSY_ATTEMPTS):
        earlier = {c.name for c in bench.state.captures}

        def busy(earlier: set[str] = earlier) -> bool:
            rows = [r for r in bench.cloud.ledger(bench.cloud_device_id()) if r.get("name") in earlier]
            return any(int(r.get("put_attempts") or 0) > 0 for r in rows) and any(not r.get("completed_at") for r in rows)

        try:
            wait_until(busy, 60, "an upload of the burst in progress", interval=0.05)
        except DeviceTimeout as exc:  # the burst finished before the bench could catch it: no condition made
            raise BenchFailure(f"could not capture while the device was uploading: {exc}") from exc
        while len(taken) < count:
            names = [c.name for c in capture_kind(bench, kind, 1)]
            if not busy():  # the queue drained around this capture: not proven to be during an upload
                break
            taken += names
        if len(taken) == count:
            break
        capture_kind(bench, kind, count * 4)  # another burst to be busy with
    if not taken:
        raise BenchFailure(f"the device drained each of {BUSY_ATTEMPTS} bursts before a capture could be made during it")
    bench.state.captured_while_uploading = taken
    if len(taken) < count:  # the rest arrive once the queue is idle: still captures, still judged
        capture_kind(bench, kind, count - len(taken))


@then("the queue took every capture made while it was uploading")
def _queue_took_all(bench: Bench) -> None:
    """QUE-01: every file of the burst and every file captured while uploads were in flight is
    delivered intact (measured as `undelivered_files`, and how many arrived during uploads)."""
    during = list(bench.state.captured_while_uploading)
    if not during:
        raise BenchFailure("no file was captured while the device was uploading")
    ledger = bench.ledger(drained=True)
    undelivered = [f.name for f in ledger.files if f.outcome != "intact"]
    bench.measure("C2C-QUE-01", "captured_while_uploading", len(during))
    ok = bench.measure("C2C-QUE-01", "undelivered_files", len(undelivered), captured=len(ledger.files))
    assert ok, f"the queue did not deliver {undelivered} (captured while uploading: {during})"


@then("the cloud saw part uploads in parallel")
def _parallel(bench: Bench) -> None:
    """Parallel uploads (OPT-05): the most part PUTs in flight at the same instant, from the
    journal's part-PUT intervals; a device that sends one part at a time measures 1."""
    assets = _asset_names(bench)
    spans = [(a, b) for asset, a, b in part_put_spans(bench.journal()) if asset in assets]
    assert spans, "the cloud saw no part upload of the captured files"
    n = max_overlap(spans)
    # measured per item: OPT-05 (optional) fails on its own without failing QUE-01
    bench.measure("C2C-OPT-05", "max_parallel_puts", n, part_puts=len(spans))


# --- order -----------------------------------------------------------------------------------
@then(parsers.parse('the "{ext}" files were uploaded before the other files'))
def _type_first(bench: Bench, ext: str) -> None:
    """File-type prioritisation (OPT-03): no other file had a part received before the last
    file of the type began its first part, beyond the P - M a device working P files at once
    claims beside the M files of the type (`judge_order`)."""
    order = _put_order(bench)
    mine = [n for n in order if n.lower().endswith(ext.lower())]
    others = [n for n in order if n not in mine]
    assert mine and others, f"the scenario needs {ext} files and others: {sorted(order)}"
    last = max(mine, key=lambda n: order[n][0])
    judged = judge_order(order, last, others, len(mine), files_at_once(bench.journal(), _asset_names(bench)))
    ok = bench.measure("C2C-OPT-03", "other_files_before_priority", len(judged.beyond),
                       excused=judged.excused, files_at_once=judged.at_once)
    by_first = sorted(order, key=lambda n: order[n][0])
    assert ok, f"first-part order {by_first}: {judged.early} had parts received before {last} started"


@then("the last captured file was uploaded first")
def _last_first(bench: Bench) -> None:
    """Queue prioritisation (OPT-04): no other file had a part received before the
    reprioritised file's first part began, beyond the P - 1 a device working P files at once
    claims beside it (`judge_order`)."""
    order = _put_order(bench)
    last = bench.state.captures[-1].name
    others = [n for n in order if n != last]
    judged = judge_order(order, last, others, 1, files_at_once(bench.journal(), _asset_names(bench)))
    ok = bench.measure("C2C-OPT-04", "files_before_prioritised", len(judged.beyond),
                       excused=judged.excused, files_at_once=judged.at_once)
    by_first = sorted(order, key=lambda n: order[n][0])
    assert ok, f"first-part order {by_first}: {judged.early} had parts received before {last} started"


# --- names and project ------------------------------------------------------------------------
@then("every uploaded name matches its captured name")
def _names(bench: Bench) -> None:
    """Names with spaces/unicode/case arrive unchanged and distinct, and nothing arrives under
    another name (the ledger's `unexpected`: a copy renamed, a file it was not given)."""
    ledger = bench.ledger(drained=True)
    missing = [f.name for f in ledger.files if f.outcome != "intact"]
    extra = [str(u.get("name")) for u in ledger.unexpected]
    ok = bench.measure("C2C-WF-03", "names_not_as_captured", len(missing) + len(extra),
                       captured=len(ledger.files))
    assert ok, f"names not found in the cloud as captured: {missing}; uploaded under names never captured: {extra}"


@runtime_checkable
class _ProjectDirectory(Protocol):
    def projects(self) -> list[dict[str, Any]]: ...


def emulator_project(bench: Bench, project_id: str) -> dict[str, Any]:
    """The project as the emulator holds it now (its current name), not the bench's memory."""
    cloud = bench.cloud
    if not isinstance(cloud, _ProjectDirectory):
        raise BenchFailure("the cloud offers no project listing: the project it holds cannot be read")
    row = next((p for p in cloud.projects() if str(p.get("id")) == project_id), None)
    if row is None:
        raise BenchFailure(f"the emulator has no project {project_id}")
    return row


def outside_project(rows: Iterable[Mapping[str, Any]], project_id: str) -> list[str]:
    """Names of assets whose project is not `project_id`; an asset without one is a bench
    failure (the oracle cannot tell where it landed), never accepted."""
    rows = list(rows)
    unknown = [str(r.get("name")) for r in rows if not r.get("project_id")]
    if unknown:
        raise BenchFailure(f"the emulator's ledger gives no project for {unknown}")
    return [str(r.get("name")) for r in rows if str(r.get("project_id")) != project_id]


@then("every file was uploaded to the paired project")
def _project(bench: Bench) -> None:
    """After a rename every asset still lands in the paired project (the device uses the
    project id), the device stays in it, and a device with status shows the current name."""
    project_id = str(bench.session.ensure_project()["id"])
    names = {c.name for c in bench.state.captures}
    rows = [r for r in bench.cloud.ledger(bench.cloud_device_id()) if r.get("name") in names]
    assert {str(r.get("name")) for r in rows} >= names, f"not all captures in the cloud: {sorted(names)}"
    wrong = outside_project(rows, project_id)
    device = bench.cloud_device() or {}
    if str(device.get("project_id") or "") != project_id:
        wrong.append(f"the device itself (project {device.get('project_id')})")
    bench.measure("C2C-WF-08", "assets_outside_project", len(wrong), checked=len(rows))
    assert not wrong, f"outside project {project_id}: {wrong}"
    if bench.has_status:
        current = str(emulator_project(bench, project_id)["name"])

        def shown() -> bool:
            project = device_status(bench).get("project") or {}
            return str(project.get("id") or project_id) == project_id and project.get("name") == current
        wait_until(shown, 60, f"the device to show project {current!r} ({project_id})")

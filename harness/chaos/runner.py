"""Run one schedule on a lane and collect its history; every fault goes through the vocabulary.

The files are made (and damaged, for a broken-clip capture) before the clock starts, so a
capture at 1.2 s is a copy-and-rename at 1.2 s, not a JPEG encode that drifts the timeline.
Faults start and stop at their offsets from a monotonic clock; whatever happens, every fault
still held is stopped and the lane is put back (link clear, no rules, device resumed and on)
before the next schedule. A bench part that fails makes the history a bench error.
"""

from __future__ import annotations

import contextlib
import heapq
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from harness.certify.lost_grant import in_flight_refreshes
from harness.chaos.history import CaptureRecord, FaultRecord, History, near_pause_edge
from harness.chaos.lane import Lane
from harness.chaos.moments import POLL_S, WHEN_WAIT_S, MomentWatch, Pending, Seen
from harness.chaos.schedule import Capture, Schedule, Step
from harness.errors import BenchFailure, DeviceFailure
from harness.faults.media.generate import sha256_file
from harness.faults.vocabulary import ActiveFault, FaultTargets, inject

DEVICE_GAVE_UP = frozenset({"failed", "cancelled", "held", "quarantined", "done"})
GIVEN_UP_S = 3.0
"""How long the device must keep saying so before the recovery wait ends early."""
HIT_LOOK_S = 0.1
"""How often a rule held past its duration (until its first hit) is looked at."""
SETTLE_S = 1.0
"""After the last expected file is complete: time for a late duplicate to show."""
EDGE_GRACE_S = 5.0
"""After the last fault, how long a capture at a pause edge that has no asset yet may still get
one (a device sends the create once the pause is over). The device's own word ends it early."""
RULE_LAYER = "cloud"


@dataclass(order=True)
class _Action:
    at: float
    order: int
    run: Callable[[], None] = field(compare=False)


@dataclass
class _Held:
    active: ActiveFault
    record: FaultRecord
    rule_ids: set[str]
    stop_at: float
    """Seconds from the schedule's start."""
    until: float = 0.0
    """A rule nobody hit by `stop_at` stays armed until its first hit, up to this offset."""
    next_look: float = 0.0


GRANT_BREAKERS = ("power:", "network:link-down", "network:switch-path")
"""Faults that can swallow the answer to a request the cloud already carried out."""
RULE_FAULTS = ("s3:", "api:", "auth:refresh-failure")
"""Faults that arm an emulator rule: fired only if the rule was hit."""


class ScheduleRun:
    """One schedule on one lane: `run()` returns its History."""

    def __init__(self, lane: Lane, schedule: Schedule) -> None:
        self.lane = lane
        self.schedule = schedule
        self.history = History(schedule=schedule.name, lane=lane.number, started_at=time.time())
        self.staging = lane.workdir / "staging" / schedule.name
        self._staged: dict[str, tuple[Path, CaptureRecord]] = {}
        self._placed: dict[str, Path] = {}
        self._held: list[_Held] = []
        self._pending: list[Pending] = []
        self._moments = MomentWatch(lane.cloud, self._rows)
        self._t0 = time.monotonic()
        self._journal_head = 0
        self._rows_before = 1
        """The lane's device rows when the schedule began (an earlier, excused re-pair left two)."""
        self._pairing_started = False
        """The bench started pairing on a device waiting for the user (once per schedule)."""
        lane.runs += 1
        # the same schedule runs again when replayed or shrunk: file names unique per run keep
        # each run's assets apart in the lane's cloud
        self.prefix = f"L{lane.number}r{lane.runs}-"
        self._targets = FaultTargets(timeline=lane.timeline, network=lane.link, power=lane.device.power(),
                                     cloud=lane.cloud, media=lane.media, device_id=lane.device_id,
                                     project_id=lane.project_id)

    # --- the run ------------------------------------------------------------------------------
    def run(self) -> History:
        h = self.history
        try:
            for capture in self.schedule.captures:
                self._stage(capture)
            self._journal_head = self._head()
            self._rows_before = len(self.lane.paired_rows())
            h.started_at = time.time()
            self._play()
        except DeviceFailure as exc:
            h.device_error = f"{type(exc).__name__}: {exc}"
        except BenchFailure as exc:
            h.bench_error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bench part broke in a way it did not name (HTTP client, OS)
            h.bench_error = f"{type(exc).__name__}: {exc}"
        finally:
            self._stop_all()
            h.faults_end = time.time()
        try:
            if h.bench_error is None:
                self._recover()
            self._collect()
        except BenchFailure as exc:
            h.bench_error = h.bench_error or f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            h.bench_error = h.bench_error or f"{type(exc).__name__}: {exc}"
        h.finished_at = time.time()
        shutil.rmtree(self.staging, ignore_errors=True)  # copied into the watch folder already
        return h

    def _stage(self, capture: Capture) -> None:
        """Make the file in the lane's staging dir (damaged through the vocabulary if asked)."""
        kit = self.lane.media
        if capture.kind == "large":
            entry = kit.large(self.staging, capture.size, name=self.prefix + capture.name)
        else:
            entry = kit.generate_named("jpg", self.staging, self.prefix + capture.name)
        path = Path(str(entry["path"]))
        if capture.corruption is not None:
            targets = FaultTargets(timeline=self.lane.timeline, media=kit, media_path=path)
            inject(f"media:{capture.corruption}", targets)
        record = CaptureRecord(name=path.name, sha256=sha256_file(path), size=path.stat().st_size,
                               captured_at=0.0, corruption=capture.corruption)
        self._staged[capture.name] = (path, record)

    def _play(self) -> None:
        actions: list[_Action] = []
        for number, step in enumerate(self.schedule.steps):
            if step.capture is not None:
                actions.append(_Action(step.at, len(actions), partial(self._capture, step)))
                continue
            for rep in range(step.repeat):
                start = step.at + rep * (step.duration + step.gap)
                actions.append(_Action(start, len(actions), partial(self._start, step, number)))
        heapq.heapify(actions)
        self._t0 = time.monotonic()
        while actions or self._held or self._pending:
            now = self._now()
            self._stop_due(now)
            self._apply_reached(now)
            if actions and actions[0].at <= now:
                heapq.heappop(actions).run()
                continue
            upcoming = [a.at for a in actions[:1]] + [h.stop_at if h.stop_at > now else h.next_look
                                                      for h in self._held]
            if self._pending:
                upcoming.append(now + POLL_S)
            if not upcoming:
                break
            time.sleep(max(0.0, min(0.05, min(upcoming) - now)))

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _capture(self, step: Step) -> None:
        assert step.capture is not None
        src, record = self._staged[step.capture.name]
        dest = self.lane.device.capture([src])[0]
        # the file's own stamp, as a camera's clip has: copying 24 MiB may take most of a second
        captured_at = dest.stat().st_mtime
        self._placed[step.capture.name] = dest
        self.history.captures.append(CaptureRecord(
            name=record.name, sha256=record.sha256, size=record.size, captured_at=captured_at,
            path=str(dest), corruption=record.corruption or self._vanishes(step.capture.name)))

    def _vanishes(self, name: str) -> str | None:
        return "vanish" if any(f.file == name and f.fault == "media:vanish" for f in self.schedule.faults) else None

    def _start(self, step: Step, number: int) -> None:
        """The step's time has come: apply it, or wait for its moment (the schedule goes on)."""
        if step.when is not None:
            self._pending.append(self._moments.wait_for(step, number, self._now()))
            return
        self._apply(step, number)

    def _apply_reached(self, now: float) -> None:
        """Apply each waiting fault whose moment came; give up on those past their wait."""
        for pending in list(self._pending):
            seen = self._moments.reached(pending)
            if seen is None and now < pending.deadline:
                continue
            self._pending.remove(pending)
            step = pending.step
            if seen is not None:
                try:
                    record = self._apply(step, pending.number, seen)
                finally:
                    released = self._moments.finish(pending)  # the cut is done: the held answer may go
                if pending.rule_id is not None:
                    self._answer_went(record, released)
                continue
            self._moments.finish(pending)
            assert step.fault is not None
            self.history.faults.append(FaultRecord(step=pending.number, fault=step.fault, started_at=time.time(),
                                                   stopped_at=time.time(), fired=False,
                                                   note=f"not applied: no {step.when} moment within {WHEN_WAIT_S:g} s"))

    @staticmethod
    def _answer_went(record: FaultRecord, released: float | None) -> None:
        """When the cloud let go the answer the fault was aimed before (`answered_at`). Gone before
        the fault began (a hold that timed out), the fault did not land where it was aimed: not
        fired, the schedule inconclusive."""
        record.answered_at = released
        if released is None or released < record.started_at:
            record.fired = False
            record.note += ("; the cloud held no answer" if released is None
                            else f"; the held answer went {record.started_at - released:.2f} s before it")

    def _apply(self, step: Step, number: int, seen: Seen | None = None) -> FaultRecord:
        assert step.fault is not None
        targets = self._targets
        if step.file is not None:
            placed = self._placed.get(step.file)
            if placed is None:
                raise BenchFailure(f"{step.fault} aims at {step.file}, which was not captured before it")
            targets = FaultTargets(timeline=self.lane.timeline, media=self.lane.media, media_path=placed)
        is_rule = step.fault.startswith(RULE_FAULTS)
        before = self._rule_ids() if is_rule else set()
        was_on = self.lane.device.power().is_on()
        moment = seen.note if seen is not None else ""
        record = FaultRecord(step=number, fault=step.fault, started_at=time.time(), note=moment,
                             aimed_at=seen.arrived_at if seen is not None else None)
        self.history.faults.append(record)
        active = inject(step.fault, targets)
        rule_ids = self._rule_ids() - before if is_rule else set()
        if step.fault.startswith("power:"):
            record.fired = bool(was_on)
            record.note = moment if was_on else "the device was already off"
        if active.stopped:
            record.stopped_at = time.time()
        else:
            stop_at = self._now() + step.duration
            until = stop_at + step.until_hit if rule_ids else stop_at
            self._held.append(_Held(active, record, rule_ids, stop_at=stop_at, until=until))
        return record

    def _rule_ids(self) -> set[str]:
        return {str(r.get("id")) for r in self.lane.cloud.faults()}

    def _stop_due(self, now: float) -> None:
        for held in list(self._held):
            if held.stop_at > now:
                continue
            if now < held.until:  # a rule past its duration: held on until its first hit
                if now < held.next_look:
                    continue
                held.next_look = now + HIT_LOOK_S
                if self._hits(held) == 0:
                    continue
            self._stop(held)

    def _hits(self, held: _Held) -> int:
        return sum(int(r.get("hits") or 0) for r in self.lane.cloud.faults() if str(r.get("id")) in held.rule_ids)

    def _stop(self, held: _Held) -> None:
        self._held.remove(held)
        if held.rule_ids:
            hits = self._hits(held)
            held.record.fired = hits > 0
            over = self._now() - held.stop_at
            longer = f", armed {over:.1f} s past its duration for its first hit" if over > HIT_LOOK_S else ""
            held.record.note = f"{hits} hit(s){longer}"
        held.active.stop()
        held.record.stopped_at = time.time()

    def _stop_all(self) -> None:
        for pending in self._pending:
            with contextlib.suppress(Exception):
                self._moments.finish(pending)
        for held in list(self._held):
            with contextlib.suppress(Exception):
                self._stop(held)
            if held in self._held:
                self._held.remove(held)

    # --- recovery and evidence ------------------------------------------------------------
    def _expected(self) -> set[str]:
        """Files that must reach the cloud: not captured while paused, not damaged."""
        windows = self._pause_windows()
        return {c.name for c in self.history.captures
                if c.corruption is None and not near_pause_edge(c.captured_at, windows)
                and not any((w["start"] or 0.0) <= c.captured_at <= (w["stop"] or 1e18) for w in windows)}

    def _edge_names(self) -> set[str]:
        windows = self._pause_windows()
        return {c.name for c in self.history.captures if c.corruption is None and near_pause_edge(c.captured_at, windows)}

    def _pause_windows(self) -> list[dict[str, Any]]:
        """This schedule's pause windows (stop None: still paused)."""
        return [{"start": float(w["start"]), "stop": w["stop"]} for w in self.lane.timeline.windows()
                if w["layer"] == "cloud" and w["name"] == "pause" and float(w["start"]) >= self.history.started_at - 1]

    def _rows(self) -> list[dict[str, object]]:
        """This run's assets: the lane's device's (under one or, after an approved re-pair, two
        device ids; the shared cloud holds every lane's), named with this run's prefix."""
        return [r for device_id in self.lane.device_ids for r in self.lane.cloud.ledger(device_id)
                if str(r.get("name", "")).startswith(self.prefix)]

    def _head(self) -> int:
        """The newest journal row id (paged on from where the lane's last look ended)."""
        while rows := self.lane.cloud.journal(since=self.lane.journal_cursor):
            self.lane.journal_cursor = max(int(r.get("id") or 0) for r in rows)
        return self.lane.journal_cursor

    def _journal(self) -> list[dict[str, object]]:
        """This schedule's journal rows of the lane's device (the shared cloud's hold every lane's)."""
        rows: list[dict[str, object]] = []
        head = self._journal_head
        mine = set(self.lane.device_ids)
        while page := self.lane.cloud.journal(since=head):
            rows += [r for r in page if r.get("device_id") in mine]
            head = max(int(str(r.get("id") or 0)) for r in page)
        return rows

    def _grant_lost_in_flight(self) -> str | None:
        """Why a re-pair is the contract's answer, or None: a token refresh the cloud answered
        200 (rotating the single-use refresh token, c2c-api.md §3.3) that was in flight (arrived,
        not yet answered) while a link break or power cut of this schedule was under way, so the
        answer may never have reached the device (a cut aimed at a refresh: always)."""
        # a cut aimed at a refresh takes that very answer, however slowly the bench saw it
        breaks = [(min(f.started_at - 0.2, f.aimed_at or f.started_at), (f.stopped_at or f.started_at) + 0.5)
                  for f in self.history.faults if f.fault.startswith(GRANT_BREAKERS)]
        for row, _ in in_flight_refreshes(self._journal(), breaks):
            answered = float(str(row.get("t") or 0.0))
            return (f"a token refresh answered 200 at +{answered - self.history.started_at:.2f} s, "
                    f"during a link break or power cut: the rotated pair may never have arrived")
        return None

    def _approve_repair(self) -> bool:
        """Pair the device again when the grant was lost in flight, as the operator would: start
        pairing on a device that waits for the user (repair_needed), approve the code it shows;
        True once approved. The lane's device id follows the new pairing."""
        status = self.lane.device.status() or {}
        pairing = status.get("pairing")
        if not isinstance(pairing, dict):
            return False
        if pairing.get("state") == "repair_needed" and not self._pairing_started:
            if self._grant_lost_in_flight() is None:
                return False
            self._pairing_started = True
            self.lane.timeline.record("device", "start_pairing", "mark", why="grant lost in flight")
            with contextlib.suppress(DeviceFailure):  # refused: no code comes, the files stay lost
                self.lane.device.control("start_pairing")
            return False
        if pairing.get("state") != "showing_code" or not pairing.get("user_code"):
            return False
        reason = self._grant_lost_in_flight()
        if reason is None:
            return False
        self.lane.cloud.approve(str(pairing["user_code"]), self.lane.project_id)
        self.lane.timeline.record("cloud", "approve", "mark", why="grant lost in flight")
        self.history.repair_excused = reason
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # the cloud may give the device a new id or (same client id, same project) its old one
            rows = [r for r in self.lane.paired_rows() if not r.get("revoked")]
            again = (self.lane.device.status() or {}).get("pairing")
            if rows and (str(rows[-1]["id"]) != self.lane.device_id
                         or (isinstance(again, dict) and again.get("state") == "paired")):
                self.lane.paired_as(str(rows[-1]["id"]))
                self._targets.device_id = self.lane.device_id
                break
            time.sleep(0.1)
        return True

    def _recover(self) -> None:
        """The quiet window: wait until every expected file is complete, up to the bound."""
        power = self.lane.device.power()
        if not power.is_on():
            self.history.device_alive = False
        expected = self._expected()
        deadline = self.history.faults_end + self.schedule.recovery
        gave_up_since: float | None = None
        while time.time() < deadline:
            if self.history.repair_excused is None:
                self._approve_repair()
            rows = self._rows()
            accepted = {str(r.get("name")) for r in rows}
            done = {str(r.get("name")) for r in rows if r.get("completed_at")}
            # a capture at a pause edge that the cloud accepted (it holds an asset for it) is on
            # the delivered side: wait for it too (else it is judged while still uploading)
            edges = self._edge_names()
            expected |= edges & accepted
            states = self._device_states()
            missing = awaited(expected, edges, accepted, done, since_faults=time.time() - self.history.faults_end,
                              device_states=states)
            if not missing:
                time.sleep(SETTLE_S)
                if edges & {str(r.get("name")) for r in self._rows()} <= expected:
                    return
                continue  # an edge capture got its asset meanwhile: it must complete too
            if not power.is_on():
                self.history.device_alive = False
            if given_up(missing, states):
                gave_up_since = gave_up_since or time.monotonic()
                if time.monotonic() - gave_up_since >= GIVEN_UP_S:
                    return
            else:
                gave_up_since = None
            time.sleep(0.2)

    def _device_states(self) -> dict[str, str]:
        """File name -> state, as the device's status says (empty: no status API, or no files)."""
        files = (self.lane.device.status() or {}).get("files")
        if not isinstance(files, list):
            return {}
        return {str(f.get("name")): str(f.get("state")) for f in files if isinstance(f, dict)}

    def _collect(self) -> None:
        h = self.history
        lane = self.lane
        h.cloud_rows = [dict(r) for r in self._rows()]
        h.pause_windows = [dict(w) for w in self._pause_windows()]
        if not lane.device.power().is_on():
            h.device_alive = False
        status = lane.device.status() or {}
        files = status.get("files")
        prefix = self.prefix
        h.device_files = [f for f in files if isinstance(f, dict) and str(f.get("name", "")).startswith(prefix)] \
            if isinstance(files, list) else []
        pairing = status.get("pairing")
        h.pairing_state = str(pairing.get("state")) if isinstance(pairing, dict) and pairing.get("state") else None
        h.device_rows = 1 + len(lane.paired_rows()) - self._rows_before
        h.revoked = any(f.fault.startswith("auth:revoke") for f in h.faults)


def given_up(missing: set[str], device_states: dict[str, str]) -> bool:
    """The device itself says it will send none of `missing` (each failed, cancelled, held,
    quarantined, or done although the cloud lacks it): waiting out the bound would only
    slow the campaign. Its word only ends the wait early; the ledger still judges."""
    return bool(device_states) and all(device_states.get(name) in DEVICE_GAVE_UP for name in missing)


def awaited(expected: set[str], edges: set[str], accepted: set[str], done: set[str], *,
            since_faults: float, device_states: dict[str, str]) -> set[str]:
    """The files the recovery wait is still for (none: the schedule may settle).

    Expected files, and edge captures the cloud accepted (an asset exists), until complete. An
    edge capture with no asset yet is waited for while the device lists it as in its queue, or
    without a word from the device for EDGE_GRACE_S after the last fault; not once the device
    says it holds it or gave it up. Without this a create sent just after the resume came
    after the wait had ended, and the checker judged the accepted file lost."""
    waiting = (expected | (edges & accepted)) - done
    for name in edges - accepted - done:
        state = device_states.get(name)
        if state in DEVICE_GAVE_UP:
            continue
        if state is not None or since_faults < EDGE_GRACE_S:
            waiting.add(name)
    return waiting


def reset_lane(lane: Lane) -> None:
    """Put the lane back to a quiet state between schedules (BenchFailure if it cannot)."""
    lane.cloud.clear_faults()
    lane.link.clear()
    with contextlib.suppress(Exception):
        lane.cloud.resume_device(lane.device_id)
    if not lane.device.power().is_on():
        lane.device.start()


def run_schedule(lane: Lane, schedule: Schedule) -> History:
    """Run `schedule` on `lane` and put the lane back for the next one."""
    history = ScheduleRun(lane, schedule).run()
    try:
        reset_lane(lane)
    except DeviceFailure as exc:
        history.device_alive = False
        history.device_error = history.device_error or f"did not boot after the schedule: {exc}"
    return history

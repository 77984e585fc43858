"""A grant lost in a power cut, told from journal rows (harness/certify/lost_grant.py), and the step
that pairs the device again only then."""

from __future__ import annotations

from typing import Any

import pytest

from harness.bdd.state import ScenarioState
from harness.bdd.steps import device_steps
from harness.certify.lost_grant import in_flight_refreshes, refresh_lost_in_cut
from harness.timeline import Timeline

DEV = "dev-1"


def token(rid: int, t: float, status: int, *, arrived: float | None = None, device: str | None = DEV) -> dict[str, Any]:
    return {"id": rid, "t": t, "started_at": t if arrived is None else arrived, "method": "POST",
            "path": "/v2/auth/token", "status": status, "device_id": device}


# the matrix's run (plain-http, C2C-QUE-03): refreshes at +0.0 and +0.14 s, the kill 6 ms after
# the second one's answer, the new process's refresh refused
MATRIX = [token(93, 100.00, 200), token(97, 100.14, 200), token(102, 100.73, 400)]


def test_the_matrix_case_is_a_grant_lost_in_the_cut() -> None:
    why = refresh_lost_in_cut(MATRIX, [1000.146], cloud_minus_wall=-900.0)
    assert why and "refused" in why


@pytest.mark.parametrize(("rows", "kill", "offset"), [
    (MATRIX, 1005.0, -900.0),  # the kill came 5 s later: the device had the answer, and lost it itself
    (MATRIX[:2], 1000.146, -900.0),  # nothing refused: the device kept its pair
    ([token(97, 100.14, 200), token(102, 100.73, 400, device="other")], 1000.146, -900.0),  # another device
    ([token(97, 100.14, 200, device=None), token(102, 100.73, 400)], 1000.146, -900.0),  # a code poll, not a refresh
    (MATRIX, 1000.146, 0.0),  # the kill on the wall clock, unmapped: 900 s off the emulator clock
])
def test_no_lost_grant(rows: list[dict[str, Any]], kill: float, offset: float) -> None:
    assert refresh_lost_in_cut(rows, [kill], cloud_minus_wall=offset) is None


def test_an_answer_still_on_its_way_at_the_kill_counts() -> None:
    """Arrived before the kill, answered just after it (the process was already dead)."""
    rows = [token(5, 50.03, 200, arrived=49.98), token(6, 51.0, 400)]
    assert refresh_lost_in_cut(rows, [50.0], cloud_minus_wall=0.0)


@pytest.mark.parametrize(("arrived", "answered", "inside"), [
    (9.0, 10.5, True),    # arrived before the break, answered during it
    (10.5, 10.6, True),   # arrived and answered during it
    (11.5, 13.0, True),   # arrived during it, answered after it
    (9.0, 13.0, True),    # in flight across the whole break
    (8.0, 9.9, False),    # answered before the break began: the device had it
    (12.1, 12.5, False),  # arrived after the break ended
])
def test_a_refresh_in_flight_during_a_link_break(arrived: float, answered: float, inside: bool) -> None:
    """The chaos runner's reading: a link break is a span (10 .. 12 here), not an instant."""
    rows = [token(1, answered, 200, arrived=arrived), token(2, answered, 400, arrived=arrived),
            token(3, answered, 200, arrived=arrived, device=None)]
    found = list(in_flight_refreshes(rows, [(10.0, 12.0)]))
    assert [row["id"] for row, _ in found] == ([1] if inside else [])


class _Cloud:
    def __init__(self, rows: list[dict[str, Any]], now: float) -> None:
        self.rows, self._now = rows, now
        self.asked: list[int] = []

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        self.asked.append(since)
        return [r for r in self.rows if r["id"] > since]

    def now(self) -> float:
        return self._now


class _Bench:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.timeline, self.state = Timeline(), ScenarioState()
        self.cloud = _Cloud(rows, 0.0)
        self.notes: list[str] = []

    def exercised(self, what: str) -> None:
        self.notes.append(what)


def test_the_step_pairs_again_once_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    paired: list[object] = []
    monkeypatch.setattr(device_steps, "pair", paired.append)
    bench = _Bench([])
    kill = bench.timeline.record("power", "device", "flip", state="off").at
    bench.cloud.rows = [token(1, 100.0, 200), token(2, 101.0, 400)]
    bench.cloud._now = 100.0 + 0.01  # the emulator's clock: the kill at 100.0 on it
    monkeypatch.setattr(device_steps.time, "time", lambda: kill + 0.01)
    device_steps.pair_again_if_grant_lost(bench)  # type: ignore[arg-type]
    device_steps.pair_again_if_grant_lost(bench)  # type: ignore[arg-type]
    assert paired == [bench] and bench.state.paired_again and len(bench.notes) == 1
    assert any(e.name == "pair again" for e in bench.timeline.events)


def test_without_a_cut_the_step_leaves_a_refused_refresh_to_the_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    paired: list[object] = []
    monkeypatch.setattr(device_steps, "pair", paired.append)
    bench = _Bench([token(1, 100.0, 200), token(2, 101.0, 400)])
    device_steps.pair_again_if_grant_lost(bench)  # type: ignore[arg-type]
    assert paired == [] and bench.state.paired_again is None


def test_each_poll_reads_only_the_rows_after_the_last_one_read(monkeypatch: pytest.MonkeyPatch) -> None:
    paired: list[object] = []
    monkeypatch.setattr(device_steps, "pair", paired.append)
    bench = _Bench([])
    kill = bench.timeline.record("power", "device", "flip", state="off").at
    monkeypatch.setattr(device_steps.time, "time", lambda: kill + 0.01)
    bench.cloud._now = 100.0 + 0.01
    bench.cloud.rows = [token(1, 100.0, 200), {"id": 2, "method": "PUT", "path": "/s3/p", "status": 200}]
    device_steps.pair_again_if_grant_lost(bench)  # type: ignore[arg-type]
    bench.cloud.rows.append(token(3, 101.0, 400))  # the new process's refresh, refused
    device_steps.pair_again_if_grant_lost(bench)  # type: ignore[arg-type]
    assert bench.cloud.asked == [0, 2] and paired == [bench]

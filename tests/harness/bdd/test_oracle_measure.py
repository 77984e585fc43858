"""The oracle steps record a measurement for every item of the scenario that declares it, and a
failure names the measurement, its limit and the items."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from harness.bdd.bench import Bench, ScenarioState, SessionBench
from harness.bdd.steps.oracle_steps import declaring, measure_all, out_of_limits, require
from harness.errors import DeliveryFailure
from harness.items.checklist import load_checklist
from harness.timeline import Timeline


def _bench(tmp_path: Path, *items: str) -> Bench:
    session = SessionBench(profile=None, workdir=tmp_path, seed=1, prompt=None, timeline=Timeline(),  # type: ignore[arg-type]
                           checklist=load_checklist())
    state = ScenarioState()
    state.items = list(items)
    return Bench(session, state)


def test_measured_for_each_declaring_item_only(tmp_path: Path) -> None:
    bench = _bench(tmp_path, "C2C-QUE-02", "C2C-RTY-01", "C2C-AUTH-01")
    assert declaring(bench, "uploads_resumed") == ["C2C-QUE-02", "C2C-RTY-01"]
    assert measure_all(bench, "uploads_resumed", 2)
    assert [m["item"] for m in bench.state.measurements] == ["C2C-QUE-02", "C2C-RTY-01"]
    assert out_of_limits(bench) == []


def test_a_failure_names_the_measurement_its_limit_and_items(tmp_path: Path) -> None:
    bench = _bench(tmp_path, "C2C-QUE-02", "C2C-RES-02")
    assert not measure_all(bench, "files_intact", 3, expected_files=4)
    assert out_of_limits(bench) == ["files_intact=3 outside == 4 files (C2C-QUE-02, C2C-RES-02)"]
    with pytest.raises(DeliveryFailure, match=r"time_to_deliver_s=130 outside <= 120 s \(C2C-QUE-02, C2C-RES-02\)"):
        require(bench, "time_to_deliver_s", 130, "late", deadline_s=120)


def test_symbolic_limits_come_from_the_scenario(tmp_path: Path) -> None:
    bench = _bench(tmp_path, "C2C-QA-05")
    assert measure_all(bench, "refreshes", 3, clock_jumps=3)
    assert not measure_all(bench, "refreshes", 2, clock_jumps=3)


def test_an_earlier_steps_figure_fails_its_own_item_not_the_scenario(tmp_path: Path) -> None:
    """A status figure out of limits (STAT-02) must not be re-raised by a later delivery step, or it
    would fail every item the scenario shares (STAT-01, UPL-02) instead of its own."""
    bench = _bench(tmp_path, "C2C-STAT-01", "C2C-STAT-02", "C2C-UPL-02")
    assert not bench.measure("C2C-STAT-02", "remaining_bytes_error", 9_999_999, part_size=2_097_152)
    mark = len(bench.state.measurements)
    assert measure_all(bench, "files_lost", 0)
    assert out_of_limits(bench, mark) == []
    require(bench, "files_corrupt", 0, "corrupt")  # does not raise for the STAT-02 figure
    assert out_of_limits(bench) != []  # the figure is still there: the plugin fails STAT-02 alone with it


class _TraceLink:
    """A link that offered `mbps` over any window (what a packet-level trace link answers)."""

    def __init__(self, mbps: float) -> None:
        self.mbps = mbps

    def offered_mbps(self, start: float, end: float) -> float | None:
        return self.mbps


def _two_small_parts(bench: Bench, busy_s: float, monkeypatch: pytest.MonkeyPatch, link: object) -> None:
    rows = [{"id": n, "method": "PUT", "path": f"/s3/parts/{uuid.UUID(int=n)}/1/1?X-Amz-Signature=s", "status": 200,
             "started_at": 1000.0 + n * busy_s / 2, "duration_ms": busy_s / 2 * 1000, "bytes_in": 21_000}
            for n in range(2)]
    monkeypatch.setattr(Bench, "journal", lambda self: rows)
    bench.session._network = link  # type: ignore[assignment]


@pytest.mark.parametrize(("offered", "judged"), [(0.3, False), (1.9, True)])
def test_a_transfer_in_a_trace_gap_is_not_judged_on_throughput(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offered: float, judged: bool) -> None:
    """42 KB over 2.5 s (0.13 Mbit/s) fails the direct-modem floor only where the link offered enough."""
    from harness.bdd.steps.oracle_steps import _measure_throughput

    bench = _bench(tmp_path, "C2C-TNET-06")
    _two_small_parts(bench, 2.5, monkeypatch, _TraceLink(offered))
    _measure_throughput(bench)
    measured = [m for m in bench.state.measurements if m["name"] == "throughput_Mbps"]
    if judged:
        assert measured and measured[0]["passed"] is False and measured[0]["context"]["offered_Mbps"] == 1.9
    else:
        assert not measured
        assert any("not judged" in e and "0.30 Mbit/s" in e for e in bench.state.exercised)


def test_throughput_on_a_link_without_a_trace_is_judged_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.bdd.steps.oracle_steps import _measure_throughput

    bench = _bench(tmp_path, "C2C-TNET-06")
    _two_small_parts(bench, 2.5, monkeypatch, object())
    _measure_throughput(bench)
    [m] = [m for m in bench.state.measurements if m["name"] == "throughput_Mbps"]
    assert m["passed"] is False and "offered_Mbps" not in m["context"]


def test_one_part_held_up_by_a_retransmission_does_not_set_the_figure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The full matrix's case: 21 KB in 0.14 s, then 21 KB in 2.36 s on the direct-modem trace."""
    from harness.bdd.steps.oracle_steps import _measure_throughput

    bench = _bench(tmp_path, "C2C-TNET-06")
    rows = [{"id": 0, "method": "PUT", "path": f"/s3/parts/{uuid.UUID(int=1)}/1/1", "status": 200,
             "started_at": 4.13, "duration_ms": 143.4, "bytes_in": 21_088},
            {"id": 1, "method": "PUT", "path": f"/s3/parts/{uuid.UUID(int=2)}/1/1", "status": 200,
             "started_at": 4.386, "duration_ms": 2359.0, "bytes_in": 21_144}]
    monkeypatch.setattr(Bench, "journal", lambda self: rows)
    bench.session._network = _TraceLink(1.52)  # type: ignore[assignment]
    _measure_throughput(bench)
    [m] = [m for m in bench.state.measurements if m["name"] == "throughput_Mbps"]
    assert m["passed"] and m["value"] == 1.18 and m["context"]["union_Mbps"] == 0.14


class _Starved:
    """A CPU stall mark that reads a fixed share (what PSI said over the scenario)."""

    def __init__(self, share: float) -> None:
        self.share = share

    def share_since(self) -> float:
        return self.share


@pytest.mark.parametrize(("share", "bench_error"), [(0.9, True), (0.3, False)])
def test_a_throughput_under_its_floor_on_a_starved_bench_is_the_benchs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, share: float, bench_error: bool) -> None:
    """Seen in a loaded full matrix: a hardline JPEG pair measured 0.92 Mbit/s against the 1 Mbit/s
    floor, on a machine whose CPU was 98 % busy. A slow figure on a starved bench says nothing."""
    from harness.bdd.steps.common import refuse_on_starved_bench
    from harness.bdd.steps.oracle_steps import _measure_throughput
    from harness.errors import BenchFailure

    bench = _bench(tmp_path, "C2C-TNET-06")
    _two_small_parts(bench, 2.5, monkeypatch, object())
    bench.state.cpu_mark = _Starved(share)  # type: ignore[assignment]
    slow = _measure_throughput(bench)
    [m] = [m for m in bench.state.measurements if m["name"] == "throughput_Mbps"]
    assert m["passed"] is False and m["context"]["cpu_wait_share"] == share  # measured either way
    assert slow == (share, "throughput 0.13 Mbit/s below its 0.2 Mbit/s floor")
    if bench_error:
        with pytest.raises(BenchFailure, match="CPU-starved"):
            refuse_on_starved_bench(*slow)
    else:
        refuse_on_starved_bench(*slow)  # a fail through its measurement, as before


@pytest.mark.parametrize("lost", [True, False])
def test_a_starved_bench_never_hides_a_lost_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lost: bool) -> None:
    from harness.bdd.steps import oracle_steps
    from harness.certify.ledger import FileVerdict, Ledger
    from harness.errors import BenchFailure

    bench = _bench(tmp_path, "C2C-TNET-06")
    files = [FileVerdict(name="a.jpg", outcome="lost" if lost else "intact", captured_at=0.0, sha256=None, size=1,
                         paused=False, corruption=None, device_state="done")]
    monkeypatch.setattr(oracle_steps, "_settle", lambda *a, **k: (Ledger(files=files, unexpected=[], drained=True), None))
    monkeypatch.setattr(oracle_steps, "_measure_throughput", lambda bench: (0.95, "throughput 0.50 Mbit/s below"))
    with pytest.raises(DeliveryFailure if lost else BenchFailure):
        oracle_steps._deliver(bench, 10, {"a.jpg"}, "delivery")

"""How busy the bench machine is: CPU starvation from Linux PSI (a failed speed verdict on a starved bench is the bench's error) and the unused CPU share from /proc/stat."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.bdd.steps.common import cpu_wait, refuse_on_starved_bench
from harness.errors import BenchFailure
from harness.machine import CpuIdleMark, CpuStallMark, cpu_pressure, starved_note

PSI = "some avg10={avg} avg60=1.00 avg300=1.00 total={total}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"


def _psi(path: Path, total_us: int, avg: float = 12.5) -> str:
    path.write_text(PSI.format(avg=avg, total=total_us), encoding="ascii")
    return str(path)


def test_share_of_time_some_task_waited(tmp_path: Path) -> None:
    f = tmp_path / "cpu"
    assert CpuStallMark.now(_psi(f, 1_000_000)).stalled_us == 1_000_000
    mark = CpuStallMark(stalled_us=1_000_000, at=time.monotonic() - 2.0)  # taken 2 s ago
    share = mark.share_since(_psi(f, 2_500_000))  # 1.5 s of waiting since
    assert share is not None and 0.7 < share <= 0.75
    assert cpu_pressure(str(f)) == 12.5


def test_no_psi_no_share(tmp_path: Path) -> None:
    mark = CpuStallMark.now(str(tmp_path / "absent"))
    assert mark.stalled_us is None and mark.share_since(str(tmp_path / "absent")) is None
    assert cpu_pressure(str(tmp_path / "absent")) is None and cpu_wait(None) == {}


def test_a_failed_speed_verdict_on_a_starved_bench_is_the_benchs() -> None:
    assert starved_note(None) is None and starved_note(0.79) is None
    refuse_on_starved_bench(0.2, "30 % of the capacity offered")  # a quiet bench: the fail stands
    with pytest.raises(BenchFailure, match=r"30 % of the capacity offered, but the bench machine was CPU-starved.*91%"):
        refuse_on_starved_bench(0.91, "30 % of the capacity offered")
    assert cpu_wait(0.91234) == {"cpu_wait_share": 0.912}


def test_this_machine_reports_a_share_when_it_has_psi() -> None:
    mark = CpuStallMark.now()
    if mark.stalled_us is None:
        pytest.skip("no /proc/pressure/cpu on this kernel")
    sum(i * i for i in range(200_000))  # some time passes
    share = mark.share_since()
    assert share is not None and 0.0 <= share <= 1.0


def _stat(path: Path, user: int, idle: int, iowait: int = 0) -> str:
    path.write_text(f"cpu  {user} 0 0 {idle} {iowait} 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n", encoding="ascii")
    return str(path)


def test_idle_share_reads_proc_stat_deltas(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    mark = CpuIdleMark.now(_stat(stat, user=1000, idle=500))
    _stat(stat, user=1300, idle=600, iowait=100)  # 300 busy, 200 idle (iowait counts as idle)
    assert mark.idle_since(str(stat)) == pytest.approx(0.4)
    assert mark.idle_since(str(tmp_path / "none")) is None
    assert CpuIdleMark.now(_stat(stat, user=1000, idle=500)).idle_since(str(stat)) is None  # no tick passed


def test_idle_share_on_this_machine_is_a_share() -> None:
    share = CpuIdleMark(0, 0).idle_since()
    assert share is None or 0.0 <= share <= 1.0

"""Recovery after a fault (harness/bdd/recovery.py): what was pending when it ended, and when
the cloud first accepted an upload after it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.bdd.bench import Bench, Capture, ScenarioState, SessionBench
from harness.bdd.recovery import fault_ending, fault_ends, poll_recovery
from harness.timeline import Timeline


class JournalCloud:
    """The two views recovery reads: the journal (ids in order) and the ledger (completed assets)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.assets: list[dict[str, Any]] = []

    def add(self, method: str, path: str, status: int) -> None:
        self.rows.append({"id": len(self.rows) + 1, "method": method, "path": path, "status": status})

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["id"] > since]

    def ledger(self, device_id: str | None = None) -> list[dict[str, Any]]:
        return self.assets


def _bench(tmp_path: Path, cloud: JournalCloud, *names: str) -> Bench:
    session = SessionBench(profile=None, workdir=tmp_path, seed=1, prompt=None, timeline=Timeline(),  # type: ignore[arg-type]
                           checklist=None)  # type: ignore[arg-type]
    session._cloud = cloud  # type: ignore[assignment]
    state = ScenarioState()
    state.captures = [Capture(name=n, path=tmp_path / n, sha256=None, size=1, captured_at=time.time(), paused=False)
                      for n in names]
    return Bench(session, state)


def test_recovery_is_stamped_at_the_first_accepted_upload_after_the_fault(tmp_path: Path) -> None:
    cloud = JournalCloud()
    cloud.add("POST", "/v2/devices/assets", 201)
    cloud.assets = [{"name": "A.JPG", "completed_at": 1.0}]
    bench = _bench(tmp_path, cloud, "A.JPG", "B.JPG")
    with fault_ending(bench, "link down"):
        pass
    end = fault_ends(bench)[0]
    assert end.pending == ["B.JPG"] and end.journal_id == 1
    cloud.add("POST", "/v2/devices/heartbeat", 200)  # not an upload
    cloud.add("PUT", "/s3/parts/x/1/0", 503)  # refused
    poll_recovery(bench)
    assert end.recovered is None and end.resumed == 0 and end.time_to_recover_s is None
    cloud.add("PUT", "/s3/parts/x/1/1", 200)
    poll_recovery(bench)
    assert end.resumed == 1 and end.time_to_recover_s is not None and end.time_to_recover_s >= 0
    first = end.recovered
    cloud.add("PUT", "/s3/parts/x/2/1", 200)
    poll_recovery(bench)
    assert end.recovered == first and end.resumed == 2  # the first moment stays


def test_a_fault_that_ends_with_nothing_pending_is_not_watched(tmp_path: Path) -> None:
    cloud = JournalCloud()
    cloud.assets = [{"name": "A.JPG", "completed_at": 1.0}]
    bench = _bench(tmp_path, cloud, "A.JPG")
    with fault_ending(bench, "power cut"):
        pass
    cloud.add("PUT", "/s3/parts/x/1/0", 200)
    poll_recovery(bench)
    end = fault_ends(bench)[0]
    assert end.pending == [] and end.recovered is None


class CountingCloud(JournalCloud):
    """Records the `since` of every journal read, and how many rows each answer carried."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[int, int]] = []

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        rows = super().journal(since)
        self.reads.append((since, len(rows)))
        return rows


def test_the_scenario_journal_is_read_incrementally_and_whole_each_time(tmp_path: Path) -> None:
    cloud = CountingCloud()
    cloud.add("POST", "/v2/devices/heartbeat", 200)  # an earlier scenario's row
    bench = _bench(tmp_path, cloud)
    bench.state.journal_since = 1
    cloud.add("POST", "/v2/devices/assets", 201)
    cloud.add("PUT", "/s3/parts/x/1/1", 200)
    assert [r["id"] for r in bench.journal()] == [2, 3]
    first = bench.journal()
    first[0]["status"] = 999  # a caller's copy: the held rows stay as the cloud wrote them
    cloud.add("PUT", "/s3/parts/x/1/2", 200)
    rows = bench.journal()
    assert [r["id"] for r in rows] == [2, 3, 4] and rows[0]["status"] == 201
    # each read asked only for rows after the last one held, so no answer repeated a row
    assert [since for since, _ in cloud.reads] == [1, 3, 3]
    assert sum(n for _, n in cloud.reads) == 3


def test_recovery_reads_only_the_rows_after_what_the_scenario_holds(tmp_path: Path) -> None:
    cloud = CountingCloud()
    bench = _bench(tmp_path, cloud, "B.JPG")
    with fault_ending(bench, "link down"):
        pass
    end = fault_ends(bench)[0]
    for n in range(5):
        cloud.add("PUT", f"/s3/parts/x/1/{n}", 503)
        poll_recovery(bench)
    cloud.add("PUT", "/s3/parts/x/1/5", 200)
    poll_recovery(bench)
    assert end.resumed == 1 and end.recovered is not None
    assert sum(n for _, n in cloud.reads) == len(cloud.rows)  # each row crossed the wire once, not once a poll

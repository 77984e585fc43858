"""Continuous part pipelining through the real stack: the next file's parts fill the slots
a file no longer needs, so one-part files still go out `parallelism` at a time.

With one file fed at a time (`parallel_files=1`) the old uploader sent one-part files strictly
one after another (each file's create, PUT, complete, then the next); the cloud's journal now
shows several files' PUTs open at the same instant, never more than `parallelism`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.reference_device.conftest import sha256
from tests.reference_device.test_engine_e2e import make_engine, pair
from tests.waiting import wait_until

FILES = 8
SIZE = 300_000
RATE = 600_000  # bytes/s for all part bodies together: each PUT stays open a while


def most_open(spans: list[tuple[float, float]]) -> int:
    """Largest number of [start, end) spans open at one instant."""
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def test_one_part_files_overlap_up_to_parallelism(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path, parallel_files=1, parallelism=4, max_upload_rate=RATE)
    media = tmp_path / "media"
    for i in range(FILES):
        (media / f"clip{i}.bin").write_bytes(os.urandom(SIZE))
    engine.start()
    try:
        pair(engine, control)
        wait_until(lambda: engine.snapshot()["queue"]["completed"] == FILES, 60, f"{FILES} files uploaded")
        complete = {r["name"]: r for r in control.ledger() if r["state"] == "complete"}
        assert sorted(complete) == sorted(f"clip{i}.bin" for i in range(FILES))
        for name, row in complete.items():
            assert row["sha256"] == sha256(media / name), name
        puts = [j for j in control.journal() if j["method"] == "PUT" and j["status"] == 200]
        assert len(puts) == FILES  # one part each
        spans = [(float(j["started_at"]), float(j["started_at"]) + float(j["duration_ms"]) / 1000) for j in puts]
        overlap = most_open(spans)
        assert 3 <= overlap <= 4, f"{overlap} part PUTs open at once (one file fed at a time, 4 slots)"
    finally:
        engine.stop()

"""The workflow oracle on hand-built journal and ledger rows (issue #19 points 12, 13, 15)."""

from __future__ import annotations

import uuid

import pytest

from harness.bdd.measures import max_overlap, part_put_spans
from harness.bdd.steps.workflow_oracle_steps import finished_before, first_parts, outside_project
from harness.errors import BenchFailure


def put(asset: str, number: int, start: float, ms: float, *, rid: int = 0) -> dict[str, object]:
    return {"id": rid, "method": "PUT", "path": f"/s3/parts/{asset}/{number}/x?sig=1", "started_at": start,
            "duration_ms": ms, "t": start + ms / 1000}


def test_serial_part_puts_measure_one_even_when_files_overlap() -> None:
    """Point 13: two files in flight (create-to-complete spans overlap) but one part PUT at a
    time: the old span measure said 2, the part-PUT intervals say 1."""
    journal = [put("a", 1, 10.0, 500), put("b", 1, 10.5, 500), put("a", 2, 11.0, 500), put("b", 2, 11.5, 500)]
    asset_spans = [(9.9, 11.5), (10.4, 12.0)]  # what the old check measured
    assert max_overlap(asset_spans) == 2
    assert max_overlap([(a, b) for _, a, b in part_put_spans(journal)]) == 1


def test_parallel_part_puts_measure_two() -> None:
    journal = [put("a", 1, 10.0, 500), put("b", 1, 10.2, 500)]
    assert max_overlap([(a, b) for _, a, b in part_put_spans(journal)]) == 2


def test_first_part_order_not_asset_creation() -> None:
    """Point 15: assets created in priority order (jpg first) but parts sent FIFO (wav first):
    the wav had a part received before the jpg began, so the jpg was not uploaded first."""
    names = {"w": "A.wav", "j": "B.jpg"}
    journal = [put("w", 1, 10.0, 300), put("j", 1, 10.5, 300)]
    order = first_parts(journal, names)
    assert finished_before(order, "B.jpg", ["A.wav"]) == ["A.wav"]
    # parts that start together (a parallel device) are not out of order
    together = first_parts([put("w", 1, 10.0, 300), put("j", 1, 10.01, 300)], names)
    assert finished_before(together, "B.jpg", ["A.wav"]) == []


def test_project_none_is_never_accepted() -> None:
    """Point 12: the old check accepted assets without a project; the oracle must know."""
    with pytest.raises(BenchFailure):
        outside_project([{"name": "A.jpg", "project_id": None}], "p1")
    assert outside_project([{"name": "A.jpg", "project_id": "p2"}, {"name": "B.jpg", "project_id": "p1"}], "p1") == ["A.jpg"]


def test_files_at_once_counts_files_in_flight_together() -> None:
    from harness.bdd.steps.workflow_oracle_steps import files_at_once

    def put(asset: str, start: float, ms: float) -> dict[str, object]:
        return {"method": "PUT", "path": f"/s3/parts/{asset}/1/1", "status": 200, "started_at": start,
                "duration_ms": ms, "bytes_in": 10}

    a, b, c = (str(uuid.UUID(int=n)) for n in (1, 2, 3))
    names = {a: "A.jpg", b: "B.jpg", c: "C.jpg"}
    two_at_once = [put(a, 0.0, 1000), put(b, 0.5, 1000), put(c, 1.6, 100)]
    assert files_at_once(two_at_once, names) == 2
    assert files_at_once([put(a, 0.0, 100), put(b, 0.2, 100), put(c, 0.4, 100)], names) == 1

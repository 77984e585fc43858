"""The workflow oracle on hand-built journal and ledger rows (issue #19 points 12, 13, 15)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from harness.bdd.measures import max_overlap, part_put_spans
from harness.bdd.steps.workflow_oracle_steps import (
    files_at_once,
    finished_before,
    first_parts,
    judge_order,
    outside_project,
)
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
    def put(asset: str, start: float, ms: float) -> dict[str, object]:
        return {"method": "PUT", "path": f"/s3/parts/{asset}/1/1", "status": 200, "started_at": start,
                "duration_ms": ms, "bytes_in": 10}

    a, b, c = (str(uuid.UUID(int=n)) for n in (1, 2, 3))
    names = {a: "A.jpg", b: "B.jpg", c: "C.jpg"}
    two_at_once = [put(a, 0.0, 1000), put(b, 0.5, 1000), put(c, 1.6, 100)]
    assert files_at_once(two_at_once, names) == 2
    assert files_at_once([put(a, 0.0, 100), put(b, 0.2, 100), put(c, 0.4, 100)], names) == 1


def _fifo_journal(names: list[str], at_once: int, ms: float = 100) -> list[dict[str, object]]:
    """One part per file, `at_once` files on the wire, each claimed when a slot frees, in order."""
    slots = [0.0] * at_once
    journal = []
    for n, name in enumerate(names):
        i = min(range(at_once), key=lambda k: slots[k])
        start = slots[i] + 0.001
        journal.append(put(name, 1, start, ms, rid=n))
        slots[i] = start + ms / 1000
    return journal


@pytest.mark.parametrize("at_once", [1, 2, 3])
def test_a_device_ignoring_the_priority_fails_whatever_its_parallelism(at_once: int) -> None:
    """The CI miss: the excuse came from the whole scenario's parallelism with too few files, and a
    FIFO device passed. With eight files a FIFO device is caught at 1, 2 or 3 files at once."""
    files = [f"F{n}" for n in range(8)]
    journal = _fifo_journal(files, at_once)
    names = {f: f"{f}.jpg" for f in files}
    order = first_parts(journal, names)
    judged = judge_order(order, "F7.jpg", [f"F{n}.jpg" for n in range(7)], 1,
                         files_at_once(journal, names))
    assert judged.at_once == at_once
    assert judged.beyond, judged


def test_a_prioritising_device_is_excused_its_batch_mates() -> None:
    """The prioritised file claimed first with one other, whose small part is received before the
    prioritised file's first PUT begins on a loaded machine: excused (P - 1 = 1)."""
    files = [f"F{n}" for n in range(8)]
    journal = [put("F7", 1, 0.050, 100), put("F0", 1, 0.0, 20)]
    journal += [put(f"F{n}", 1, 0.2 + 0.1 * n, 100) for n in range(1, 7)]
    names = {f: f"{f}.jpg" for f in files}
    order = first_parts(journal, names)
    judged = judge_order(order, "F7.jpg", [f"F{n}.jpg" for n in range(7)], 1, files_at_once(journal, names))
    assert judged.early == ["F0.jpg"] and judged.excused == 1 and not judged.beyond


def test_a_batch_mate_first_on_a_serial_looking_journal_is_excused() -> None:
    """The matrix's plain-http run: the device claimed the prioritised file and one other, a
    plain-HTTP check before each create made them one at a time on the wire (the journal shows 1
    file at once), and the other went first. Still one racing batch-mate, not a FIFO queue."""
    files = [f"F{n}" for n in range(8)]
    journal = [put("F0", 1, 0.0, 29), put("F7", 1, 0.100, 9)]
    journal += [put(f"F{n}", 1, 0.15 + 0.07 * n, 15) for n in range(1, 7)]
    names = {f: f"{f}.jpg" for f in files}
    judged = judge_order(first_parts(journal, names), "F7.jpg", [f"F{n}.jpg" for n in range(7)], 1,
                         files_at_once(journal, names))
    assert judged.at_once == 1 and judged.early == ["F0.jpg"] and not judged.beyond


def test_too_few_files_for_the_parallelism_is_the_bench_saying_so() -> None:
    """Four files on a device working four at once: the order cannot be told; no pass, no fail."""
    order = {f"F{n}.jpg": (0.0, 0.1) for n in range(4)}
    with pytest.raises(BenchFailure, match="needs more files"):
        judge_order(order, "F3.jpg", ["F0.jpg", "F1.jpg", "F2.jpg"], 1, 4)


OPTIONS_FEATURE = Path(__file__).resolve().parents[3] / "features" / "options.feature"


def _captured(scenario: str, kind: str) -> int:
    """How many `kind` files the scenario titled `scenario` in options.feature captures."""
    text = OPTIONS_FEATURE.read_text(encoding="utf-8")
    block = text.split(f"Scenario: {scenario}\n", 1)[1].split("Scenario", 1)[0]
    found = re.search(rf'(\d+) "{kind}" files are captured', block)
    assert found, f"{scenario!r} captures no {kind} files"
    return int(found[1])


@pytest.mark.parametrize("at_once", range(1, 7))
def test_the_priority_scenarios_can_judge_a_device_working_up_to_six_files_at_once(at_once: int) -> None:
    """The matrix's fast-loses-queue run: the reference device worked 5 files at once, and 6 other
    files were too few to judge OPT-03 (a bench error, certified again). A faster device than ours
    must get a verdict: both scenarios capture enough files for one working 6 at once."""
    wav, jpg = _captured("Files of a prioritised type are uploaded first", "wav"), \
        _captured("Files of a prioritised type are uploaded first", "jpg")
    others = [f"W{n}.wav" for n in range(wav)]
    order = {name: (float(n), n + 0.5) for n, name in enumerate([*others, "J.jpg"])}
    assert judge_order(order, "J.jpg", others, jpg, at_once).beyond  # a FIFO device, caught
    files = [f"F{n}.jpg" for n in range(_captured("A reprioritised file is uploaded first", "jpg"))]
    order = {name: (float(n), n + 0.5) for n, name in enumerate(files)}
    assert judge_order(order, files[-1], files[:-1], 1, at_once).beyond

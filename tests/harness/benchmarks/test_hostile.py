"""Two cases of the malformed-answer campaign against the real reference device process:
a 50 MB answer on asset create and a captive portal on token refresh. The device must not
crash, fail the file, or pair again, and the file must arrive intact; the rows carry the
peak RSS per case (a figure for the report, not asserted here)."""

from __future__ import annotations

from pathlib import Path

from harness.benchmarks.hostile import CASES, campaign, rows, summary


def test_two_cases_leave_the_device_whole(tmp_path: Path) -> None:
    picked = tuple(c for c in CASES if c.name in ("create-huge-50MB", "refresh-html-200"))
    outcomes = campaign(picked, tmp_path)
    for outcome, case in zip(outcomes, picked, strict=True):
        assert outcome.garbled == case.count, outcome  # the device met every malformed answer
        assert not outcome.crashed and outcome.files_failed == 0 and not outcome.repaired, outcome
        assert outcome.intact, outcome
    report = summary(outcomes)
    assert report["crashes"] == 0 and report["repairs"] == 0 and not report["not_intact"]
    bench = rows(outcomes)
    assert [r["name"] for r in bench] == ["peak_rss_MB"] * 2
    assert [r["params"]["case"] for r in bench] == ["refresh-html-200", "create-huge-50MB"]  # type: ignore[index]
    assert all(isinstance(r["value"], float) and r["value"] > 0 for r in bench)

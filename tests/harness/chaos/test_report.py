"""Reports from a hand-made campaign: a row per schedule, a timeline only for failures, the
benchmarks' JSON shape, and exit codes that keep device and bench apart."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from harness.chaos.campaign import Campaign, CampaignConfig, Outcome
from harness.chaos.checker import check
from harness.chaos.history import CaptureRecord, FaultRecord, History
from harness.chaos.report import summary_table, write_reports
from harness.chaos.schedule import Capture, Schedule, Step
from harness.device.profile import load_profile

T0 = 2_000_000.0


def _outcome(index: int, delivered: bool, bench_error: str | None = None) -> Outcome:
    schedule = Schedule(seed=4, index=index, steps=(Step(at=0.0, capture=Capture(f"s4-{index:04d}-00.jpg")),
                                                     Step(at=0.5, fault="network:link-down", duration=1.0)))
    rows = [{"asset_id": "x", "name": f"s4-{index:04d}-00.jpg", "sha256": "a" * 64, "state": "complete",
             "completed_at": T0 + 3, "created_at": T0 + 1, "filesize": 10, "parts_expected": 1}] if delivered else []
    history = History(schedule=schedule.name, lane=1, started_at=T0, faults_end=T0 + 1.5, finished_at=T0 + 4,
                      captures=[CaptureRecord(f"s4-{index:04d}-00.jpg", "a" * 64, 10, T0)],
                      faults=[FaultRecord(1, "network:link-down", T0 + 0.5, T0 + 1.5, None)],
                      cloud_rows=rows, bench_error=bench_error)
    return Outcome(schedule, check(history, recovery=30), history, wall_s=4.0)


def _campaign(tmp_path: Path, outcomes: list[Outcome]) -> Campaign:
    cfg = CampaignConfig(profile=load_profile("reference"), seed=4, schedules=len(outcomes), out=tmp_path)
    return Campaign(config=cfg, outcomes=outcomes, wall_s=60.0)


def test_html_has_a_row_per_schedule_and_a_timeline_only_for_failures(tmp_path: Path) -> None:
    campaign = _campaign(tmp_path, [_outcome(0, True), _outcome(1, False), _outcome(2, True)])
    paths = write_reports(campaign, tmp_path)
    page = paths["html"].read_text()
    assert page.count('<tr class="') == 3 and page.count('<tr class="fail"') == 1
    assert page.count("<svg") == 1 and "network:link-down" in page
    data = json.loads(paths["json"].read_text())
    assert data["verdicts"] == {"pass": 2, "fail": 1, "inconclusive": 0, "error": 0}
    assert data["totals"]["lost"] == 1 and data["schedules_per_minute"] == 3.0
    bench = json.loads(paths["bench"].read_text())
    assert bench["benchmark"] == "chaos"
    assert {r["name"] for r in bench["results"]} >= {"schedules_per_minute", "campaign_wall"}
    assert all({"name", "value", "unit", "params"} <= set(r) for r in bench["results"])
    assert "s4-0001 fail: lost" in summary_table(campaign)


def test_exit_code_says_whether_the_device_or_the_bench_failed(tmp_path: Path) -> None:
    assert _campaign(tmp_path, [_outcome(0, True)]).exit_code() == 0
    assert _campaign(tmp_path, [_outcome(0, True), _outcome(1, False)]).exit_code() == 1
    assert _campaign(tmp_path, [_outcome(1, False), _outcome(2, False, bench_error="CloudError: gone")]).exit_code() == 2


def test_usage_errors_are_exit_code_2_without_starting_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.chaos.cli import main

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    assert main(["--device", "no-such-profile"]) == 2
    assert list(temp.iterdir()) == []  # no empty c2c-chaos-* folder left behind
    assert main(["--schedules", "3"]) == 2  # no --device
    assert main(["--device", "reference", "--schedules", "0", "--out", str(tmp_path)]) == 2
    assert main(["--device", "no-such-profile", "--out", str(tmp_path)]) == 2
    assert main(["--device", "reference", "--replay", str(tmp_path / "missing.json"), "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "lanes").exists()


def test_fault_stats_count_what_acted_and_how_close_aimed_cuts_landed(tmp_path: Path) -> None:
    schedule = Schedule(seed=4, index=9, steps=(
        Step(at=0.0, capture=Capture("s4-0009-01.jpg")),
        Step(at=0.0, fault="power:cycle", when="at-create"),
        Step(at=1.0, fault="power:cycle", when="mid-upload"),
        Step(at=2.0, fault="s3:slowdown x1", duration=0.5, until_hit=5.0)))
    history = History(schedule=schedule.name, lane=1, started_at=T0, faults_end=T0 + 4, finished_at=T0 + 6,
                      faults=[FaultRecord(1, "power:cycle", T0 + 2.04, T0 + 2.6, True, "40 ms after ...",
                                          aimed_at=T0 + 2.0, answered_at=T0 + 2.61),
                              FaultRecord(2, "power:cycle", T0 + 7, T0 + 7, False, "not applied"),
                              FaultRecord(3, "s3:slowdown x1", T0 + 2, T0 + 4, True,
                                          "1 hit(s), armed 1.5 s past its duration for its first hit")])
    outcome = Outcome(schedule, check(history, recovery=30), history, wall_s=6.0)
    stats = write_reports(_campaign(tmp_path, [outcome]), tmp_path)["json"]
    faults = json.loads(stats.read_text())["faults"]
    assert (faults["records"], faults["acted"], faults["never_acted"], faults["rules_held_for_first_hit"]) == (3, 2, 1, 1)
    assert faults["power_cuts"] == {"at-create": {"applied": 1, "acted": 1, "median_ms_after_arrival": 40,
                                                  "answer_held": 1},
                                    "mid-upload": {"applied": 1, "acted": 0}}
    assert "power cuts at-create 1/1 (40 ms after the request arrived, 1 with its answer held), mid-upload 0/1" in summary_table(
        _campaign(tmp_path, [outcome]))

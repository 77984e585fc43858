"""The campaign through the real stack: emulator and device processes, a Toxiproxy-compatible
link per lane, every fault through the vocabulary.

- a short seeded campaign passes for the reference device: nothing lost, duplicated, corrupt
  or leaked, no bench error, lanes rebuilt after --lane-runs schedules;
- a seeded defect (a connection error fails the file) is caught, shrunk to <= 3 faults, and
  `--replay` of the written schedule fails the same way;
- a fault that never acts (an S3 rule with no upload to hit) leaves the schedule
  inconclusive, never a pass, after one more attempt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.chaos.cli import main
from harness.chaos.schedule import Capture, Schedule, Step


def _report(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "campaign.json").read_text())
    return data


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_short_campaign_passes_for_the_reference_device(tmp_path: Path) -> None:
    out = tmp_path / "chaos"
    code = main(["--device", "reference", "--schedules", "20", "--seed", "1", "--duration", "3",
                 "--workers", "2", "--out", str(out), "--quiet", "--lane-runs", "8"])
    report = _report(out)
    problems = [(o["name"], o["verdict"]["outcome"], o["verdict"]["problems"], o["verdict"]["error"])
                for o in report["outcomes"] if o["verdict"]["outcome"] in ("fail", "error")]
    assert code == 0, problems
    assert len(report["outcomes"]) == 20
    totals = report["totals"]
    assert all(totals.get(k, 0) == 0 for k in ("lost", "duplicated", "corrupt", "leaked", "unexpected")), totals
    # faults drawn with their traffic act: 20 of 20 passed here (13 before, 7 inconclusive)
    assert report["verdicts"]["pass"] >= 17, report["verdicts"]
    fired = sum(1 for o in report["outcomes"] for f in o["history"]["faults"] if f["fired"] is not False)
    assert fired >= 30
    assert (out / "index.html").read_text().count("<tr class=") == 20
    assert not (out / "lanes").exists()  # scratch (device state, cloud data with its keys) removed
    assert len(report["lane_setup_s"]) >= 3  # each lane is rebuilt after 8 runs: its cloud stays small


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_seeded_defect_is_caught_shrunk_and_replayed(tmp_path: Path) -> None:
    out = tmp_path / "campaign"
    device = "mutant:gives-up-on-network-errors"
    code = main(["--device", device, "--schedules", "1", "--seed", "19", "--duration", "3", "--workers", "1",
                 "--out", str(out), "--quiet", "--shrink-tries", "6"])
    assert code == 1
    [outcome] = _report(out)["outcomes"]
    assert outcome["verdict"]["outcome"] == "fail"
    categories = set(outcome["verdict"]["categories"])
    shrunk = outcome["shrunk"]
    assert shrunk["faults"] <= 3, shrunk["log"]
    assert shrunk["replay"]["outcome"] == "fail" and categories & set(shrunk["replay"]["categories"]), shrunk
    written = Path(shrunk["written"])
    assert Schedule.read(written).faults == Schedule.from_dict(shrunk["schedule"]).faults

    replay_out = tmp_path / "replay"
    assert main(["--device", device, "--replay", str(written), "--out", str(replay_out), "--quiet"]) == 1
    [replayed] = _report(replay_out)["outcomes"]
    assert replayed["verdict"]["outcome"] == "fail"
    assert categories & set(replayed["verdict"]["categories"])
    assert replayed["schedule"]["steps"] == shrunk["schedule"]["steps"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_fault_that_never_acts_is_inconclusive_not_a_pass(tmp_path: Path) -> None:
    idle = Schedule(seed=0, index=0, recovery=10.0, steps=(
        Step(at=0.2, fault="s3:slowdown x1", duration=1.0),  # nothing is uploading: no S3 request to hit
        Step(at=1.5, capture=Capture("s0-0000-01.jpg")),
    ))
    path = idle.write(tmp_path / "idle.json")
    assert main(["--device", "reference", "--replay", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    [outcome] = _report(tmp_path / "r")["outcomes"]
    assert outcome["verdict"]["outcome"] == "inconclusive"
    assert outcome["verdict"]["unfired"] == ["s3:slowdown x1 (0 hit(s))"]
    assert outcome["verdict"]["counts"]["intact"] == 1
    # run again once (the condition may come with other timing), then said, not passed
    assert outcome["attempts"] == 2
    assert [e["outcome"] for e in outcome["earlier"]] == ["inconclusive"]

"""Aimed faults through the real stack (reference device process, emulator, link):

- an S3 rule whose request comes after its duration stays armed until it is hit, so the
  schedule tests what it says (pass, not inconclusive), and the record says how much longer;
- a power cut aimed at a create lands while the cloud holds the answer to one, one aimed at a
  refresh while it holds the answer to a token refresh that an expiry forced: the journal
  shows each request arrived before the cut and its answer went only after it, and the files
  all arrive once (nothing lost, duplicated or corrupt).
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from harness.chaos.cli import main
from harness.chaos.schedule import Capture, Schedule, Step
from harness.cloud.paths import ASSET_CREATE_PATH, TOKEN_RULE


def _outcome(out: Path) -> dict[str, Any]:
    [outcome] = json.loads((out / "campaign.json").read_text())["outcomes"]
    assert isinstance(outcome, dict)
    return outcome


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rules_wait_for_their_hit_and_cuts_land_at_a_create_and_a_refresh(tmp_path: Path) -> None:
    aimed = Schedule(seed=0, index=1, recovery=40.0, steps=(
        # the capture is handed over after the device's 2 s quiet period: past the rule's 0.5 s
        Step(at=0.2, capture=Capture("s0-0001-01.jpg")),
        Step(at=0.2, fault="s3:slowdown x1", duration=0.5, until_hit=6.0),
        Step(at=4.0, capture=Capture("s0-0001-02.jpg")),
        Step(at=4.0, fault="power:cycle off_time=0.3", when="at-create"),
        Step(at=10.0, capture=Capture("s0-0001-03.jpg")),
        Step(at=10.0, fault="auth:expire-tokens"),
        Step(at=10.0, fault="power:cycle off_time=0.3", when="at-refresh"),
    ))
    path = aimed.write(tmp_path / "aimed.json")
    out = tmp_path / "r"
    assert main(["--device", "reference", "--replay", str(path), "--out", str(out), "--quiet",
                 "--retry-inconclusive", "0", "--keep-lanes"]) == 0
    outcome = _outcome(out)
    verdict, faults = outcome["verdict"], outcome["history"]["faults"]
    assert verdict["outcome"] == "pass", (verdict, faults)
    assert verdict["counts"]["intact"] == 3, verdict["counts"]
    [rule] = [f for f in faults if f["fault"].startswith("s3:")]
    create_cut, refresh_cut = [f for f in faults if f["fault"].startswith("power:")]
    assert rule["fault"] == "s3:slowdown x1" and rule["fired"] is True
    assert "past its duration for its first hit" in rule["note"], rule
    assert rule["stopped_at"] - rule["started_at"] > 1.0  # held beyond the 0.5 s asked for
    assert create_cut["fired"] is True and "after a create reached the cloud, its answer held" in create_cut["note"]
    assert refresh_cut["fired"] is True and "after a token refresh reached the cloud" in refresh_cut["note"]
    for cut in (create_cut, refresh_cut):
        # arrived, then the cut (power off, on again), then the answer: none reached the device before
        assert cut["aimed_at"] < cut["started_at"] < cut["stopped_at"] <= cut["answered_at"], cut
    # the cloud's own journal (kept with --keep-lanes): each request the cuts aimed at reached the
    # emulator before the cut began and was answered only after the device was back on
    with sqlite3.connect(out / "lanes" / "cloud" / "state.sqlite3") as db:
        journal = db.execute("SELECT method, path, started_at, t FROM journal ORDER BY id").fetchall()
    for cut, path in ((create_cut, ASSET_CREATE_PATH), (refresh_cut, TOKEN_RULE)):
        [(arrived, answered)] = [(start, t) for method, p, start, t in journal
                                 if method == "POST" and re.search(path, p.split("?")[0]) and start <= cut["aimed_at"] <= t]
        assert arrived < cut["started_at"] and answered >= cut["stopped_at"], (cut, arrived, answered)

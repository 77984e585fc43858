"""C2C-OPT-06: a file that completes after the cancel fails the device only if the cancel left
it parts to stop; when every part was already on the wire, the bench did not create its condition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.bdd.bench import Bench, ScenarioState, SessionBench
from harness.bdd.steps.transfer_oracle_steps import (
    _require_parts_left_at_cancel,
    parts_started_before,
)
from harness.errors import BenchFailure
from harness.timeline import Timeline


def _put(asset: str, number: int, started: float) -> dict[str, Any]:
    return {"method": "PUT", "path": f"/s3/parts/{asset}/{number}/1?sig=x", "status": 200, "started_at": started}


class Cloud:
    def __init__(self, journal: list[dict[str, Any]], parts: int) -> None:
        self.rows = journal
        self.parts = parts

    def ledger(self, device_id: str | None = None) -> list[dict[str, Any]]:
        return [{"asset_id": "a1", "name": "BIG.bin", "parts_expected": self.parts}]

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        return self.rows


def _bench(tmp_path: Path, cloud: Cloud, cancelled: float) -> Bench:
    session = SessionBench(profile=None, workdir=tmp_path, seed=1, prompt=None,  # type: ignore[arg-type]
                           timeline=Timeline(), checklist=None, _cloud=cloud)  # type: ignore[arg-type]
    state = ScenarioState()
    state.cancelled_cloud_t = cancelled
    return Bench(session, state)


def test_parts_started_before_the_cancel_by_asset() -> None:
    rows = [_put("a1", 1, 10.0), _put("a1", 2, 10.5), _put("a1", 3, 12.0), _put("b2", 1, 9.0),
            {"method": "POST", "path": "/v2/devices/assets", "started_at": 1.0}]
    assert parts_started_before(rows, {"a1"}, 11.0) == {"a1": {1, 2}}


def test_every_part_on_the_wire_before_the_cancel_is_the_benchs_condition(tmp_path: Path) -> None:
    bench = _bench(tmp_path, Cloud([_put("a1", n, 10.0 + n / 10) for n in (1, 2, 3)], parts=3), cancelled=11.0)
    with pytest.raises(BenchFailure, match=r"every part of \['BIG.bin'\] was on the wire before the cancel"):
        _require_parts_left_at_cancel(bench, ["BIG.bin"])


def test_a_part_started_after_the_cancel_leaves_the_fail_to_the_device(tmp_path: Path) -> None:
    bench = _bench(tmp_path, Cloud([_put("a1", 1, 10.0), _put("a1", 2, 10.2), _put("a1", 3, 15.0)], parts=3),
                   cancelled=11.0)
    _require_parts_left_at_cancel(bench, ["BIG.bin"])  # no bench error: the device's fail stands

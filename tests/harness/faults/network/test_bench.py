"""The faults benchmark writes the shared report shape (values are never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.benchmarks.faults import TARGET_MBPS, run


def test_bench_report_shape(tmp_path: Path) -> None:
    report = run(tmp_path, seconds=0.3)
    written = json.loads((tmp_path / "faults.json").read_text())
    assert written == report
    assert report["benchmark"] == "faults"
    by_name = {r["name"]: r for r in report["results"]}
    assert set(by_name) == {"proxy_MBps", "direct_MBps"}
    for item in by_name.values():
        assert set(item) == {"name", "value", "unit", "params"}
        assert item["unit"] == "MB/s" and item["value"] > 0
    assert by_name["proxy_MBps"]["params"]["target_MBps"] == TARGET_MBPS

"""The device benchmark end to end on a small file (shape and delivery, never speed)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from harness.benchmarks import device as device_bench
from harness.benchmarks import vm_hwm
from harness.benchmarks.device import make_file, run


def test_make_file_is_sparse_and_hashed(tmp_path: Path) -> None:
    path = tmp_path / "f.mxf"
    size = 3 * 1024 * 1024 + 17
    digest = make_file(path, size)
    assert path.stat().st_size == size
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_md5_floor_is_a_cpu_cost_per_gigabyte() -> None:
    # hashing 16 MiB takes some CPU; per GB it is seconds, not micro- or kiloseconds
    assert 0.05 < device_bench.md5_cpu_s_per_gb(16) < 60


def test_vm_hwm_reads_a_live_process() -> None:
    assert vm_hwm(os.getpid()) > 1024 * 1024
    assert vm_hwm(2**22 + 12345) == 0  # no such pid


def test_run_writes_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the hostile-path campaign has its own real-stack test (test_hostile.py); here only its
    # rows' place in device.json: after the 2 GB file's, told apart by params.case
    hostile_row = {"name": "peak_rss_MB", "value": 60.0, "unit": "MB", "params": {"case": "baseline"}}
    monkeypatch.setattr(device_bench.hostile, "results", lambda: [hostile_row])
    report = run(tmp_path, file_gb=0.02, parallelism=2, timeout=120, sink_file_gb=0.03)
    on_disk = json.loads((tmp_path / "device.json").read_text())
    assert on_disk == report and report["benchmark"] == "device"
    assert report["results"][-1] == hostile_row
    # the device alone against the null sink: its own rows, told apart by params.transport
    to_sink = {r["name"]: r for r in report["results"] if "null sink" in r["params"].get("transport", "")}
    assert set(to_sink) == {"device_to_sink_MBps", "peak_rss_MB"}
    assert to_sink["device_to_sink_MBps"]["value"] > 0
    assert to_sink["device_to_sink_MBps"]["params"]["sink_cpu_s_per_GB"] > 0  # the bytes went there
    assert to_sink["device_to_sink_MBps"]["params"]["md5_cpu_s_per_GB"] > 0  # the ETag check's floor
    assert to_sink["peak_rss_MB"]["params"]["file_GB"] == 0.03
    by_name = {r["name"]: r for r in report["results"] if "case" not in r["params"]
               and "null sink" not in r["params"].get("transport", "")}
    assert set(by_name) >= {"throughput_MBps", "raw_put_MBps", "peak_rss_MB"}
    for name in ("throughput_MBps", "raw_put_MBps", "peak_rss_MB"):
        assert by_name[name]["value"] > 0
        assert set(by_name[name]) == {"name", "value", "unit", "params"}
    assert by_name["peak_rss_MB"]["params"]["file_GB"] == 0.02
    assert "meets_target" in by_name["peak_rss_MB"]["params"]
    assert by_name["throughput_MBps"]["params"]["parts"] >= 1

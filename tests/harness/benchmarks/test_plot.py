"""The summary and the page: ratios computed from the reports a run wrote, never measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.benchmarks import result, write_report
from harness.benchmarks.plot import load_results, render_html, run, summarize


def _reports(out: Path) -> None:
    write_report(out, "limit", [result("limit_MBps", 400.0, "MB/s", streams=1),
                                result("limit_MBps", 800.0, "MB/s", streams=4)])
    write_report(out, "cloud", [result("ingest_MBps", 100.0, "MB/s", clients=1),
                                result("ingest_MBps", 500.0, "MB/s", clients=8),
                                result("ingest_MBps", 300.0, "MB/s", clients=32),
                                result("create_p99_ms", 12.5, "ms", clients=32)])
    write_report(out, "device", [result("throughput_MBps", 640.0, "MB/s"),
                                 result("raw_put_MBps", 700.0, "MB/s"),
                                 result("device_to_sink_MBps", 600.0, "MB/s", file_GB=20)])
    write_report(out, "peers", [
        result("throughput_MBps", 90.0, "MB/s", rtt_ms=50, peer="reference_device"),
        result("peer_MBps", 30.0, "MB/s", rtt_ms=50, peer="frameioclient"),
        result("peer_MBps", 60.0, "MB/s", rtt_ms=50, peer="httpx-naive"),
    ])
    write_report(out, "shaped", [result("throughput_MBps", 0.9, "MB/s", profile="hotspot",
                                        shaped_MBps=1.0, vs_shaped=0.9, rtt_ms=60)])


def test_summary_ratios_follow_the_reports(tmp_path: Path) -> None:
    _reports(tmp_path)
    summary = {(r["name"], r["params"].get("clients"), r["params"].get("rtt_ms"),
                r["params"].get("profile")): r for r in summarize(load_results(tmp_path))}
    one = summary[("ingest_vs_limit", 1, None, None)]
    assert one["value"] == pytest.approx(0.25) and "meets_target" not in one["params"]
    eight = summary[("ingest_vs_limit", 8, None, None)]
    assert eight["value"] == pytest.approx(0.625) and eight["params"]["meets_target"] is True
    assert summary[("ingest_vs_limit", 32, None, None)]["params"]["meets_target"] is False
    assert summary[("create_p99_ms", None, None, None)]["params"]["meets_target"] is True
    device = summary[("device_vs_limit", None, None, None)]
    assert device["value"] == pytest.approx(0.8) and device["params"]["meets_target"] is True
    alone = summary[("device_to_sink_vs_limit", None, None, None)]
    assert alone["value"] == pytest.approx(0.75) and alone["params"]["meets_target"] is False
    frameio = summary[("device_vs_frameioclient", None, 50, None)]
    assert frameio["value"] == pytest.approx(3.0) and frameio["params"]["meets_target"] is True
    assert summary[("device_vs_httpx-naive", None, 50, None)]["value"] == pytest.approx(1.5)
    assert summary[("device_vs_shaped", None, None, "hotspot")]["params"]["meets_target"] is False


def test_missing_reports_give_no_ratio(tmp_path: Path) -> None:
    write_report(tmp_path, "cloud", [result("ingest_MBps", 100.0, "MB/s", clients=8)])
    assert summarize(load_results(tmp_path)) == []


def test_run_writes_summary_and_a_page_with_every_link(tmp_path: Path) -> None:
    _reports(tmp_path)
    report = run(tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text()) == report
    page = (tmp_path / "throughput.html").read_text()
    assert page.count("<svg") == 1
    for label in ("loopback x1", "loopback x4", "50 ms RTT", "hotspot"):
        assert label in page
    assert "frameioclient: 30 MB/s" in page and "limit: 800 MB/s" in page
    # the summary is not read back as a benchmark of its own
    assert "summary" not in load_results(tmp_path)
    assert render_html(load_results(tmp_path), []).count("<rect") > 5

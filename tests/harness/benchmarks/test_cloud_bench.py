"""The cloud benchmark's machinery, at toy size: real emulator process, real TLS, real workers.

Only the report's shape and bookkeeping are checked here; the speed targets are never
asserted (they belong to `make bench`, on whatever load the machine has).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.benchmarks import __main__ as bench_main
from harness.benchmarks import machine_params, result, write_report
from harness.benchmarks.cloud import (
    MIB,
    TARGET_CREATE_P99_MS,
    TARGET_INGEST_MBPS,
    CloudBenchConfig,
    _part_slices,
    _percentile,
    measure_create_latency,
    measure_ingest,
    served_create_ms,
)

TOY = CloudBenchConfig(clients=(2,), duration=0.6, file_size=MIB + 1, latency_clients=3,
                       latency_duration=0.6, max_processes=2)


def test_part_slices_follow_the_documented_chunking() -> None:
    # c2c-api.md §5.1 worked example: 21,136,250 B in 2 parts of 10,568,125 B.
    assert _part_slices(21_136_250, 2) == [(0, 10_568_125), (10_568_125, 21_136_250)]
    assert _part_slices(10, 3) == [(0, 4), (4, 8), (8, 10)]


def test_percentile_is_nearest_rank() -> None:
    samples = [float(x) for x in range(1, 101)]
    assert _percentile(samples, 0.50) == 50.0
    assert _percentile(samples, 0.99) == 99.0
    assert _percentile([7.0], 0.99) == 7.0


def test_report_shape_is_written_atomically(tmp_path: Path) -> None:
    report = write_report(tmp_path, "toy", [result("x_MBps", 1.5, "MB/s", clients=1)])
    on_disk = json.loads((tmp_path / "toy.json").read_text())
    assert on_disk == report == {
        "benchmark": "toy",
        "results": [{"name": "x_MBps", "value": 1.5, "unit": "MB/s", "params": {"clients": 1}}],
    }
    assert not list(tmp_path.glob("*.tmp"))
    assert set(machine_params()) == {"cpus", "loadavg_1m", "cpu_pressure_avg10"}
    pressure = machine_params()["cpu_pressure_avg10"]
    if Path("/proc/pressure/cpu").exists():
        assert isinstance(pressure, float) and 0.0 <= pressure <= 100.0
    else:
        assert pressure is None


def test_ingest_point_moves_real_bytes_through_the_emulator() -> None:
    item = measure_ingest(2, TOY)
    params = item["params"]
    assert item["name"] == "ingest_MBps" and item["unit"] == "MB/s"
    assert params["clients"] == 2 and params["processes"] == 2
    assert params["errors"] == 0, params["first_error"]
    # Whole files only: every counted byte belongs to a completely uploaded asset's parts.
    assert params["bytes"] >= TOY.file_size and params["bytes"] % TOY.file_size == 0
    assert item["value"] == pytest.approx(params["bytes"] / 1e6 / params["duration_s"], rel=0.02)
    assert params["target_MBps"] == TARGET_INGEST_MBPS
    assert params["meets_target"] is (item["value"] >= TARGET_INGEST_MBPS)
    assert 0 < params["create_p50_ms_while_uploading"] <= params["create_max_ms_while_uploading"]


def test_create_latency_reports_p50_and_p99() -> None:
    p50, p99 = measure_create_latency(TOY)
    assert (p50["name"], p99["name"]) == ("create_p50_ms", "create_p99_ms")
    assert 0 < p50["value"] <= p99["value"]
    assert p99["params"]["clients"] == 3 and p99["params"]["samples"] >= 3
    assert p99["params"]["mode"] == "closed loop (saturating)"
    assert p99["params"]["errors"] == 0, p99["params"]["first_error"]
    assert p99["params"]["target_p99_ms"] == TARGET_CREATE_P99_MS
    assert p99["params"]["meets_target"] is (p99["value"] < TARGET_CREATE_P99_MS)
    # the load-independent figure beside the latency: the emulator's own CPU per create
    assert 0 < p99["params"]["emulator_cpu_ms_per_create"] < 1000
    assert 0 < p99["params"]["emulator_cores_used"] <= 2.5
    # what that CPU means for a closed loop on one event loop (Little's law)
    assert abs(p99["params"]["one_core_mean_ms"]
               - 3 * p99["params"]["emulator_cpu_ms_per_create"]) < 0.01
    assert p99["params"]["cpu_ms_per_create_for_target_mean"] == round(TARGET_CREATE_P99_MS / 3, 3)
    # the emulator's own share of a create, from its journal, for as many creates as sampled
    assert 0 < p99["params"]["served_p50_ms"] <= p99["params"]["served_p99_ms"]


def test_paced_latency_run_keeps_its_rate() -> None:
    config = CloudBenchConfig(latency_clients=2, latency_duration=1.0, paced_rate=5.0, max_processes=2)
    p50, p99 = measure_create_latency(config, paced=True)
    assert (p50["name"], p99["name"]) == ("create_paced_p50_ms", "create_paced_p99_ms")
    assert p99["params"]["mode"] == "paced 5/s per client"
    # 2 clients x 5/s x 1 s: about 10 creates, never the hundreds of a closed loop.
    assert 4 <= p99["params"]["samples"] <= 10, p99["params"]
    assert "one_core_mean_ms" not in p99["params"]  # a paced loop is not saturated


def test_main_skips_missing_benchmarks_and_reports_broken_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[str] = []

    def fake_run_one(name: str, out_dir: Path) -> dict[str, Any] | None:
        calls.append(name)
        if name == "device":
            return None  # what run_one answers when harness.benchmarks.device is absent
        if name == "faults":
            raise RuntimeError("proxy port taken")
        return write_report(out_dir, name, [result("ingest_MBps", 1.0, "MB/s", clients=1, meets_target=False)])

    monkeypatch.setattr(bench_main, "run_one", fake_run_one)
    assert bench_main.main(["all", "--out", str(tmp_path)]) == 1
    assert calls == list(bench_main.BENCHMARKS)
    assert calls[0] == "limit" and calls[-1] == "plot"  # the bound first, the page last
    captured = capsys.readouterr()
    assert "ingest_MBps [clients=1]: 1.0 MB/s (below target)" in captured.out
    assert "benchmark faults failed: RuntimeError: proxy port taken" in captured.err
    assert (tmp_path / "cloud.json").exists()


def test_run_one_skips_a_module_that_does_not_exist(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench_main, "_available", lambda name: False)
    assert bench_main.run_one("device", tmp_path) is None
    assert "skipping device: harness.benchmarks.device is not available" in capsys.readouterr().out


def test_unknown_subcommand_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        bench_main.main(["everything"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_errors_in_the_report_never_carry_url_signatures() -> None:
    from harness.benchmarks.rawclient import _describe

    url = "https://127.0.0.1:1/s3/parts/k?X-Amz-Credential=a&X-Amz-Signature=deadbeef"
    text = _describe(RuntimeError(f"Client error '403 Forbidden' for url '{url}'"))
    assert "deadbeef" not in text and "X-Amz" not in text
    assert text.startswith("RuntimeError: Client error '403 Forbidden'") and "/s3/parts/k?[redacted]" in text


def test_raw_client_speaks_keep_alive_https_and_reports_refusals(tmp_path: Path) -> None:
    from urllib.parse import urlsplit

    from harness.benchmarks.cloud import _emulator
    from harness.benchmarks.rawclient import _Connection, _head, _HttpError, _tls_context

    with _emulator(tmp_path) as emulator:
        url = urlsplit(emulator.api_url)
        conn = _Connection(url.hostname or "", url.port or 443, _tls_context(str(emulator.ca_bundle)))
        try:
            health = _head("GET", "/health", url.netloc, 0, {"x-client-version": "1.0.0"})
            assert json.loads(conn.request(health)) == {"ok": True}
            first = conn.sock
            body = b'{"name": "a.bin", "filetype": "application/octet-stream", "filesize": 1}'
            create = _head("POST", "/v2/devices/assets", url.netloc, len(body),
                           {"authorization": "Bearer not-a-token", "content-type": "application/json"})
            with pytest.raises(_HttpError, match="HTTP 401"):
                conn.request(create, body)
            assert json.loads(conn.request(health)) == {"ok": True}
            assert conn.sock is first  # the refusal did not cost the connection
        finally:
            conn.close()


class TwoRowPages:
    """The control API's journal paging (rows after `since`, a page at a time), two per page."""

    def __init__(self, rows: list[dict[str, object]]) -> None:
        self.rows = rows

    def journal(self, since: int = 0) -> list[dict[str, object]]:
        return [r for r in self.rows if int(str(r["id"])) > since][:2]


def test_served_create_ms_reads_every_page_and_keeps_the_last_creates() -> None:
    def row(ident: int, method: str, path: str, at: float, ms: float) -> dict[str, object]:
        return {"id": ident, "method": method, "path": path, "started_at": at, "duration_ms": ms}

    journal = TwoRowPages([
        row(1, "POST", "/v2/devices/assets", 1.0, 9.0),
        row(2, "GET", "/v2/devices/me", 1.1, 50.0),
        row(3, "POST", "/v2/devices/assets", 2.0, 3.0),
        row(4, "POST", "/v2/devices/assets/abc/realtime_upload/parts", 2.5, 70.0),
        row(5, "POST", "/v2/devices/assets?x=1", 3.0, 4.0),
        row(6, "POST", "/v2/devices/assets", 2.9, 5.0),  # started before row 5 was
    ])
    assert served_create_ms(journal, 2) == [5.0, 4.0]
    assert served_create_ms(journal, 10) == [9.0, 3.0, 5.0, 4.0]
    assert served_create_ms(journal, 0) == []


def test_warmup_creates_run_but_are_not_sampled(tmp_path: Path) -> None:
    from harness.benchmarks.cloud import _emulator, _run_load

    with _emulator(tmp_path) as emulator:
        load = _run_load(emulator, 2, MIB, 0.5, False, 1, warmup=0.4)
    assert load["errors"] == 0, load["first_error"]
    assert 0 < len(load["latencies"]) < load["assets"]  # warm-up creates happened, uncounted
    assert load["elapsed"] == pytest.approx(0.5, abs=0.01)  # rates divide by the measured window

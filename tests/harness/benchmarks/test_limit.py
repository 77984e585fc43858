"""The null TLS sink: the emulator's certificate, whole bodies read, keep-alive answers."""

from __future__ import annotations

import ssl
from pathlib import Path

from harness.benchmarks.limit import LimitConfig, measure, measure_limit, null_sink
from harness.benchmarks.rawclient import _Connection, _head
from harness.cloud.ca import ensure_certs


def test_sink_reads_each_body_whole_and_keeps_the_connection(tmp_path: Path) -> None:
    certs = ensure_certs(tmp_path)
    with null_sink(certs) as sink:
        port = sink.port
        conn = _Connection("127.0.0.1", port, ssl.create_default_context(cafile=str(certs.ca_cert)))
        for size in (1, 3 * 1024 * 1024 + 5, 70_000):
            head = _head("PUT", "/x", f"127.0.0.1:{port}", size, {})
            assert conn.request(head, b"\x01" * size) == b""  # 200, empty, same connection
        assert conn.sock is not None
        conn.close()
        rate, moved = measure_limit(certs, port, 2, LimitConfig(duration=0.3, part_size=1 << 20))
        assert rate > 0 and moved >= 1 << 20 and moved % (1 << 20) == 0  # whole PUTs only


def test_limit_report_names_streams_and_tls(tmp_path: Path) -> None:
    items = measure(LimitConfig(streams=(1, 2), duration=0.3, part_size=1 << 20), tmp_path)
    assert [i["name"] for i in items] == ["limit_MBps", "limit_MBps"]
    assert [i["params"]["streams"] for i in items] == [1, 2]
    assert all(i["value"] > 0 and i["unit"] == "MB/s" for i in items)
    assert items[0]["params"]["tls"].startswith("TLSv1.")
    assert all(i["params"]["sink_cpu_s_per_GB"] > 0 for i in items)
    # the emulator's own certificate (same data dir) is what the sink served
    assert (tmp_path / "ca").is_dir()

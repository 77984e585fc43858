"""Upload rate over the union of the part PUTs' active intervals (C2C-NETW-01)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.certify.throughput import (
    Interval,
    UploadRate,
    interval_rate,
    part_upload_rate,
    union_length,
)
from harness.errors import BenchFailure

ASSET = "0b7c6a3e-1f2d-4c5b-9a8e-7d6c5b4a3f21"


def put_row(start: float, duration_ms: float | None, nbytes: int, *, status: int = 200,
            number: int = 1, row_id: int = 1, path: str | None = None) -> dict[str, Any]:
    return {"id": row_id, "t": start + (duration_ms or 0) / 1000, "method": "PUT",
            "path": path or f"/s3/parts/{ASSET}/{number}/1?X-Amz-Signature=%5Bredacted%5D",
            "status": status, "bytes_in": nbytes, "started_at": start, "duration_ms": duration_ms}


def test_overlapping_intervals_count_once() -> None:
    # [0, 2] and [1, 3] overlap: busy 3 s, not 4 s; [2.5, 2.7] lies inside the union.
    spans = [Interval(0.0, 2.0, 1_000_000), Interval(1.0, 2.0, 1_000_000),
             Interval(2.5, 0.2, 500_000)]
    assert union_length(spans) == pytest.approx(3.0)
    rate = interval_rate(spans)
    assert rate.busy_s == pytest.approx(3.0) and rate.span_s == pytest.approx(3.0)
    assert rate.mbps == pytest.approx(2_500_000 * 8 / 1e6 / 3.0)


def test_disjoint_intervals_skip_the_idle_gap() -> None:
    # Two files 100 s apart: the gap between them is the device waiting, not uploading.
    spans = [Interval(1000.0, 1.0, 6_250_000), Interval(1100.0, 1.0, 6_250_000)]
    rate = interval_rate(spans)
    assert rate.busy_s == pytest.approx(2.0)
    assert rate.span_s == pytest.approx(101.0)
    assert rate.mbps == pytest.approx(50.0)


def test_touching_and_unsorted_intervals_merge() -> None:
    spans = [Interval(5.0, 1.0), Interval(3.0, 2.0), Interval(0.0, 1.0)]
    assert union_length(spans) == pytest.approx(4.0)


def test_empty_journal_gives_zero_not_an_error() -> None:
    assert union_length([]) == 0.0
    assert interval_rate([]) == UploadRate(nbytes=0, busy_s=0.0, span_s=0.0, parts=0)
    assert part_upload_rate([]).mbps == 0.0


def test_zero_duration_has_no_busy_time_and_no_infinite_rate() -> None:
    rate = interval_rate([Interval(10.0, 0.0, 1000)])
    assert rate.busy_s == 0.0 and rate.mbps == 0.0 and rate.parts == 1
    # A zero-length PUT inside a real one adds its bytes, not time.
    rate = interval_rate([Interval(10.0, 1.0, 125_000), Interval(10.5, 0.0, 125_000)])
    assert rate.busy_s == pytest.approx(1.0) and rate.mbps == pytest.approx(2.0)


def test_part_rate_from_journal_rows() -> None:
    rows = [
        put_row(100.0, 2000.0, 6_250_000, number=1, row_id=1),
        put_row(101.0, 2000.0, 6_250_000, number=2, row_id=2),
        # refused PUT: its time counts (the device spent it), its bytes do not
        put_row(103.0, 1000.0, 4_000_000, status=403, number=3, row_id=3),
        # not part PUTs: API calls and control traffic are ignored whatever their timing
        {"id": 4, "method": "POST", "path": "/v2/devices/assets", "status": 201,
         "bytes_in": 999_999, "started_at": 90.0, "duration_ms": 50_000.0},
        {"id": 5, "method": "PUT", "path": "/v2/devices/assets/x", "status": 200,
         "bytes_in": 999_999, "started_at": 90.0, "duration_ms": 50_000.0},
    ]
    rate = part_upload_rate(rows)
    assert rate.nbytes == 12_500_000 and rate.parts == 2
    assert rate.busy_s == pytest.approx(4.0)
    assert rate.mbps == pytest.approx(25.0)
    assert "12500000 bytes in 2 accepted part PUTs over 4.000 s" in rate.describe()


def test_rows_without_timing_are_a_bench_failure_naming_the_row() -> None:
    rows = [put_row(1.0, 100.0, 10, row_id=7), put_row(2.0, None, 10, row_id=8)]
    with pytest.raises(BenchFailure, match=r"journal row 8 .*started_at/duration_ms"):
        part_upload_rate(rows)

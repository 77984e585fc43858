from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.certify.plot import throughput_series, throughput_svg

T0 = 1_700_000_000.0


def test_series_buckets_bytes_into_mbps() -> None:
    journal = [{"t": T0, "bytes_in": 1_000_000}, {"t": T0 + 0.5, "bytes_in": 250_000}, {"t": T0 + 2.2, "bytes_in": 125_000}]
    series = throughput_series(journal)
    assert [round(v, 3) for _, v in series] == [10.0, 0.0, 1.0]


def test_svg_is_valid_and_shades_fault_windows() -> None:
    journal = [{"t": T0 + i, "bytes_in": 100_000 * i} for i in range(10)]
    windows = [{"layer": "network", "name": "link-down", "start": T0 + 3, "stop": T0 + 5},
               {"layer": "power", "name": "cut", "start": T0 + 7, "stop": None}]
    svg = throughput_svg(journal, windows, title="A & B <test>")
    root = ET.fromstring(svg)
    rects = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("fill-opacity")]
    assert len(rects) == 2
    assert root.find("{http://www.w3.org/2000/svg}polyline") is not None


def test_empty_journal_still_draws() -> None:
    ET.fromstring(throughput_svg([]))

"""The throughput-vs-capacity plot: capacity per bin from the trace, goodput rebinned from the
forwarder's 100 ms series, a well-formed SVG that draws both and the upload window."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from harness.faults.network.packet.plot import CapacityPlot, rebin
from harness.faults.network.packet.profiles import LINK_PROFILES

SVG = "{http://www.w3.org/2000/svg}"


def test_capacity_series_averages_to_what_the_link_offered_over_the_same_seconds() -> None:
    cellular = LINK_PROFILES["cellular"]
    series = cellular.capacity_series(30.0)
    assert [t for t, _ in series] == [float(i) for i in range(30)]
    mean = sum(v for _, v in series) / len(series)
    assert mean == pytest.approx(cellular.offered_mbps(0.0, 30.0), rel=1e-9)
    assert len({round(v, 3) for _, v in series}) > 5  # a recorded trace varies second by second
    fixed = LINK_PROFILES["mesh-roam"].capacity_series(3.0)
    assert fixed == [(0.0, 100.0), (1.0, 100.0), (2.0, 100.0)]


def test_rebin_sums_100ms_bins_per_second_from_the_origin_and_keeps_stalls_as_zero() -> None:
    origin = 1000.0
    series = [[origin - 0.1, 10_000], [origin + 0.0, 125_000], [origin + 0.9, 125_000], [origin + 2.5, 250_000]]
    assert rebin(series, origin, 1.0, upto=3.0) == [(0.0, 2.0), (1.0, 0.0), (2.0, 2.0)]
    assert rebin([], origin, 1.0, upto=0.2) == [(0.0, 0.0)]


def test_svg_is_well_formed_and_draws_capacity_goodput_and_window() -> None:
    plot = CapacityPlot("cellular", "TMobile-LTE-short.up.gz", [(0.0, 10.0), (1.0, 20.0)], [(0.0, 5.0), (1.0, 15.0)],
                        window=(0.5, 1.5), note="7.00 of 14.00 Mbit/s offered = 50% <&>")
    root = ET.fromstring(plot.svg("C2C-NETW-01 <cellular>"))
    lines = {p.get("class"): p.get("points", "") for p in root.iter(f"{SVG}polyline")}
    assert set(lines) == {"capacity", "goodput"}
    ys = [float(pair.split(",")[1]) for pair in lines["capacity"].split()]
    assert min(ys) < max(ys)  # 20 Mbit/s is drawn higher (smaller y) than 10
    (window,) = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "window"]
    assert float(window.get("width", "0")) > 1
    text = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "TMobile-LTE-short.up.gz" in text and "<&>" in text and "C2C-NETW-01 <cellular>" in text
    assert plot.mean_capacity(0.0, 2.0) == 15.0 and plot.mean_capacity(5.0, 6.0) == 0.0

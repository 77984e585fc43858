"""Throughput against the link's capacity, as a small self-drawn SVG (no plotting library).

A packet-level profile replays a recorded trace, so the capacity the link offered changes
second by second; a device's throughput means something only beside it. The plot draws both
per second since the profile was applied: the trace's capacity (wire bits every delivery
opportunity could carry) and the goodput the link delivered (unique TCP payload bytes the
forwarder counted, harness.faults.network.packet.goodput), with the upload window shaded.

    plot = network.capacity_plot(window_start, window_end)   # PacketNetwork, wall-clock times
    svg = plot.svg("C2C-NETW-01 on cellular")
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 720, 260, 44
CAPACITY_COLOUR, GOODPUT_COLOUR, WINDOW_COLOUR = "#9aa0a6", "#1d3557", "#8ecae6"


def rebin(series: Sequence[Sequence[float]], origin: float, bin_s: float, *, upto: float) -> list[tuple[float, float]]:
    """[[time, bytes], ...] (any bin width, same clock as `origin`) -> (seconds since origin,
    Mbit/s) per `bin_s` bin from 0 to `upto` seconds, empty bins included (a stall shows as 0)."""
    count = max(1, int(upto / bin_s + 0.999999))
    totals = [0.0] * count
    for t, nbytes in series:
        index = math.floor((float(t) - origin) / bin_s)  # before the origin: negative, left out
        if 0 <= index < count:
            totals[index] += float(nbytes)
    return [(i * bin_s, total * 8 / 1e6 / bin_s) for i, total in enumerate(totals)]


@dataclass(frozen=True)
class CapacityPlot:
    """Capacity and goodput per bin, in seconds since the profile was applied."""

    profile: str
    trace: str | None
    capacity_mbps: list[tuple[float, float]]
    goodput_mbps: list[tuple[float, float]]
    window: tuple[float, float] | None = None  # the upload window, same time axis
    note: str = ""  # e.g. the measured ratio

    def mean_capacity(self, start: float, end: float) -> float:
        """Mean of the capacity bins that start inside [start, end) (0 when none)."""
        inside = [v for t, v in self.capacity_mbps if start <= t < end]
        return sum(inside) / len(inside) if inside else 0.0

    def svg(self, title: str) -> str:
        """The plot as a standalone SVG document (escaped text, no scripts)."""
        e = html.escape
        points = self.capacity_mbps + self.goodput_mbps
        span = max([t for t, _ in points] + [self.window[1] if self.window else 0.0, 1.0])
        peak = max([v for _, v in points] + [1.0])

        def x(t: float) -> float:
            return PAD + t / span * (WIDTH - 2 * PAD)

        def y(v: float) -> float:
            return HEIGHT - PAD - v / peak * (HEIGHT - 2 * PAD)

        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
               f'viewBox="0 0 {WIDTH} {HEIGHT}">',
               '<rect width="100%" height="100%" fill="white"/>',
               f'<text x="{PAD}" y="18" font-family="sans-serif" font-size="13">{e(title)}</text>',
               f'<text x="{PAD}" y="34" font-family="sans-serif" font-size="11">profile {e(self.profile)}'
               f'{", trace " + e(self.trace) if self.trace else ""}{"; " + e(self.note) if self.note else ""}</text>']
        if self.window is not None:
            start, end = self.window
            out.append(f'<rect class="window" x="{x(start):.1f}" y="{PAD}" width="{max(1.0, x(end) - x(start)):.1f}" '
                       f'height="{HEIGHT - 2 * PAD}" fill="{WINDOW_COLOUR}" fill-opacity="0.3">'
                       f'<title>upload window {start:.1f}..{end:.1f} s</title></rect>')
        out.append(f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="black"/>')
        out.append(f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="black"/>')
        out.append(f'<text x="4" y="{PAD + 4}" font-family="sans-serif" font-size="10">{peak:.1f} Mbit/s</text>')
        out.append(f'<text x="{WIDTH - PAD - 40}" y="{HEIGHT - 22}" font-family="sans-serif" font-size="10">'
                   f'{span:.0f} s</text>')
        for name, series, colour in (("capacity", self.capacity_mbps, CAPACITY_COLOUR),
                                     ("goodput", self.goodput_mbps, GOODPUT_COLOUR)):
            if series:
                # a step line: each bin's value holds over the whole bin
                width = series[1][0] - series[0][0] if len(series) > 1 else 1.0
                steps = " ".join(f"{x(t):.1f},{y(v):.1f} {x(t + width):.1f},{y(v):.1f}" for t, v in series)
                out.append(f'<polyline class="{name}" points="{steps}" fill="none" stroke="{colour}" '
                           f'stroke-width="1.5"/>')
        legend_y = HEIGHT - 8
        out.append(f'<line x1="{PAD}" y1="{legend_y - 4}" x2="{PAD + 18}" y2="{legend_y - 4}" '
                   f'stroke="{CAPACITY_COLOUR}" stroke-width="2"/>'
                   f'<text x="{PAD + 22}" y="{legend_y}" font-family="sans-serif" font-size="10">link capacity (trace)</text>'
                   f'<line x1="{PAD + 160}" y1="{legend_y - 4}" x2="{PAD + 178}" y2="{legend_y - 4}" '
                   f'stroke="{GOODPUT_COLOUR}" stroke-width="2"/>'
                   f'<text x="{PAD + 182}" y="{legend_y}" font-family="sans-serif" font-size="10">delivered goodput</text>')
        out.append("</svg>")
        return "".join(out)

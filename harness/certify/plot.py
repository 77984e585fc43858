"""Throughput over time as a small self-drawn SVG, with fault windows shaded (Jepsen's rate plot).

Input is the emulator's request journal (rows with `t` and `bytes_in`) and the fault
timeline's windows; no plotting library needed.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

WIDTH, HEIGHT, PAD = 720, 240, 40
FAULT_COLOURS = {"network": "#f4a261", "power": "#e76f51", "cloud": "#8ecae6", "http": "#b5838d", "tls": "#6d597a"}


def throughput_series(journal: Sequence[Mapping[str, Any]], bucket_s: float = 1.0) -> list[tuple[float, float]]:
    """(bucket start time, Mbit/s) from the uploaded bytes in each bucket."""
    points = [(float(r["t"]), int(r.get("bytes_in") or 0)) for r in journal if r.get("t") is not None]
    if not points:
        return []
    start = min(t for t, _ in points)
    buckets: dict[int, int] = {}
    for t, n in points:
        buckets[int((t - start) // bucket_s)] = buckets.get(int((t - start) // bucket_s), 0) + n
    last = max(buckets)
    return [(start + i * bucket_s, buckets.get(i, 0) * 8 / 1e6 / bucket_s) for i in range(last + 1)]


def throughput_svg(
    journal: Sequence[Mapping[str, Any]], windows: Sequence[Mapping[str, Any]] = (), *, title: str = "Upload throughput"
) -> str:
    """An SVG line of Mbit/s over time, fault windows as shaded bands."""
    series = throughput_series(journal)
    times = [t for t, _ in series] + [float(w["start"]) for w in windows if w.get("start") is not None]
    times += [float(w["stop"]) for w in windows if w.get("stop") is not None]
    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{PAD}" y="20" font-family="sans-serif" font-size="13">{e(title)}</text>']
    if not times:
        parts.append(f'<text x="{PAD}" y="{HEIGHT // 2}" font-family="sans-serif" font-size="12">no requests recorded</text></svg>')
        return "".join(parts)
    t0, t1 = min(times), max(times)
    span = max(t1 - t0, 1.0)
    peak = max([v for _, v in series] + [1.0])

    def x(t: float) -> float:
        return PAD + (t - t0) / span * (WIDTH - 2 * PAD)

    def y(v: float) -> float:
        return HEIGHT - PAD - v / peak * (HEIGHT - 2 * PAD)

    for w in windows:
        start = float(w["start"])
        stop = float(w["stop"]) if w.get("stop") is not None else t1
        colour = FAULT_COLOURS.get(str(w.get("layer")), "#cccccc")
        parts.append(f'<rect x="{x(start):.1f}" y="{PAD}" width="{max(1.0, x(stop) - x(start)):.1f}" '
                     f'height="{HEIGHT - 2 * PAD}" fill="{colour}" fill-opacity="0.35">'
                     f'<title>{e(str(w.get("layer")))}: {e(str(w.get("name")))}</title></rect>')
    parts.append(f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="black"/>')
    parts.append(f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="black"/>')
    parts.append(f'<text x="4" y="{PAD + 4}" font-family="sans-serif" font-size="10">{peak:.1f} Mbit/s</text>')
    parts.append(f'<text x="{WIDTH - PAD - 40}" y="{HEIGHT - 8}" font-family="sans-serif" font-size="10">{span:.0f} s</text>')
    if series:
        pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in series)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#1d3557" stroke-width="1.5"/>')
    parts.append("</svg>")
    return "".join(parts)

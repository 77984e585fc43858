"""One page and one summary from a run's reports: every throughput beside its limit.

Why: issue #12 wants each figure read as a ratio to what bounds it in the same run (the
loopback TLS limit, a shaped link's rate, a peer on the same link). This reads the
`<out_dir>/*.json` the other benchmarks wrote, writes `summary.json` (the ratios against the
issue's goals, same report shape) and `throughput.html` (an inline SVG bar chart: MB/s per
link for device, peers, emulator ingest and the limit). Nothing is measured here.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.benchmarks import result, write_report

__all__ = ["load_results", "render_html", "run", "summarize"]

Result = dict[str, Any]
SERIES = ("limit", "emulator ingest", "reference_device", "frameioclient", "httpx-naive",
          "shaped rate")
COLOURS = {"limit": "#888888", "emulator ingest": "#9467bd", "reference_device": "#1f77b4",
           "frameioclient": "#d62728", "httpx-naive": "#ff7f0e", "shaped rate": "#2ca02c"}
GOALS = {"ingest_vs_limit": 0.5, "device_vs_limit": 0.8, "vs_shaped": 0.95,
         "device_vs_frameioclient_50ms": 2.0}
SKIP = ("summary",)


def load_results(out_dir: Path) -> dict[str, list[Result]]:
    """benchmark name -> its results, for every report in `out_dir` but the summary."""
    reports: dict[str, list[Result]] = {}
    for path in sorted(Path(out_dir).glob("*.json")):
        if path.stem in SKIP:
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("results"), list):
            reports[str(data.get("benchmark", path.stem))] = data["results"]
    return reports


def _find(results: Iterable[Result], name: str, **params: Any) -> Result | None:
    for item in results:
        if item["name"] == name and all(item["params"].get(k) == v for k, v in params.items()):
            return item
    return None


def _ratio(name: str, top: Result | None, bottom: Result | None, goal: float | None,
           **params: Any) -> Result | None:
    if top is None or bottom is None or not bottom["value"]:
        return None
    value = round(top["value"] / bottom["value"], 3)
    extra: dict[str, Any] = {"of": f"{top['name']} / {bottom['name']}",
                             "numerator": top["value"], "denominator": bottom["value"]}
    if goal is not None:
        extra.update(goal=goal, meets_target=value >= goal)
    return result(name, value, "ratio", **params, **extra)


def summarize(reports: dict[str, list[Result]]) -> list[Result]:
    """The ratios issue #12 sets goals for, from whatever reports exist."""
    limit = reports.get("limit", [])
    limit1, limit4 = _find(limit, "limit_MBps", streams=1), _find(limit, "limit_MBps", streams=4)
    cloud = reports.get("cloud", [])
    out: list[Result | None] = []
    for clients in (1, 8, 32):
        bound = limit1 if clients == 1 else limit4
        goal = GOALS["ingest_vs_limit"] if clients > 1 else None
        out.append(_ratio("ingest_vs_limit", _find(cloud, "ingest_MBps", clients=clients), bound,
                          goal, clients=clients, limit_streams=1 if clients == 1 else 4))
    p99 = _find(cloud, "create_p99_ms")
    if p99 is not None:
        out.append(result("create_p99_ms", p99["value"], "ms", goal_ms=20.0,
                          meets_target=p99["value"] < 20.0))
    device = reports.get("device", [])
    out.append(_ratio("device_vs_limit", _find(device, "throughput_MBps"), limit4,
                      GOALS["device_vs_limit"], limit_streams=4))
    out.append(_ratio("device_vs_raw_put", _find(device, "throughput_MBps"),
                      _find(device, "raw_put_MBps"), None))
    # the device alone (parts to the null sink): what the device itself reaches of the limit
    out.append(_ratio("device_to_sink_vs_limit", _find(device, "device_to_sink_MBps"), limit4,
                      GOALS["device_vs_limit"], limit_streams=4))
    for item in reports.get("shaped", []):
        params = item["params"]
        out.append(result("device_vs_shaped", params["vs_shaped"], "ratio",
                          profile=params["profile"], goal=GOALS["vs_shaped"],
                          meets_target=params["vs_shaped"] >= GOALS["vs_shaped"]))
    peers = reports.get("peers", [])
    for rtt in sorted({i["params"]["rtt_ms"] for i in peers if "rtt_ms" in i["params"]}):
        mine = _find(peers, "throughput_MBps", rtt_ms=rtt)
        for peer in ("frameioclient", "httpx-naive"):
            goal = GOALS["device_vs_frameioclient_50ms"] if (peer, rtt) == ("frameioclient", 50) else None
            out.append(_ratio(f"device_vs_{peer}", mine, _find(peers, "peer_MBps", rtt_ms=rtt,
                                                                peer=peer), goal, rtt_ms=rtt))
    return [item for item in out if item is not None]


def _bars(reports: dict[str, list[Result]]) -> list[tuple[str, dict[str, float]]]:
    """(link label, {series: MB/s}) in display order."""
    groups: list[tuple[str, dict[str, float]]] = []
    limit = reports.get("limit", [])
    cloud = reports.get("cloud", [])
    for streams in (1, 4):
        item = _find(limit, "limit_MBps", streams=streams)
        if item is not None:
            group = {"limit": float(item["value"])}
            ingest = _find(cloud, "ingest_MBps", clients=1 if streams == 1 else 8)
            if ingest is not None:
                group["emulator ingest"] = float(ingest["value"])
            if streams == 4 and (dev := _find(reports.get("device", []), "throughput_MBps")):
                group["reference_device"] = float(dev["value"])
            groups.append((f"loopback x{streams}", group))
    peers = reports.get("peers", [])
    for rtt in sorted({i["params"]["rtt_ms"] for i in peers if "rtt_ms" in i["params"]}):
        group = {}
        for item in peers:
            if item["params"].get("rtt_ms") == rtt and item["name"] in ("throughput_MBps", "peer_MBps"):
                group[str(item["params"]["peer"])] = float(item["value"])
        groups.append((f"{rtt} ms RTT", group))
    for item in reports.get("shaped", []):
        params = item["params"]
        groups.append((str(params["profile"]), {"reference_device": float(item["value"]),
                                                "shaped rate": float(params["shaped_MBps"])}))
    return groups


def render_html(reports: dict[str, list[Result]], summary: list[Result]) -> str:
    """A self-contained page: grouped bars (log scale: 1 to 1,000 MB/s) and the ratio table."""
    import math

    groups = _bars(reports)
    width, height, left, top, bottom = 960, 380, 60, 20, 90
    plot_h = height - top - bottom
    lo, hi = -1.0, 3.0  # log10 MB/s: 0.1 .. 1000

    def y(value: float) -> float:
        v = min(hi, max(lo, math.log10(max(value, 10**lo))))
        return top + plot_h * (hi - v) / (hi - lo)

    slot = (width - left - 10) / max(1, len(groups))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="sans-serif" font-size="11">']
    for tick in range(int(lo), int(hi) + 1):
        ty = y(10.0**tick)
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{ty:.1f}" y2="{ty:.1f}" '
                     'stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">{10.0**tick:g}</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})"'
                 ' text-anchor="middle">MB/s (log)</text>')
    for index, (label, values) in enumerate(groups):
        present = [s for s in SERIES if s in values]
        bar_w = min(22.0, (slot - 8) / max(1, len(present)))
        x0 = left + index * slot + (slot - bar_w * len(present)) / 2
        for j, series in enumerate(present):
            value = values[series]
            bx, by = x0 + j * bar_w, y(value)
            parts.append(f'<rect x="{bx:.1f}" y="{by:.1f}" width="{bar_w - 2:.1f}" '
                         f'height="{top + plot_h - by:.1f}" fill="{COLOURS[series]}">'
                         f'<title>{html.escape(series)}: {value:g} MB/s</title></rect>')
        cx = left + index * slot + slot / 2
        parts.append(f'<text x="{cx:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
                     f'{html.escape(label)}</text>')
    for j, series in enumerate(SERIES):
        lx = left + j * 140
        parts.append(f'<rect x="{lx}" y="{height - 30}" width="12" height="12" '
                     f'fill="{COLOURS[series]}"/><text x="{lx + 16}" y="{height - 20}">'
                     f'{html.escape(series)}</text>')
    parts.append("</svg>")
    rows = "".join(
        f"<tr><td>{html.escape(item['name'])}</td><td>{item['value']}</td>"
        f"<td>{html.escape(_describe(item['params']))}</td>"
        f"<td>{_verdict(item['params'].get('meets_target'))}</td></tr>" for item in summary)
    return ("<!doctype html><meta charset='utf-8'><title>c2c-bench throughput</title>"
            "<h1>Throughput per link: device, peers, emulator, limit</h1>"
            "<p>One run of <code>python -m harness.benchmarks all</code>; hover a bar for its "
            "value. Loopback xN: the null TLS sink over N streams, emulator ingest (1 / 8 "
            "clients) and the device (4 parts at a time); N ms RTT: through the Toxiproxy "
            "link; named profiles: shaped links. Figures depend on the machine's load (see "
            "loadavg in each report).</p>"
            + "".join(parts) + "<h2>Ratios against issue #12's goals</h2><table border='1' "
            "cellpadding='4'><tr><th>ratio</th><th>value</th><th>where</th><th>goal</th></tr>"
            + rows + "</table>")


def _describe(params: dict[str, Any]) -> str:
    keys = ("clients", "rtt_ms", "profile", "limit_streams", "of", "goal", "goal_ms")
    return ", ".join(f"{k}={params[k]}" for k in keys if k in params)


def _verdict(meets: object) -> str:
    return {True: "met", False: "not met"}.get(meets, "") if isinstance(meets, bool) else ""


def run(out_dir: Path) -> dict[str, Any]:
    """Write `<out_dir>/summary.json` and `<out_dir>/throughput.html` from the run's reports."""
    reports = load_results(out_dir)
    summary = summarize(reports)
    report = write_report(out_dir, "summary", summary)
    page = Path(out_dir) / "throughput.html"
    page.write_text(render_html(reports, summary), encoding="utf-8")
    return report

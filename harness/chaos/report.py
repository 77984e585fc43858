"""Campaign reports: campaign.json (everything), index.html (a row per schedule, an inline SVG
fault timeline for each failure), bench.json (schedules/minute in the benchmarks' shape) and a
plain-text summary table for the terminal."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from harness.chaos.campaign import Campaign, Outcome
from harness.chaos.checker import VERDICTS

SVG_W, ROW_H, LEFT = 720, 16, 210


def campaign_dict(campaign: Campaign) -> dict[str, Any]:
    cfg = campaign.config
    return {
        "device": cfg.profile.device_id, "mutant": cfg.profile.mutant, "seed": cfg.seed, "schedules": cfg.schedules,
        "duration_s": cfg.duration, "workers": cfg.workers, "wall_s": round(campaign.wall_s, 1),
        "schedules_per_minute": round(campaign.schedules_per_minute, 2), "lane_setup_s": campaign.lane_setup_s,
        "verdicts": {v: campaign.count(v) for v in VERDICTS}, "totals": totals(campaign),
        "faults": fault_stats(campaign),
        "device_error": campaign.device_error, "bench_error": campaign.bench_error,
        "exit_code": campaign.exit_code(),
        "outcomes": [_outcome_dict(o) for o in campaign.outcomes],
    }


def totals(campaign: Campaign) -> dict[str, int]:
    """Ledger classes summed over every schedule (lost, duplicated, corrupt, leaked...)."""
    out: dict[str, int] = {}
    for o in campaign.outcomes:
        for key, value in o.verdict.counts.items():
            out[key] = out.get(key, 0) + int(value)
    return out


def fault_stats(campaign: Campaign) -> dict[str, Any]:
    """How the faults of the counted runs acted: applied, acted, never acted; power cuts by the
    moment they waited for (with the median delay after their request reached the cloud, and how
    many landed while its answer was held); rules held past their duration for their first hit."""
    records = [(s, f) for o in campaign.outcomes for f in o.history.faults for s in (o.schedule.steps[f.step],)]
    cuts: dict[str, dict[str, Any]] = {}
    for step, f in records:
        if not f.fault.startswith("power:"):
            continue
        c = cuts.setdefault(step.when or "random", {"applied": 0, "acted": 0, "delays_ms": []})
        c["applied"] += 1
        c["acted"] += f.fired is not False
        if f.aimed_at is not None:
            c["delays_ms"].append(round((f.started_at - f.aimed_at) * 1000.0))
            c["answer_held"] = c.get("answer_held", 0) + (f.answered_at is not None and f.answered_at >= f.started_at)
    for c in cuts.values():
        delays = c.pop("delays_ms")
        if delays:
            c["median_ms_after_arrival"] = _median(delays)
    return {"records": len(records), "acted": sum(1 for _, f in records if f.fired is not False),
            "never_acted": sum(1 for _, f in records if f.fired is False),
            "rules_held_for_first_hit": sum(1 for _, f in records if "past its duration" in f.note),
            "power_cuts": cuts}


def _outcome_dict(o: Outcome) -> dict[str, Any]:
    out: dict[str, Any] = {"schedule": o.schedule.to_dict(), "name": o.schedule.name, "wall_s": round(o.wall_s, 2),
                           "verdict": o.verdict.to_dict(), "history": o.history.to_dict(),
                           "written": str(o.written) if o.written else None, "attempts": o.attempts,
                           "earlier": [v.to_dict() for v in o.earlier]}
    if o.shrunk is not None:
        out["shrunk"] = {"schedule": o.shrunk.schedule.to_dict(), "faults": len(o.shrunk.schedule.faults),
                         "tries": o.shrunk.tries, "log": o.shrunk.log, "verdict": o.shrunk.verdict.to_dict(),
                         "written": str(o.shrunk_written) if o.shrunk_written else None,
                         "replay": o.replay.to_dict() if o.replay else None}
    return out


def summary_table(campaign: Campaign) -> str:
    """The closing table for the terminal."""
    d = campaign_dict(campaign)
    t = d["totals"]
    lines = [
        f"chaos campaign: device {d['device']}, seed {d['seed']}, {len(campaign.outcomes)} schedules on "
        f"{d['workers']} lanes in {d['wall_s']:.0f} s ({d['schedules_per_minute']:.1f} schedules/minute)",
        "verdicts: " + ", ".join(f"{k} {v}" for k, v in d["verdicts"].items()),
        f"faults:   {d['faults']['acted']} of {d['faults']['records']} acted "
        f"({d['faults']['rules_held_for_first_hit']} rules held past their duration for their first hit); "
        "power cuts " + (", ".join(f"{k} {c['acted']}/{c['applied']}"
                                   + (f" ({c['median_ms_after_arrival']:g} ms after the request arrived, "
                                      f"{c['answer_held']} with its answer held)"
                                      if "median_ms_after_arrival" in c else "")
                                   for k, c in sorted(d["faults"]["power_cuts"].items())) or "none"),
        "files:    " + ", ".join(f"{k} {t.get(k, 0)}" for k in ("intact", "lost", "duplicated", "corrupt", "leaked",
                                                                   "withheld", "rejected", "pending", "unexpected")),
    ]
    for o in campaign.outcomes:
        if o.verdict.outcome in ("fail", "error"):
            lines.append(f"  {o.schedule.name} {o.verdict.outcome}: "
                         + "; ".join(f"{p.category}: {p.detail}" for p in o.verdict.problems[:3])
                         + (o.verdict.error or ""))
            if o.shrunk is not None:
                replay = o.replay.outcome if o.replay else "not replayed"
                lines.append(f"    shrunk to {len(o.shrunk.schedule.faults)} fault(s) in {o.shrunk.tries} tries "
                             f"({', '.join(s.label() for s in o.shrunk.schedule.faults) or 'none'}); replay: {replay}"
                             f" -> {o.shrunk_written}")
    for label, err in (("device", campaign.device_error), ("bench", campaign.bench_error)):
        if err:
            lines.append(f"{label} error: {err}")
    return "\n".join(lines)


def write_reports(campaign: Campaign, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    data = campaign_dict(campaign)
    paths = {"json": out / "campaign.json", "html": out / "index.html", "bench": out / "bench.json"}
    paths["json"].write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    paths["html"].write_text(render_html(campaign), encoding="utf-8")
    bench = {"benchmark": "chaos", "results": [
        {"name": "schedules_per_minute", "value": data["schedules_per_minute"], "unit": "schedules/min",
         "params": {"device": data["device"], "workers": data["workers"], "duration_s": data["duration_s"],
                    "schedules": len(campaign.outcomes), "seed": data["seed"]}},
        {"name": "campaign_wall", "value": data["wall_s"], "unit": "s",
         "params": {"schedules": len(campaign.outcomes), "workers": data["workers"],
                    "failures_shrunk": sum(1 for o in campaign.outcomes if o.shrunk is not None)}},
        {"name": "schedule_wall_median", "value": _median([o.wall_s for o in campaign.outcomes]), "unit": "s",
         "params": {"duration_s": data["duration_s"], "note": "one schedule on one lane: faults + quiet window"}},
    ]}
    paths["bench"].write_text(json.dumps(bench, indent=1), encoding="utf-8")
    return paths


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[len(ordered) // 2], 2) if ordered else 0.0


def render_html(campaign: Campaign) -> str:
    d = campaign_dict(campaign)
    rows = "\n".join(_row(o) for o in campaign.outcomes)
    head = html.escape(summary_table(campaign).split("\n", 1)[0])
    verdicts = ", ".join(f"{k} {v}" for k, v in d["verdicts"].items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>c2c chaos campaign</title>
<style>body{{font:13px sans-serif;margin:1em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:3px 6px;vertical-align:top}}.pass{{background:#e6f4e6}}.fail{{background:#fbe3e3}}
.inconclusive{{background:#fff5d6}}.error{{background:#e8e8f4}}code{{font-size:12px}}</style></head><body>
<h1>Chaos campaign</h1><p>{head}</p><p>verdicts: {html.escape(verdicts)}</p>
<table><tr><th>schedule</th><th>faults</th><th>ledger</th><th>verdict</th><th>wall</th></tr>
{rows}</table></body></html>
"""


def _row(o: Outcome) -> str:
    v = o.verdict
    ledger = ", ".join(f"{k} {n}" for k, n in v.counts.items() if n)
    faults = "<br>".join(html.escape(s.label()) for s in o.schedule.faults)
    detail = "<br>".join(html.escape(f"{p.category}: {p.detail}") for p in v.problems)
    if v.error:
        detail += html.escape(v.error)
    if v.unfired:
        detail += "<br>never acted: " + html.escape(", ".join(v.unfired))
    if o.earlier:
        detail += f"<br>attempt {o.attempts} (earlier: " + html.escape(
            "; ".join(", ".join(e.unfired) or e.outcome for e in o.earlier)) + ")"
    extra = ""
    if v.outcome == "fail":
        extra = "<br>" + timeline_svg(o)
        if o.shrunk is not None:
            extra += (f"<br>shrunk to {len(o.shrunk.schedule.faults)} fault(s): "
                      + html.escape(", ".join(s.label() for s in o.shrunk.schedule.faults))
                      + f"; replay {html.escape(o.replay.outcome if o.replay else 'not run')}"
                      + f"<br><code>--replay {html.escape(str(o.shrunk_written))}</code>")
    return (f'<tr class="{v.outcome}"><td>{o.schedule.name}</td><td>{faults}</td><td>{html.escape(ledger)}</td>'
            f"<td>{v.outcome}<br>{detail}{extra}</td><td>{o.wall_s:.1f} s</td></tr>")


def timeline_svg(o: Outcome) -> str:
    """Fault windows (bars), captures (ticks) and completions (dots) on one time axis."""
    h = o.history
    t0 = h.started_at
    done = [float(r["completed_at"]) for r in h.cloud_rows if r.get("completed_at")]
    end = max([h.faults_end, *done, *(c.captured_at for c in h.captures)], default=t0 + 1) - t0 + 1

    def x(t: float) -> float:
        return LEFT + (SVG_W - LEFT - 10) * max(0.0, t - t0) / end

    parts: list[str] = []
    y = 4
    for f in h.faults:
        stop = f.stopped_at or f.started_at
        colour = "#c33" if f.fired is not False else "#bbb"
        parts.append(f'<text x="2" y="{y + 11}" font-size="11">{html.escape(f.fault[:34])}</text>'
                     f'<rect x="{x(f.started_at):.1f}" y="{y + 2}" width="{max(2.0, x(stop) - x(f.started_at)):.1f}" '
                     f'height="{ROW_H - 5}" fill="{colour}"/>')
        y += ROW_H
    for c in h.captures:
        parts.append(f'<line x1="{x(c.captured_at):.1f}" y1="{y}" x2="{x(c.captured_at):.1f}" y2="{y + ROW_H}" '
                     f'stroke="#36c" stroke-width="2"><title>capture {html.escape(c.name)}</title></line>')
    for t in done:
        parts.append(f'<circle cx="{x(t):.1f}" cy="{y + ROW_H + 6}" r="3" fill="#393"/>')
    parts.append(f'<text x="2" y="{y + 11}" font-size="11">captures (blue) / complete (green)</text>'
                 f'<line x1="{x(h.faults_end):.1f}" y1="0" x2="{x(h.faults_end):.1f}" y2="{y + ROW_H + 10}" '
                 f'stroke="#999" stroke-dasharray="3"/><text x="{x(h.faults_end) + 3:.1f}" y="{y + ROW_H + 20}" '
                 f'font-size="10">faults end; axis {end:.0f} s</text>')
    return f'<svg width="{SVG_W}" height="{y + ROW_H + 26}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'

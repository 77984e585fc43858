"""The certificate: one verdict per checklist item, from the per-scenario results.

Input is `results.json` written by the pytest plugin (one record per scenario: items,
verdict, reason, measurements). Output is reports/certificate.json

    {"device": {...}, "items": {"C2C-UPL-01": {"verdict": "pass", "scenarios": [...],
     "measurements": [...], ...}}, "summary": {...}}

and a self-contained certificate.html (no scripts, no external assets).
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.certify.checklist import Checklist, load_checklist
from harness.certify.verdicts import ERROR, FAIL, NOT_APPLICABLE, NOT_RUN, OPERATOR, PASS, combine

RESULTS_FILE = "results.json"


def item_verdicts(
    checklist: Checklist,
    results: Sequence[Mapping[str, Any]],
    device: Mapping[str, Any],
    *,
    smoke: bool = False,
) -> dict[str, dict[str, Any]]:
    """Fold scenario records into one entry per checklist item."""
    not_applicable: Mapping[str, str] = device.get("not_applicable", {})
    kind = str(device.get("kind", ""))
    items: dict[str, dict[str, Any]] = {}
    for item in checklist:
        records = [r for r in results if item.id in r.get("items", ())]
        def verdict_of(r: Mapping[str, Any], item_id: str = item.id) -> str:
            return str((r.get("item_verdicts") or {}).get(item_id, r.get("verdict")))

        scenarios = [
            {"name": r.get("scenario"), "feature": r.get("feature"), "nodeid": r.get("nodeid"),
             "verdict": verdict_of(r), "reason": r.get("reason", "")}
            for r in records
        ]
        measurements = [m for r in records for m in r.get("measurements", ()) if m.get("item") in (None, item.id)]
        entry: dict[str, Any] = {
            "title": item.title, "section": item.section, "how_verified": list(item.how_verified),
            "optional": item.optional, "automatable": item.automatable,
            "scenarios": scenarios, "measurements": measurements,
        }
        if item.id in not_applicable:
            entry.update(verdict=NOT_APPLICABLE, reason=f"declared not applicable: {not_applicable[item.id]}")
        elif kind and not item.applies_to(kind):
            entry.update(verdict=NOT_APPLICABLE, reason=f"applies to {', '.join(item.kinds)}, device is {kind}")
        elif not records:
            if smoke:
                entry.update(verdict=NOT_RUN, reason="not part of the smoke set")
            else:
                entry.update(verdict=checklist.not_run_verdict, reason="no scenario ran for this item")
        else:
            verdict = combine((verdict_of(r) for r in records), checklist.precedence) or ERROR
            reasons = [f"{r.get('scenario')}: {r.get('reason')}" for r in records
                       if verdict_of(r) == verdict and r.get("reason")]
            if verdict == FAIL and not reasons:
                reasons = [f"{m.get('name')}={m.get('value')} outside {m.get('limits')}" for m in measurements
                           if m.get("passed") is False]
            entry.update(verdict=verdict, reason="; ".join(reasons))
        items[item.id] = entry
    return items


def build_certificate(
    results: Sequence[Mapping[str, Any]],
    device: Mapping[str, Any],
    *,
    checklist: Checklist | None = None,
    run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The certificate document (pure: no I/O)."""
    checklist = checklist or load_checklist()
    run = dict(run or {})
    items = item_verdicts(checklist, results, device, smoke=bool(run.get("smoke")))
    counts: dict[str, int] = {}
    for entry in items.values():
        counts[entry["verdict"]] = counts.get(entry["verdict"], 0) + 1
    failing = sorted(i for i, e in items.items() if e["verdict"] in (FAIL, ERROR) and not e["optional"])
    summary = {
        "counts": counts,
        "items": len(items),
        "certified": not failing and counts.get(OPERATOR, 0) == 0 and counts.get(NOT_RUN, 0) == 0,
        "automatable_ok": not failing,
        "failing": failing,
        "errors": sorted(i for i, e in items.items() if e["verdict"] == ERROR),
        "operator": sorted(i for i, e in items.items() if e["verdict"] == OPERATOR),
        "scenarios": len(results),
    }
    public_device = {k: v for k, v in device.items() if k not in {"not_applicable"}}
    public_device["not_applicable"] = dict(device.get("not_applicable", {}))
    return {
        "schema": "c2c-certificate/1",
        "generated_at": run.get("generated_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
        "run": run,
        "device": public_device,
        "items": items,
        "summary": summary,
    }


def read_results(reports: Path) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Read results.json (records, device, run) that the plugin wrote."""
    path = reports / RESULTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        from harness.errors import ConfigError

        raise ConfigError(f"reports: {path} not found; run `c2c-certify run` first") from exc
    return list(data.get("results", [])), dict(data.get("device", {})), dict(data.get("run", {}))


def write_certificate(reports: Path, checklist: Checklist | None = None) -> dict[str, Any]:
    """Build certificate.json and certificate.html from reports/results.json."""
    results, device, run = read_results(reports)
    cert = build_certificate(results, device, checklist=checklist, run=run)
    (reports / "certificate.json").write_text(json.dumps(cert, indent=2, ensure_ascii=False), encoding="utf-8")
    (reports / "certificate.html").write_text(render_html(cert), encoding="utf-8")
    return cert


_COLOURS = {PASS: "#1a7f37", FAIL: "#cf222e", ERROR: "#9a6700", OPERATOR: "#0969da",
            NOT_APPLICABLE: "#6e7781", NOT_RUN: "#6e7781"}


def render_html(cert: Mapping[str, Any]) -> str:
    """A self-contained HTML certificate (inline CSS, no scripts)."""
    e = html.escape
    dev = cert.get("device", {})
    summary = cert.get("summary", {})
    rows = []
    for item_id, entry in cert.get("items", {}).items():
        colour = _COLOURS.get(entry["verdict"], "#000")
        meas = "<br>".join(
            e(f"{m.get('name')} = {m.get('value')} {m.get('unit', '')} ({m.get('limits', '')})") for m in entry.get("measurements", [])
        )
        scen = "<br>".join(e(f"{s.get('verdict')}: {s.get('name')}") for s in entry.get("scenarios", []))
        rows.append(
            f"<tr><td><code>{e(item_id)}</code></td><td>{e(entry.get('title', ''))}</td>"
            f"<td style='color:{colour};font-weight:bold'>{e(entry['verdict'])}</td>"
            f"<td>{scen}</td><td>{meas}</td><td>{e(str(entry.get('reason', '')))}</td></tr>"
        )
    counts = ", ".join(f"{e(k)}: {v}" for k, v in sorted(summary.get("counts", {}).items()))
    status = "CERTIFIED" if summary.get("certified") else ("ALL AUTOMATABLE ITEMS PASS" if summary.get("automatable_ok") else "NOT CERTIFIED")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>C2C certificate: {e(str(dev.get('id', dev.get('name', ''))))}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#1f2328}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top;font-size:14px}}th{{background:#f6f8fa;text-align:left}}
.status{{font-size:1.4em;font-weight:bold}}</style></head><body>
<h1>Frame.io C2C certification — {e(str(dev.get('name', '')))}</h1>
<p>Device <b>{e(str(dev.get('id', '')))}</b>, kind {e(str(dev.get('kind', '')))}, firmware {e(str(dev.get('firmware', '')))}.
Generated {e(str(cert.get('generated_at', '')))}; seed {e(str(cert.get('run', {}).get('seed', '')))}.</p>
<p class="status">{status}</p><p>{counts}</p>
<table><tr><th>Item</th><th>Requirement</th><th>Verdict</th><th>Scenarios</th><th>Measurements</th><th>Why</th></tr>
{''.join(rows)}
</table></body></html>
"""

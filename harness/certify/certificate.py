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

from harness.certify.retry import attempts_by_item
from harness.certify.seal import verify
from harness.config_files import read_json_object
from harness.items.applies import ProfileCodes
from harness.items.checklist import Checklist, Item, codes, load_checklist
from harness.items.verdicts import (
    DECLARED,
    ERROR,
    FAIL,
    FAIL_INFERRED,
    NOT_APPLICABLE,
    NOT_RUN,
    OPERATOR,
    OPERATOR_CONFIRMED,
    PASS,
    combine,
)

RESULTS_FILE = "results.json"
# What the certificate's status line says, and the exit status of `c2c-certify run` that goes with it.
CERTIFIED, NOT_CERTIFIED, INCOMPLETE = "CERTIFIED", "NOT CERTIFIED", "INCOMPLETE"
EXIT_CODES = {CERTIFIED: 0, NOT_CERTIFIED: 1, INCOMPLETE: 3}


def _base_name(record: Mapping[str, Any]) -> str:
    """The scenario's name without its outline example (what checklist.toml lists)."""
    return str(record.get("outline") or str(record.get("scenario", "")).split(" [", 1)[0])


def missing_scenarios(item: Item, records: Sequence[Mapping[str, Any]], expected: Sequence[str] | None) -> list[str]:
    """Scenarios (and outline examples) listed for the item that left no record in this run."""
    ran = {str(r.get("scenario")) for r in records}
    ran_base = {_base_name(r) for r in records}
    missing = [name for name in (expected or ()) if name not in ran]
    missing += [ref.name for ref in item.scenarios if ref.name not in ran_base and ref.name not in missing]
    return missing


def _entry_verdict(item: Item, records: Sequence[Mapping[str, Any]], verdict_of: Any, *, device: ProfileCodes,
                   declared_na: Mapping[str, str], missing: Sequence[str], not_run: str,
                   measurements: Sequence[Mapping[str, Any]], precedence: Sequence[str]) -> tuple[str, str]:
    """(verdict, reason) of one item, in the order a conformance lab decides it.

    Applicability first (the item's `applies` expression over the device's kind and
    capabilities, decided before the run and sticky); then what ran: a scenario that ran and failed
    is a fail whatever the profile declares; the profile's "not applicable" stands only where
    no scenario could decide; a missing capability on a required item needs a person; an item
    whose listed scenarios did not all run cannot pass.
    """
    if not item.applies.evaluate(device):
        return NOT_APPLICABLE, f"the checklist applies it when {item.applies}; {device.describe()}"
    if not records:
        if item.id in declared_na:
            return NOT_APPLICABLE, f"declared not applicable: {declared_na[item.id]}"
        if not_run != NOT_RUN:
            return not_run, "no scenario ran for this item"
        return NOT_RUN, f"not run in this selection: {'; '.join(missing)}"
    verdict = combine((verdict_of(r) for r in records), precedence) or ERROR
    # a passing item has no reason to give (a scenario's reason may be another item's failure)
    reasons = [f"{r.get('scenario')}: {r.get('reason')}" for r in records
               if verdict != PASS and verdict_of(r) == verdict and r.get("reason")]
    if verdict == FAIL and not reasons:
        reasons = [f"{m.get('name')}={m.get('value')} outside {m.get('limits')}" for m in measurements
                   if m.get("passed") is False]
    if verdict in (FAIL, ERROR):
        if item.id in declared_na:
            reasons.append(f"(the profile declares it not applicable: {declared_na[item.id]}; a scenario ran and {verdict}ed)")
        return verdict, "; ".join(reasons)
    if item.id in declared_na and verdict in (OPERATOR, NOT_APPLICABLE):
        return NOT_APPLICABLE, f"declared not applicable: {declared_na[item.id]}"
    if verdict == NOT_APPLICABLE and not item.optional and missing:
        # only a scenario that does not apply ran (a partial selection): the others decide, not a person
        return NOT_RUN, f"{len(missing)} listed scenario(s) not run: {'; '.join(missing)}"
    if verdict == NOT_APPLICABLE and not item.optional:
        return OPERATOR, ("; ".join(reasons) + "; a required item: declare it not applicable with a reason in the "
                          "profile, or have a person verify it").lstrip("; ")
    if missing and verdict != NOT_APPLICABLE:
        verdict = combine((verdict, NOT_RUN), precedence) or NOT_RUN
        if verdict == NOT_RUN:
            return NOT_RUN, f"{len(missing)} listed scenario(s) not run: {'; '.join(missing)}"
    return verdict, "; ".join(reasons)


def item_verdicts(
    checklist: Checklist,
    results: Sequence[Mapping[str, Any]],
    device: Mapping[str, Any],
    *,
    smoke: bool = False,
    expected: Mapping[str, Sequence[str]] | None = None,
    selected_only: bool = False,
    run_findings: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Fold scenario records into one entry per checklist item.

    `expected` is what the suite has per item (every scenario and outline example, whatever
    the selection ran); without it, only the checklist's own scenario list is checked.
    `selected_only`: the run chose a subset (smoke, --item, -m, -k), so an item with no record
    is "not-run"; in a whole run it is the checklist's not_run verdict (the bench lost it).
    `run_findings`: what the whole run's journal shows against an item whose rule holds for
    every request (HTTPS only, the version header): a fail whatever its own scenario saw.
    """
    declared_na: Mapping[str, str] = device.get("not_applicable", {})
    caps = device.get("capabilities")
    dev = codes(str(device.get("kind", "")), None if caps is None else [str(c) for c in caps])
    not_run = NOT_RUN if smoke or selected_only else checklist.not_run_verdict
    items: dict[str, dict[str, Any]] = {}
    for item in checklist:
        records = [r for r in results if item.id in r.get("items", ())]

        def verdict_of(r: Mapping[str, Any], item_id: str = item.id) -> str:
            return str((r.get("item_verdicts") or {}).get(item_id, r.get("verdict")))

        scenarios = [
            {"name": r.get("scenario"), "feature": r.get("feature"), "nodeid": r.get("nodeid"),
             "verdict": verdict_of(r), "reason": r.get("reason", ""), "evidence": list(r.get("evidence") or [])}
            for r in records
        ]
        measurements = [m for r in records for m in r.get("measurements", ()) if m.get("item") in (None, item.id)]
        missing = missing_scenarios(item, records, (expected or {}).get(item.id))
        verdict, reason = _entry_verdict(item, records, verdict_of, device=dev, declared_na=declared_na,
                                         missing=missing, not_run=not_run, measurements=measurements,
                                         precedence=checklist.precedence)
        finding = (run_findings or {}).get(item.id)
        if finding and item.applies.evaluate(dev):
            verdict, reason = FAIL, "; ".join(x for x in (f"whole run: {finding}", reason if verdict == FAIL else "") if x)
        items[item.id] = {
            "title": item.title, "section": item.section, "how_verified": list(item.how_verified),
            "applies": str(item.applies),
            "optional": item.optional, "automatable": item.automatable,
            "verdict": verdict, "reason": reason,
            "scenarios": scenarios, "missing_scenarios": missing, "measurements": measurements,
            "declared": sorted({str(r["declared"][item.id]) for r in records if item.id in (r.get("declared") or {})}),
            "operator_answers": [a for r in records for a in r.get("operator_answers", ()) if a.get("attests")],
            "exercised": sorted({str(x) for r in records for x in r.get("exercised", ())}),
            # the links its scenarios ran on: backend, profile, trace and parameters (issue #22)
            "networks": _networks(records),
            # how firm the expectations its scenarios enforce are (c2c-api.md tags, @evidence-*)
            "evidence": sorted({str(x) for r in records for x in r.get("evidence") or ()}),
        }
    return items


def _networks(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each shaped link the item's scenarios ran on, once (a scenario record's `network`)."""
    found: list[dict[str, Any]] = []
    for link in (dict(x) for r in records for x in r.get("network") or ()):
        if link not in found:
            found.append(link)
    return found


def network_text(link: Mapping[str, Any]) -> str:
    """One link as the certificate shows it: 'packet cellular: trace T.up, 13.3 Mbit/s, 100 ms RTT, ...'."""
    facts = [f"trace {link['trace']}" if link.get("trace") else "",
             f"{link['up_capacity_mbps']} Mbit/s up" if link.get("up_capacity_mbps") else "",
             f"{link['rtt_ms']:g} ms RTT" if link.get("rtt_ms") is not None else "",
             f"{float(link['loss']) * 100:g} % loss" if link.get("loss") else "",
             f"queue {link['queue_packets']} packets" if link.get("queue_packets") else "",
             f"TCP {link['congestion_control']}" if link.get("congestion_control") else ""]
    described = ", ".join(f for f in facts if f) or str(link.get("summary") or "")
    return f"{link.get('backend', '?')} {link.get('profile', '?')}" + (f": {described}" if described else "")


def accepted(entry: Mapping[str, Any]) -> bool:
    """Whether an item's verdict is evidence the checklist accepts for it.

    "pass" is a measurement; "declared" counts only where the checklist verifies the item by
    declaration, "operator-confirmed" only where it allows a person; "not-applicable" stands.
    """
    how = set(entry.get("how_verified", ()))
    verdict = entry["verdict"]
    return (verdict in (PASS, NOT_APPLICABLE) or (verdict == DECLARED and "declared" in how)
            or (verdict == OPERATOR_CONFIRMED and "operator" in how))


def summarize(items: Mapping[str, Mapping[str, Any]], run: Mapping[str, Any]) -> dict[str, Any]:
    """Counts, the status line and the exit status that goes with it (they never disagree).

    A required item that failed only inferred expectations ("fail (inferred)") is listed apart:
    it blocks CERTIFIED only in a strict run (`run["strict"]`), where it counts as failing.
    """
    counts: dict[str, int] = {}
    for entry in items.values():
        counts[entry["verdict"]] = counts.get(entry["verdict"], 0) + 1
    strict = bool(run.get("strict"))
    required = {i: e for i, e in items.items() if not e["optional"]}
    inferred = sorted(i for i, e in required.items() if e["verdict"] == FAIL_INFERRED)
    failing = sorted(i for i, e in required.items() if e["verdict"] == FAIL or (strict and i in inferred))
    # a bench error says nothing about the device: the run is incomplete, not the device failed
    unverified = sorted(i for i, e in required.items()
                        if e["verdict"] not in (FAIL, FAIL_INFERRED) and not accepted(e))
    selection = run.get("selection") or {}
    partial = bool(run.get("smoke")) or int(selection.get("deselected", 0)) > 0 or any(
        e.get("missing_scenarios") for e in items.values() if e["verdict"] != NOT_APPLICABLE)
    contradicted = list(run.get("contradictions") or [])
    # a declaration the device's own traffic contradicts is evidence against the device
    status = NOT_CERTIFIED if (failing or contradicted) else INCOMPLETE if (unverified or partial) else CERTIFIED
    declared_na = {i: e["reason"].removeprefix("declared not applicable: ") for i, e in items.items()
                   if e["verdict"] == NOT_APPLICABLE and e["reason"].startswith("declared not applicable: ")}
    return {
        "status": status,
        "exit_code": EXIT_CODES[status],
        "counts": counts,
        "items": len(items),
        "measured": counts.get(PASS, 0),
        "declared": counts.get(DECLARED, 0),
        "operator_confirmed": counts.get(OPERATOR_CONFIRMED, 0),
        "not_applicable": counts.get(NOT_APPLICABLE, 0),
        "declared_not_applicable": declared_na,
        "certified": status == CERTIFIED,
        "automatable_ok": not failing and not any(required[i]["verdict"] == ERROR for i in unverified),
        "partial": partial,
        "failing": failing,
        "strict": strict,
        "inferred_failing": inferred,
        "optional_failing": sorted(i for i, e in items.items() if e["optional"] and e["verdict"] in (FAIL, FAIL_INFERRED)),
        "contradicted": contradicted,
        "unverified": unverified,
        "errors": sorted(i for i, e in items.items() if e["verdict"] == ERROR),
        "operator": sorted(i for i, e in items.items() if e["verdict"] == OPERATOR),
        "not_run": sorted(i for i, e in items.items() if e["verdict"] == NOT_RUN),
        "scenarios": sum(len(e["scenarios"]) for e in items.values()),
    }


def headline(summary: Mapping[str, Any]) -> str:
    """The certificate's top line: the status and what it rests on."""
    return (f"{summary['status']}: {summary['measured']} measured, {summary['declared']} declared, "
            f"{summary['operator_confirmed']} operator-confirmed, {summary['not_applicable']} not applicable "
            f"({len(summary.get('declared_not_applicable', {}))} by declaration) of {summary['items']} items"
            + (" (partial run)" if summary.get("partial") else "")
            + (f"; {len(summary['contradicted'])} declaration(s) contradicted" if summary.get("contradicted") else "")
            + (f"; {len(summary['inferred_failing'])} failed only inferred expectations"
               + (" (strict: blocking)" if summary.get("strict") else " (not blocking; --strict makes them block)")
               if summary.get("inferred_failing") else ""))


def build_certificate(
    results: Sequence[Mapping[str, Any]],
    device: Mapping[str, Any],
    *,
    checklist: Checklist | None = None,
    run: Mapping[str, Any] | None = None,
    sealed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The certificate document (pure: no I/O)."""
    checklist = checklist or load_checklist()
    run = dict(run or {})
    selection = run.get("selection") or {}
    items = item_verdicts(checklist, results, device, smoke=bool(run.get("smoke")), expected=run.get("expected"),
                          selected_only=int(selection.get("deselected", 0)) > 0, run_findings=run.get("run_findings"))
    for item_id, attempts in attempts_by_item(run, results).items():
        entry = items[item_id]
        entry["attempts"] = attempts
        count = len({a["attempt"] for a in attempts})
        entry["reason"] = (f"{entry['verdict']} after {count} attempts; " + entry["reason"]).rstrip("; ")
    for c in run.get("contradictions") or []:
        _mark_contradicted(items, c)
    summary = summarize(items, run)
    public_device = {k: v for k, v in device.items() if k not in {"not_applicable"}}
    public_device["not_applicable"] = dict(device.get("not_applicable", {}))
    return {
        "schema": "c2c-certificate/2",
        "headline": headline(summary),
        "generated_at": run.get("finished_at") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run": {k: v for k, v in run.items() if k != "expected"},
        "device": public_device,
        "seal": dict(sealed or {}),
        "items": items,
        "summary": summary,
    }


def _mark_contradicted(items: dict[str, dict[str, Any]], contradiction: Mapping[str, Any]) -> None:
    """A contradicted [not_applicable] declaration shows on its item too: the reason it gave no longer
    stands, so the item is `not-run` (never judged), not counted among the not-applicable ones."""
    declaration = str(contradiction.get("declaration", ""))
    if not declaration.startswith("not_applicable: "):
        return
    item_id = declaration.removeprefix("not_applicable: ").split(" ", 1)[0]
    entry = items.get(item_id)
    if entry is None:
        return
    entry["contradicted"] = str(contradiction.get("evidence", ""))
    if entry["verdict"] == "not-applicable":  # a false excuse excuses nothing: the item was never judged
        entry["verdict"] = "not-run"
    entry["reason"] = (f"declaration contradicted: {entry['contradicted']}; " + entry["reason"].replace(
        "declared not applicable: ", "declared not applicable (contradicted): ", 1)).rstrip("; ")


def read_results(reports: Path) -> dict[str, Any]:
    """Read results.json that the plugin wrote, refusing one that does not match its seal."""
    path = reports / RESULTS_FILE
    data = read_json_object(path, "reports", missing_hint="; run `c2c-certify run` first")
    verify(data)
    return dict(data)


def write_certificate(reports: Path, checklist: Checklist | None = None) -> dict[str, Any]:
    """Build certificate.json and certificate.html from a sealed reports/results.json."""
    data = read_results(reports)
    cert = build_certificate(list(data.get("results", [])), dict(data.get("device", {})), checklist=checklist,
                             run=dict(data.get("run", {})), sealed=data.get("seal"))
    (reports / "certificate.json").write_text(json.dumps(cert, indent=2, ensure_ascii=False), encoding="utf-8")
    (reports / "certificate.html").write_text(render_html(cert), encoding="utf-8")
    return cert


_COLOURS = {PASS: "#1a7f37", FAIL: "#cf222e", FAIL_INFERRED: "#bc4c00", ERROR: "#9a6700", OPERATOR: "#0969da",
            OPERATOR_CONFIRMED: "#0550ae", DECLARED: "#8250df", NOT_APPLICABLE: "#6e7781", NOT_RUN: "#6e7781"}


def _evidence_html(entry: Mapping[str, Any]) -> str:
    """What an item's verdict rests on besides measurements: declarations, people, compressions."""
    e = html.escape
    parts = [f"<i>declared:</i> {e(text)}" for text in entry.get("declared", [])]
    parts += [_operator_html(a) for a in entry.get("operator_answers", [])]
    parts += [f"<i>exercised:</i> {e(text)}" for text in entry.get("exercised", [])]
    parts += [f"<i>network:</i> {e(network_text(link))}" for link in entry.get("networks", [])]
    parts += [f"<i>not run:</i> {e(name)}" for name in entry.get("missing_scenarios", [])]
    parts += [f"<i>attempt {e(str(a.get('attempt')))}:</i> {e(str(a.get('verdict')))} {e(str(a.get('scenario')))}"
              for a in entry.get("attempts", [])]
    return "<br>".join(parts)


def _operator_html(a: Mapping[str, Any]) -> str:
    """One operator answer as a manual test step: who, when, the question, the answer, the evidence."""
    e = html.escape
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(a.get("at", 0))))
    if a.get("timed_out"):
        answer = "<b>no answer (timed out)</b>"
    else:
        answer = e(str(a.get("verdict") or a.get("answer")))
        said = a.get("choice") if a.get("kind") == "choice" else a.get("value")
        if said is not None:  # a value or a choice: what the person reported, then what the bench accepts
            said = f"{said:g} {a.get('unit') or ''}".strip() if isinstance(said, int | float) else str(said)
            answer = f"{e(said)} &rarr; {answer} (accepts {e(str(a.get('expected')))})"
        if a.get("source") == "answer file":
            answer += " (answer file)"
    evidence = (f"; evidence <code>{e(str(a['evidence']))}</code> sha256 <code>{e(str(a.get('evidence_sha256', ''))[:16])}</code>"
                if a.get("evidence") else "; no evidence attached")
    return f"<i>operator {e(str(a.get('operator')))} at {e(when)} UTC:</i> {e(str(a.get('question')))} &rarr; {answer}{evidence}"


def render_html(cert: Mapping[str, Any]) -> str:
    """A self-contained HTML certificate (inline CSS, no scripts)."""
    e = html.escape
    dev = cert.get("device", {})
    summary = cert.get("summary", {})
    rows = []
    for item_id, entry in cert.get("items", {}).items():
        colour = _COLOURS.get(entry["verdict"], "#000")
        meas = "<br>".join(
            e(f"{m.get('name')} = {m.get('value')} {m.get('unit', '')} ({m.get('limits', '')})")
            + ("" if m.get("passed") is not False else " <b>OUT OF LIMITS</b>")
            for m in entry.get("measurements", [])
        )
        scen = "<br>".join(e(f"{s.get('verdict')}: {s.get('name')}")
                           + (f" <small>[{e(', '.join(s['evidence']))}]</small>" if s.get("evidence") else "")
                           for s in entry.get("scenarios", []))
        rows.append(
            f"<tr><td><code>{e(item_id)}</code></td><td>{e(entry.get('title', ''))}</td>"
            f"<td style='color:{colour};font-weight:bold'>{e(entry['verdict'])}</td>"
            f"<td>{e(', '.join(entry.get('evidence', [])))}</td>"
            f"<td>{scen}</td><td>{meas}</td><td>{e(str(entry.get('reason', '')))}"
            f"{'<br>' if entry.get('reason') else ''}{_evidence_html(entry)}</td></tr>"
        )
    counts = ", ".join(f"{e(k)}: {v}" for k, v in sorted(summary.get("counts", {}).items()))
    na = "".join(f"<li><code>{e(i)}</code>: {e(r)}</li>" for i, r in summary.get("declared_not_applicable", {}).items())
    contradicted = "".join(f"<li><code>{e(str(c.get('declaration')))}</code>: {e(str(c.get('evidence')))}</li>"
                           for c in summary.get("contradicted", []))
    inferred = "".join(f"<li><code>{e(i)}</code>: {e(str(cert['items'][i].get('reason', '')))}</li>"
                       for i in summary.get("inferred_failing", []))
    inferred_note = ("A strict run: these block CERTIFIED." if summary.get("strict") else
                     "Each rests only on [INF] expectations of the contract; the device may be right about the "
                     "real service. Not blocking; <code>c2c-certify run --strict</code> makes them block.")
    seal = cert.get("seal", {})
    seal_text = (f"Sealed ({e(str(seal.get('scheme')))}, bench key {e(str(seal.get('key_id')))}): results "
                 f"<code>{e(str(seal.get('results_sha256', ''))[:16])}</code>, journal "
                 f"<code>{e(str(seal.get('journal_sha256', ''))[:16])}</code> ({e(str(seal.get('journal_rows')))} rows), "
                 f"profile <code>{e(str(seal.get('profile_sha256', ''))[:16])}</code>." if seal else "Not sealed.")
    selection = cert.get("run", {}).get("selection", {})
    argv = " ".join(selection.get("argv", []))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>C2C certificate: {e(str(dev.get('id', dev.get('name', ''))))}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#1f2328}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top;font-size:14px}}th{{background:#f6f8fa;text-align:left}}
.status{{font-size:1.4em;font-weight:bold}}</style></head><body>
<h1>Frame.io C2C certification — {e(str(dev.get('name', '')))}</h1>
<p class="status">{e(str(cert.get('headline', summary.get('status', ''))))}</p>
<p>Device <b>{e(str(dev.get('id', '')))}</b>, kind {e(str(dev.get('kind', '')))}, firmware {e(str(dev.get('firmware', '')))}.
Generated {e(str(cert.get('generated_at', '')))}; seed {e(str(cert.get('run', {}).get('seed', '')))}.</p>
<p>{counts}</p>
<p>{seal_text}</p>
<p>Selection: <code>{e(argv) or 'whole suite'}</code>; {e(str(selection.get('deselected', 0)))} scenario(s) left out.</p>
<h2>Declared not applicable</h2><ul>{na or '<li>none</li>'}</ul>
<h2>Declarations contradicted</h2><ul>{contradicted or '<li>none</li>'}</ul>
<h2>Failed only inferred expectations</h2><p>{inferred_note}</p><ul>{inferred or '<li>none</li>'}</ul>
<table><tr><th>Item</th><th>Requirement</th><th>Verdict</th><th>Evidence</th><th>Scenarios</th><th>Measurements</th><th>Why</th></tr>
{''.join(rows)}
</table></body></html>
"""

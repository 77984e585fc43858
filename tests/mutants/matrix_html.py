"""reports/mutants.html: the seeded-defect matrix as one table a reviewer can read.

One row per mutant, one column per checklist item. A cell shows the verdict the mutant's
certificate gave that item and whether that is what the matrix expects: the mutant's own
item must fail (green when it does), items it documents as `also` may fail, every other
automatable item must not (red when it does). No scripts, no external assets.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

SHORT = {"pass": "P", "fail": "F", "error": "E", "operator": "O", "not-applicable": "-", "not-run": ".",
         "declared": "D", "operator-confirmed": "C"}


def _cell(verdict: str | None, *, own: bool, allowed: bool, shared: bool) -> tuple[str, str]:
    """(css class, text) for one mutant × item cell."""
    if verdict is None:
        return "none", ""
    text = SHORT.get(verdict, "?")
    if own:
        return ("caught" if verdict == "fail" else "missed"), text
    if verdict == "error":
        return "error", text
    if verdict == "fail":
        return ("allowed" if allowed or shared else "collateral"), text
    return "quiet", text


def render_matrix_html(table: Mapping[str, Any], items: Sequence[str]) -> str:
    """The table document (`tests.mutants.matrix.table`) as a self-contained HTML page."""
    e = html.escape
    mutants: Mapping[str, Mapping[str, Any]] = table.get("mutants", {})
    ok = sum(1 for row in mutants.values() if row.get("ok"))
    head = "".join(f"<th class='item'><span>{e(i.removeprefix('C2C-'))}</span></th>" for i in items)
    rows = []
    for name, row in mutants.items():
        verdicts: Mapping[str, str] = row.get("verdicts", {})
        allowed = set(row.get("also", ()))
        shared = set(row.get("shared", ()))
        cells = []
        for item in items:
            css, text = _cell(verdicts.get(item), own=item == row.get("item"), allowed=item in allowed,
                              shared=item in shared)
            cells.append(f"<td class='{css}' title='{e(item)}: {e(str(verdicts.get(item, 'not run')))}'>{e(text)}</td>")
        status = "ok" if row.get("ok") else "BAD"
        rows.append(f"<tr><th class='name' title='{e(str(row.get('what', '')))}'>{e(name)}</th>"
                    f"<td>{e(str(row.get('item', '')))}</td><td class='{status.lower()}'>{status}</td>"
                    f"<td>{e(str(row.get('seconds', '')))}</td>{''.join(cells)}"
                    f"<td class='note'>{e(str(row.get('note', '')))}</td></tr>")
    mode = "full run (every item)" if table.get("full") else f"own item + smoke items {', '.join(table.get('smoke_items', []))}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>c2c-bench seeded-defect matrix</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5em;color:#1f2328}}table{{border-collapse:collapse}}
td,th{{border:1px solid #d0d7de;padding:2px 4px;font-size:12px;text-align:center}}th.name{{text-align:left}}
th.item{{height:7em;white-space:nowrap;vertical-align:bottom}}th.item span{{writing-mode:vertical-rl;transform:rotate(180deg)}}
.caught{{background:#aceebb}}.missed{{background:#ff8182}}.collateral{{background:#ffcecb}}.allowed{{background:#fff8c5}}
.error{{background:#ffd8b5}}.ok{{color:#1a7f37;font-weight:bold}}.bad{{color:#cf222e;font-weight:bold}}
.note{{text-align:left;max-width:40em}}</style></head><body>
<h1>Seeded-defect matrix</h1>
<p><b>{ok}/{len(mutants)}</b> mutants flagged on their own item and on no other automatable item;
{e(mode)}; {e(str(table.get('seconds', '')))} s.</p>
<p>Cells: F fail, P pass, E bench error, O operator, D declared, C operator-confirmed, - not applicable, . not run.
Green: the mutant's own item failed (expected). Red: own item not failed, or another item failed that the
mutant does not document. Yellow: a documented consequence. Orange: a bench error.</p>
<table><tr><th>mutant</th><th>own item</th><th>ok</th><th>s</th>{head}<th>note</th></tr>
{''.join(rows)}
</table></body></html>
"""

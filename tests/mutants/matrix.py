"""Run the mutant matrix: each seeded defect must fail its item and no other automatable item.

Quick mode (what `make test` runs): per mutant, `c2c-certify run --device mutant:NAME
--item ITEM -- -m "(ITEM) or (smoke and (<SMOKE_ITEMS>))"`, i.e. its own item's scenarios
plus the @smoke scenarios of SMOKE_ITEMS,
two mutants at a time (separate processes, separate emulators on port 0).
Full mode (`c2c-certify mutants --full`, `make mutants`): every mutant against every
scenario, with the verdict of every item in the table.

A result is ok when the own item is "fail", no automatable item outside `item` + `also`
fails, and no item that ran ended in "error" (an error is a bench failure, never a catch).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from harness.children import spawn
from tests.mutants.admission import POLL_S, Admission, IdleWindow
from tests.mutants.patching import Mutant
from tests.mutants.table import MUTANTS

REPO = Path(__file__).resolve().parents[2]
# The smoke set each quick run adds to the own item: the @smoke scenarios of these items
# (a capture uploaded automatically: pairing, create, parts, complete). HTTPS only and the
# version header are judged over the whole run of every quick run (harness/bdd/run_witness.py),
# so they need no scenario of their own here. The other @smoke scenarios cost a power cut each.
SMOKE_ITEMS: tuple[str, ...] = ("C2C-UPL-01",)
QUICK_TIMEOUT_S = 300.0
# what flags a mutant on an item (its own or, as collateral, another one)
FAILING = frozenset({"fail", "fail (inferred)"})
FULL_TIMEOUT_S = 1800.0


def _failing(entry: dict[str, Any]) -> set[Any]:
    """The nodeids of an item's scenarios that failed."""
    return {s.get("nodeid") for s in entry.get("scenarios", ()) if s.get("verdict") in FAILING}


def judge(mutant: Mutant, cert: dict[str, Any]) -> dict[str, Any]:
    """Whether the certificate flags the mutant's item, nothing it should not, and had no bench error."""
    items = cert["items"]
    ran = {i for i, e in items.items() if e.get("scenarios")}
    failed = sorted(i for i, e in items.items() if e["verdict"] in FAILING)
    errors = sorted(i for i, e in items.items() if e["verdict"] == "error" and i in ran)
    own = items.get(mutant.item, {})
    caught = own.get("verdict") == mutant.expect
    allowed = {mutant.item, *mutant.also}
    # a scenario tagged with several items fails all of them at once: when every failing scenario
    # of another item is also a scenario of an allowed item, that failure is the mutant's own catch
    own_scenarios = set().union(*(_failing(items.get(i, {})) for i in allowed))
    shared = [i for i in failed if i not in allowed and items[i].get("automatable")
              and _failing(items[i]) and _failing(items[i]) <= own_scenarios]
    collateral = [i for i in failed if i not in allowed and i not in shared and items[i].get("automatable")]
    listed = [str(c.get("declaration", "")) for c in cert.get("summary", {}).get("contradicted", [])]
    uncontradicted = [d for d in mutant.contradicts if not any(x.startswith(d) for x in listed)]
    notes = []
    if uncontradicted:
        notes.append(f"declaration(s) not listed as contradicted: {uncontradicted} (listed: {listed})")
    if not caught:
        notes.append(f"{mutant.item} was {own.get('verdict')!r}, not {mutant.expect!r}: {str(own.get('reason', ''))[:200]}")
    if collateral:
        notes.append(f"also failed {collateral}: " + " | ".join(str(items[i].get("reason", ""))[:160] for i in collateral))
    if errors:
        notes.append(f"bench errors on {errors}: " + " | ".join(str(items[i].get("reason", ""))[:160] for i in errors))
    return {"mutant": mutant.name, "item": mutant.item,
            "ok": caught and not collateral and not errors and not uncontradicted,
            "caught": caught, "failed": failed, "errors": errors, "collateral": collateral, "shared": shared,
            "verdicts": {i: items[i]["verdict"] for i in sorted(ran)}, "note": "; ".join(notes)}


def certify_argv(mutant: Mutant, reports: Path, *, full: bool = False, shards: int = 1) -> list[str]:
    """The `c2c-certify run` argv for one mutant (quick: own item + SMOKE_ITEMS; full: everything),
    its scenarios sharded over `shards` devices when > 1 (`run --workers`)."""
    argv = [sys.executable, "-m", "harness.certify.cli", "run", "--device", f"mutant:{mutant.name}",
            "--reports", str(reports), "--quiet"]
    if shards > 1:
        argv += ["--workers", str(shards)]
    if not full:
        smoke = " or ".join(f"({i})" for i in SMOKE_ITEMS)
        # the trailing -m (last one wins in pytest) narrows the run to own item + smoke scenarios
        argv += ["--item", mutant.item, "--", "-m", f"({mutant.item}) or (smoke and ({smoke}))"]
        if mutant.quick_k:
            argv += ["-k", mutant.quick_k]
    return argv


def _interrupt(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C the run's process group so pytest tears down its emulator and device; kill if it hangs."""
    for sig, wait_s in ((signal.SIGINT, 60.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.communicate(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_mutant(mutant: Mutant, reports: Path, *, full: bool = False, timeout: float | None = None,
               shards: int = 1) -> dict[str, Any]:
    """Certify one mutant in its own `c2c-certify run` process and judge its certificate."""
    quick = SLOW_QUICK_TIMEOUT_S if mutant.name in SLOW_MUTANTS else QUICK_TIMEOUT_S
    limit = timeout if timeout is not None else (FULL_TIMEOUT_S if full else quick)
    started = time.monotonic()
    base = {"mutant": mutant.name, "item": mutant.item, "ok": False, "caught": False, "failed": [],
            "errors": [], "collateral": [], "verdicts": {}}
    # spawn: a killed matrix takes its certifications (and so their emulators and devices) with it;
    # they start from pool threads, and spawn binds them to the process, not to those threads
    proc = spawn(certify_argv(mutant, reports, full=full, shards=shards), cwd=REPO, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _interrupt(proc)
        return {**base, "seconds": round(time.monotonic() - started, 1),
                "note": f"bench error: certification did not finish within {limit:.0f} s (see {reports / 'pytest.log'})"}
    cert_path = reports / "certificate.json"
    if not cert_path.exists():
        return {**base, "seconds": round(time.monotonic() - started, 1),
                "note": f"bench error: no certificate (exit {proc.returncode}): {(err or out)[-400:]}"}
    result = judge(mutant, json.loads(cert_path.read_text(encoding="utf-8")))
    result["seconds"] = round(time.monotonic() - started, 1)
    result["reports"] = str(reports)
    prune_bulk(reports / "work")
    return result


BULK_BYTES = 1 << 20


def prune_bulk(work: Path, *, over: int = BULK_BYTES) -> int:
    """Delete the run's bulky files once the certificate is judged (captured media, the cloud's
    stored parts, its database): a full matrix keeps ~0.7 GB a mutant otherwise and fills the
    disk halfway. Logs, consoles and JSON records stay. Returns the bytes freed."""
    freed = 0
    for path in work.rglob("*") if work.is_dir() else ():
        try:
            size = path.stat().st_size if path.is_file() and not path.is_symlink() else 0
            if size > over:
                path.unlink()
                freed += size
        except OSError:
            continue
    return freed


def table(results: Sequence[dict[str, Any]], *, full: bool, seconds: float, commit: str | None = None) -> dict[str, Any]:
    """The reports/mutants.json shape: {mutant: {item, verdicts, flagged_own_item, collateral, ...}}.
    `commit` is the code the run judged (read once when it started; by default, now)."""
    by_name = {m.name: m for m in MUTANTS}
    rows = {
        r["mutant"]: {"item": r["item"], "also": list(by_name[r["mutant"]].also), "what": by_name[r["mutant"]].what,
                      "ok": r["ok"], "flagged_own_item": r["caught"], "collateral": r["collateral"],
                      "shared": r.get("shared", []),
                      "errors": r["errors"], "verdicts": r["verdicts"], "seconds": r.get("seconds"),
                      "started_s": r.get("started_s"),
                      "note": r.get("note", ""), "first_run": r.get("first_run")}
        for r in results
    }
    score = sum(1 for r in results if r["ok"])
    return {"full": full, "smoke_items": [] if full else list(SMOKE_ITEMS), "seconds": round(seconds, 1),
            "commit": commit or source_commit(), "score": f"{score}/{len(results)}",
            "ok": all(r["ok"] for r in results), "mutants": rows}


def source_commit() -> str:
    """The checkout's commit (with "+dirty" when tracked files differ): a table names the code it judged."""
    from harness.certify.manifest import bench_version

    version = bench_version(REPO)
    return str(version["commit"]) + ("+dirty" if version["dirty"] else "")


def bench_error_only(result: dict[str, Any]) -> bool:
    """A result whose only problem is the bench (no certificate, a timeout, or items in error while
    nothing else is wrong): it says nothing about the mutant yet, so the matrix certifies it once
    more and keeps the first run's note. A real miss or a collateral failure is never re-run."""
    if result["ok"]:
        return False
    if not result["verdicts"]:
        return True
    own_in_error = result["verdicts"].get(result["item"]) == "error"
    return bool(result["errors"]) and not result["collateral"] and (result["caught"] or own_in_error)


def resumable(out: Path | None, full: bool) -> dict[str, dict[str, Any]]:
    """Rows of an earlier table at `out` that may stand: same mode, same clean commit, ok. An interrupted
    `make mutants` resumes with the rest instead of starting over (a row that was not ok runs again)."""
    if out is None or not out.is_file():
        return {}
    try:
        doc = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    commit = source_commit()
    if doc.get("full") != full or doc.get("commit") != commit or commit.endswith("+dirty") or commit == "unknown":
        return {}
    return {name: {"mutant": name, "caught": row["flagged_own_item"], "failed": [], **row}
            for name, row in doc.get("mutants", {}).items() if row.get("ok")}


# mutants whose own item fails only when a step waits out its timeout (measured ~75-140 s;
# the silent-heartbeat ones ~330 s: a gap over 300 s is only proven by watching 300 s), and
# re-pairs-on-any-4xx-refresh, whose item (RTY-03, ten scenarios) must run whole (~270 s loaded)
SLOW_MUTANTS = frozenset({"pairing-not-cancellable", "blocks-on-corrupt", "never-refreshes",
                          "no-network-status", "stale-project-name", "no-heartbeat", "beats-once",
                          "re-pairs-on-any-4xx-refresh"})
SLOW_QUICK_TIMEOUT_S = 540.0
# the slow ones that spend their time waiting on a quiet device, not computing
IDLE_MUTANTS = frozenset({"no-heartbeat", "beats-once"})


def write_table(out: Path, doc: dict[str, Any]) -> None:
    """mutants.json and, beside it, mutants.html (mutant x item, expected vs got); atomically."""
    from harness.items.checklist import load_checklist
    from tests.mutants.matrix_html import render_matrix_html

    out.parent.mkdir(parents=True, exist_ok=True)
    for path, text in ((out, json.dumps(doc, indent=2)),
                       (out.with_suffix(".html"), render_matrix_html(doc, load_checklist().ids))):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)


def run_matrix(
    *, full: bool = False, out: Path | None = None, only: Sequence[str] | None = None, workers: int = 2,
    most: int | None = None, work: Path | None = None, shards: int = 1, resume: bool = False,
) -> list[dict[str, Any]]:
    """Certify the selected mutants, `workers` at a time and up to `most` while the machine has CPU to spare
    (tests.mutants.admission); write the table to `out` as results come in. A mutant whose run failed only for the
    bench is certified once more, alone, at the end; `resume` keeps the ok rows of the table already at `out` when it
    judged this very commit."""
    admission = Admission(least=max(1, workers), most=max(1, workers, most or 0))
    known = {m.name for m in MUTANTS}
    unknown = sorted(set(only or ()) - known)
    if unknown:
        raise KeyError(f"unknown mutant(s) {unknown}; known: {', '.join(sorted(known))}")
    selected = [m for m in MUTANTS if not only or m.name in only]
    # longest first, so the slow ones (a failing step that waits out its timeout) overlap
    # with many short ones instead of finishing alone at the end
    selected.sort(key=lambda m: m.name not in SLOW_MUTANTS)
    root = work or (out.parent / "mutants" if out else REPO / "reports" / "mutants")
    started = time.monotonic()
    commit = source_commit()  # the code this run judges, even if the checkout changes under it
    kept = resumable(out, full) if resume else {}
    results: list[dict[str, Any]] = [kept[m.name] for m in selected if m.name in kept]
    selected = [m for m in selected if m.name not in kept]
    lock = threading.Lock()

    def record(r: dict[str, Any]) -> None:
        with lock:
            results.append(r)
            if out is not None:
                write_table(out, table(results, full=full, seconds=time.monotonic() - started, commit=commit))

    def first(m: Mutant) -> tuple[Mutant, dict[str, Any]] | None:
        at = round(time.monotonic() - started, 1)  # when it started in the matrix: how many ran at once
        r = {**run_mutant(m, root / m.name, full=full, shards=shards), "started_s": at}
        if bench_error_only(r):
            return m, r
        record(r)
        return None

    pending, running = deque(selected), set[Future[tuple[Mutant, dict[str, Any]] | None]]()
    spoiled: list[tuple[Mutant, dict[str, Any]]] = []
    window = IdleWindow()
    with ThreadPoolExecutor(max_workers=admission.most) as pool:
        while pending or running:
            idle = window.share()
            while pending and admission.may_start(len(running), idle):
                running.add(pool.submit(first, pending.popleft()))
                admission.started()
            done, running = wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)
            spoiled += [x for x in (f.result() for f in done) if x is not None]
    # runs the bench spoiled (mostly a starved machine) are certified again one at a time,
    # on a machine that no longer runs the others
    for m, r in spoiled:
        at = round(time.monotonic() - started, 1)
        again = {**run_mutant(m, root / f"{m.name}.again", full=full, shards=shards), "started_s": at}
        again["first_run"] = f"bench error, certified again alone: {r.get('note', '')}"
        record(again)
    order = {m.name: n for n, m in enumerate(MUTANTS)}
    return sorted(results, key=lambda r: order[r["mutant"]])

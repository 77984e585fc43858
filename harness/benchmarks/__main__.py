"""`python -m harness.benchmarks {limit,cloud,device,peers,shaped,faults,plot,all} [--out DIR]`.

Each benchmark writes reports/bench/<name>.json ({"benchmark", "results": [{name, value,
unit, params}]}). Modules are imported lazily and one that fails is reported without hiding
the others' numbers. `limit` runs first so every later figure has its bound from the same
run; `plot` runs last: summary.json (ratios against issue #12's goals) and throughput.html.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

BENCHMARKS = ("limit", "cloud", "device", "peers", "shaped", "faults", "links", "plot")


def _available(name: str) -> bool:
    return importlib.util.find_spec(f"harness.benchmarks.{name}") is not None


def run_one(name: str, out_dir: Path) -> dict[str, Any] | None:
    """Run one benchmark module's `run(out_dir)`; None when the module does not exist."""
    if not _available(name):
        print(f"skipping {name}: harness.benchmarks.{name} is not available in this checkout")
        return None
    module = importlib.import_module(f"harness.benchmarks.{name}")
    runner = getattr(module, "run", None)
    if not callable(runner):
        raise RuntimeError(f"harness.benchmarks.{name} has no run(out_dir) function")
    report: dict[str, Any] = runner(out_dir)
    return report


def _summary(report: dict[str, Any]) -> str:
    lines = []
    for item in report.get("results", []):
        params = item.get("params", {})
        keys = ("clients", "streams", "file_GB", "rtt_ms", "peer", "profile")
        tag = ", ".join(f"{k}={params[k]}" for k in keys if k in params)
        flag = {True: " (meets target)", False: " (below target)"}.get(params.get("meets_target"), "")
        lines.append(f"  {item['name']}{f' [{tag}]' if tag else ''}: {item['value']} {item['unit']}{flag}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=[*BENCHMARKS, "all"], help="benchmark to run")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"), help="directory for <name>.json")
    args = parser.parse_args(argv)
    names = BENCHMARKS if args.which == "all" else (args.which,)
    failed = []
    for name in names:
        started = time.monotonic()
        print(f"== {name}")
        try:
            report = run_one(name, args.out)
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            failed.append(name)
            print(f"error: benchmark {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if report is not None:
            print(_summary(report))
            print(f"  -> {args.out / (str(report['benchmark']) + '.json')} ({time.monotonic() - started:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

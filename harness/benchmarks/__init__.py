"""Benchmarks behind `make bench`: speed and memory targets live here, never in tests.

Each benchmark module (`limit`, `cloud`, `device`, `peers`, `shaped`, `faults`; `plot`
summarizes them) exposes `run(out_dir: Path) -> dict`,
writes `<out_dir>/<name>.json` in the shape

    {"benchmark": name, "results": [{"name", "value", "unit", "params"}]}

and returns that dict. Targets go into `params` with a `meets_target` flag; nothing here
asserts them, because a loaded 2-core bench machine must still produce a report.
`python -m harness.benchmarks all --out reports/bench` runs every module that exists.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.machine import cpu_pressure

__all__ = ["machine_params", "result", "vm_hwm", "write_report"]


def result(name: str, value: float, unit: str, **params: Any) -> dict[str, Any]:
    """One measurement in the shared report shape."""
    return {"name": name, "value": value, "unit": unit, "params": params}


def machine_params() -> dict[str, Any]:
    """What the numbers depend on: CPUs and how busy the machine was when they were taken.

    `cpu_pressure_avg10`: the share of the last 10 s in which some runnable task waited for a
    CPU (Linux PSI, /proc/pressure/cpu; None where absent). A shared bench box's figures read
    against it: at 60 % a single-threaded server gets well under one core.
    """
    try:
        load_1m = round(os.getloadavg()[0], 2)
    except OSError:
        load_1m = None
    return {"cpus": os.cpu_count(), "loadavg_1m": load_1m, "cpu_pressure_avg10": cpu_pressure()}


def vm_hwm(pid: int) -> int:
    """Peak resident set size of `pid` in bytes (VmHWM), 0 if the process is gone: the
    device's memory targets are peaks, which a sampled RSS can miss."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def write_report(out_dir: Path, benchmark: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Write `<out_dir>/<benchmark>.json` atomically and return the report."""
    report = {"benchmark": benchmark, "results": results}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{benchmark}.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return report

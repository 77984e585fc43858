"""The live display of a running certification: an overall bar, and one line per xdist worker
of a sharded run (the scenario it is on, how many it finished), fed by the plugin's progress.jsonl."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path


def follow_progress(reports: Path, proc: subprocess.Popen[bytes], quiet: bool) -> None:
    """Follow reports/progress.jsonl with a rich progress bar until pytest exits; a sharded run
    gets one live line per worker (its scenario now, how many it finished)."""
    path = reports / "progress.jsonl"
    if quiet:
        proc.wait()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    colours = {"pass": "green", "fail": "red", "error": "yellow", "operator": "blue", "not-applicable": "dim",
               "declared": "magenta", "operator-confirmed": "cyan", "not-run": "dim", "fail (inferred)": "dark_orange"}
    offset = 0
    with Progress(TextColumn("[bold]{task.fields[label]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console) as progress:
        task = progress.add_task("collecting", total=None, label="certifying")
        lines: dict[str, TaskID] = {}
        while True:
            running = proc.poll() is None
            if path.exists():
                with path.open(encoding="utf-8") as fh:
                    fh.seek(offset)
                    for line in fh:
                        if not line.endswith("\n"):
                            break  # a worker is still writing this line
                        offset += len(line.encode("utf-8"))
                        event = json.loads(line)
                        worker = str(event.get("worker") or "")
                        if worker and worker not in lines:
                            lines[worker] = progress.add_task("", total=None, label=f"  {worker}")
                        if event.get("event") == "collected":
                            progress.update(task, total=event["scenarios"], description="")
                        elif event.get("event") == "start" and worker:
                            progress.update(lines[worker], description=str(event["scenario"])[:70])
                        elif event.get("event") == "scenario":
                            v = event["verdict"]
                            progress.advance(task)
                            if worker:
                                progress.advance(lines[worker])
                            progress.console.print(f"[{colours.get(v, 'white')}]{v:>14}[/] {event['scenario']}  "
                                                   f"[dim]{' '.join(event['items'])}{'  ' + worker if worker else ''}[/]")
            if not running:
                break
            time.sleep(0.2)

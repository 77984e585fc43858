"""Live processes as /proc shows them, for tests that check what a kill left running."""

from __future__ import annotations

import contextlib
from pathlib import Path


def _stat(pid: int | str) -> list[str]:
    """/proc/PID/stat's fields after the command name (state first, then the parent pid)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie no init has reaped yet counts as ended)."""
    try:
        return _stat(pid)[0] not in {"Z", "X"}
    except OSError:
        return False


def descendants(root: int) -> list[int]:
    """Every process below `root` (by parent pid), whatever its command line."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents[int(entry.name)] = int(_stat(entry.name)[1])
    found, frontier = [], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += frontier
    return found


def cmdline(pid: int) -> str:
    """The command line with spaces for NULs ('' once the process is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""

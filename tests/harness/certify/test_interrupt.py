"""Ctrl-C and kill on a real certification: the bench tears down in order, or dies whole.

`c2c-certify run` starts its pytest through harness.children.spawn, so pytest ends with it. A
Ctrl-C reaches both (one process group): c2c-certify must then wait for pytest's own teardown
instead of exiting and taking pytest down mid-teardown. A SIGKILL of c2c-certify alone must leave
no emulator, device, pytest or pytest-xdist worker behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.children import GUARD
from tests.processes import alive, cmdline, descendants
from tests.terminal import as_a_terminal_starts_it
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not GUARD, reason="util-linux setpriv is not installed")]


def _run_processes(reports: Path) -> list[int]:
    """Every live process whose command line names this run's reports folder (pytest, its
    emulator, its device), c2c-certify itself excluded."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(reports) in cmdline and "harness.certify.cli" not in cmdline and state not in {"Z", "X"}:
            found.append(int(entry.name))
    return found


def _kill(pids: list[int]) -> None:
    """What a failed check left running (so a red test does not leave a bench behind)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _start(reports: Path, *extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "harness.certify.cli", "run", "--device", "reference", "--quiet",
            "--item", "C2C-SOCK-01", "--reports", str(reports), *extra]  # a 70 s scenario: it outlasts the test
    proc = subprocess.Popen(as_a_terminal_starts_it(argv), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    # a scenario is under way: pytest, the emulator and a device are all up
    wait_until(lambda: len(_run_processes(reports)) >= 3 or proc.poll() is not None, 120,
               "the run's pytest, emulator and device", interval=0.2)
    assert proc.poll() is None, proc.communicate()
    return proc


def test_ctrl_c_waits_for_the_bench_to_tear_down(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = _start(reports)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, err = proc.communicate(timeout=120)
    left = _run_processes(reports)
    _kill(left)
    assert not left, f"still running after c2c-certify exited: {left}"
    assert "tearing down" in err, err[-2000:]
    # pytest ended on its own terms (its interrupted summary), not by its parent's death
    assert "KeyboardInterrupt" in (reports / "pytest.log").read_text(errors="replace"), err[-2000:]


def test_a_killed_certify_leaves_nothing_behind(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = _start(reports)
    proc.kill()  # c2c-certify alone, no chance to clean up
    proc.wait(10)
    try:
        wait_until(lambda: not _run_processes(reports), 20, "pytest, its emulator and device to end with c2c-certify",
                   interval=0.2)
    finally:
        _kill(_run_processes(reports))


def test_a_killed_sharded_certify_leaves_no_shard_behind(tmp_path: Path) -> None:
    """With --workers, pytest-xdist's workers (started by execnet, not by the bench) hold the
    emulators and devices: they must die with pytest, or a killed run keeps uploading."""
    reports = tmp_path / "reports"
    proc = _start(reports, "--workers", "2")
    wait_until(lambda: sum("exec(eval" in cmdline(p) for p in descendants(proc.pid)) >= 2, 60,
               "both shards' workers", interval=0.2)
    started = descendants(proc.pid)
    proc.kill()
    proc.wait(10)
    try:
        # killed, not left to notice their closed pipe (a worker did that in 6 s here, unloaded,
        # and ran on for longer in a loaded matrix); tests/harness/test_children.py has the control
        wait_until(lambda: not any(alive(p) for p in started), 5,
                   "the run's pytest, its workers, emulators and device to end with c2c-certify", interval=0.1)
    finally:
        _kill([p for p in started if alive(p)])


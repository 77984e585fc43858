"""Children that end with the bench process: real processes, a real SIGKILL of their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.children import GUARD, spawn
from tests.processes import alive
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not GUARD, reason="util-linux setpriv is not installed")

# The bench process: it starts children from a thread that then ends (as a chaos lane or a pool
# worker would), says so, and waits to be killed.
PARENT = textwrap.dedent("""
    import sys, threading, time
    from pathlib import Path
    from harness.children import spawn

    def armed(proc):
        # setpriv has set the parent-death signal once it has exec'd the command; a thread that
        # ended before that would leave nothing to bind the child to it (the race that hides
        # a child bound to a short-lived thread)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{proc.pid}/comm").read_text().strip() == "setpriv":
            if time.monotonic() > deadline:
                raise SystemExit(f"{proc.args} never left setpriv")
            threading.Event().wait(0.01)
        return proc

    started = []
    def start():
        started.append(armed(spawn(["sleep", "300"], start_new_session=True)))
        if sys.argv[1] == "emulator":
            from harness.cloud.runner import EmulatorProcess
            from harness.faults.power.process import ProcessPower
            started.append(armed(EmulatorProcess(Path(sys.argv[2])).start().proc))
            power = ProcessPower(["sleep", "301"])
            power.on()
            started.append(armed(power._proc))
    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    print(" ".join(str(p.pid) for p in started), flush=True)
    threading.Event().wait()
""")


def kill_survivors(pids: list[int]) -> None:
    """What a failed check left running (a red test must not leave an emulator behind)."""
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def parent(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    procs: list[subprocess.Popen[str]] = []

    def start(kind: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-c", PARENT, kind, str(tmp_path / "cloud")], env=env,
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        procs.append(proc)
        return proc

    yield start  # type: ignore[misc]
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_a_child_outlives_the_thread_that_started_it_and_ends_with_its_process(parent) -> None:  # type: ignore[no-untyped-def]
    proc = parent("sleep")
    [child] = [int(p) for p in proc.stdout.readline().split()]
    # the starting thread has ended; a child bound to that thread dies at once
    with pytest.raises(AssertionError, match="timed out"):
        wait_until(lambda: not alive(child), 1.0, "the child to die with the thread that started it")
    assert os.getpgid(child) == child  # start_new_session reached the command itself
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    try:
        wait_until(lambda: not alive(child), 10, f"child {child} to end with its killed parent")
    finally:
        kill_survivors([child])


def test_the_emulator_and_a_powered_device_end_with_a_killed_bench(parent) -> None:  # type: ignore[no-untyped-def]
    proc = parent("emulator")
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 3 and all(alive(p) for p in pids)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    try:
        wait_until(lambda: not any(alive(p) for p in pids), 15, f"{pids} to end with their killed parent")
    finally:
        kill_survivors(pids)


def test_a_command_that_cannot_run_raises_as_popen_does(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        spawn(["no-such-command-c2c"])
    with pytest.raises(FileNotFoundError):
        spawn(["./missing"], cwd=tmp_path)
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(PermissionError):
        spawn([str(script)])
    script.chmod(0o755)
    done = spawn(["./not-executable"], cwd=tmp_path)
    assert done.wait(10) == 0


def test_the_popen_is_the_command_itself() -> None:
    proc = spawn(["sh", "-c", "echo $$; exit 7"], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=10)
    assert int(out) == proc.pid and proc.returncode == 7


# A process a library starts plainly (as execnet starts an xdist worker) that binds itself.
ADOPTER = textwrap.dedent("""
    import subprocess, sys, threading
    child = subprocess.Popen([sys.executable, "-c",
        "import sys, threading; from harness.children import end_with_parent; "
        "bound = end_with_parent() if sys.argv[1] == 'bind' else False; "
        "print(bound, flush=True); threading.Event().wait()", sys.argv[1]], stdout=subprocess.PIPE, text=True)
    said = child.stdout.readline().strip()
    print(child.pid, said, flush=True)
    threading.Event().wait()
""")


@pytest.mark.parametrize("bind", [True, False])
def test_a_process_that_binds_itself_ends_with_its_parent(bind: bool) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", ADOPTER, "bind" if bind else "no"], env=env,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    pid, said = proc.stdout.readline().split()
    child = int(pid)
    try:
        assert said == str(bind)
        proc.kill()
        proc.wait(10)
        if bind:
            wait_until(lambda: not alive(child), 10, f"child {child} to end with its killed parent")
        else:  # the control: a plain child runs on, which is what the binding is for
            with pytest.raises(AssertionError, match="timed out"):
                wait_until(lambda: not alive(child), 1.0, "an unbound child to die")
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_survivors([child])

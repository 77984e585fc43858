"""The rig controller's side of a remote rig (harness/certify/remote.py has the protocol): run
`c2c-certify run` into a temp folder, stream its output and progress, ship the folder, and leave
no process behind; and the helpers a fleet's local runs share with it (progress tail, run marker)."""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.locks import HolderLock

if TYPE_CHECKING:
    import execnet

STOP_GRACE_S = 8.0  # < execnet's 15 s between a lost gateway and os._exit on the controller
CHUNK = 1 << 20
RUN_MARKER_ENV = "C2C_FLEET_RUN"  # in every process of a fleet's run: which device folder it certifies
PR_SET_CHILD_SUBREAPER = 36


def serve(channel: execnet.Channel, repo: str, run_args: Sequence[str], marker: str,
          place: tuple[str, str, float]) -> None:
    """The controller's side: hold the rig's place here too (another fleet, from another machine,
    may share this controller), certify into a temp folder, stream it back, leave no process behind."""
    path, holder, wait = place
    lock = HolderLock(Path(path))
    if not _take_place(channel, lock, holder, wait):
        return
    try:
        _certify(channel, repo, run_args, marker)
    finally:
        lock.release()


def _take_place(channel: execnet.Channel, lock: HolderLock, holder: str, wait: float) -> bool:
    """The place's flock, polled for `wait` s; ("busy", its holder) if it stays taken; False also if
    the fleet stops meanwhile (then the channel just closes)."""
    deadline = time.monotonic() + wait
    while not lock.try_acquire(holder):
        if time.monotonic() >= deadline:
            channel.send(("busy", lock.holder()))
            return False
        try:
            if channel.receive(timeout=0.5)[0] == "stop":
                return False
        except channel.TimeoutError:
            continue
        except EOFError:
            return False
    return True


def _certify(channel: execnet.Channel, repo: str, run_args: Sequence[str], marker: str) -> None:
    _become_subreaper()
    reports = Path(tempfile.mkdtemp(prefix="c2c-fleet-remote-"))
    env = {**os.environ, "PYTHONPATH": repo, RUN_MARKER_ENV: marker}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.Popen([sys.executable, "-m", "harness.certify.cli", "run", *run_args, "--reports", str(reports)],
                            cwd=repo, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    sending = threading.Lock()

    def send(kind: str, payload: bytes | str | int) -> None:
        with sending:  # the output pump and this thread share the channel
            channel.send((kind, payload))

    stopping = threading.Event()
    try:
        threading.Thread(target=_listen_for_stop, args=(channel, proc, stopping), daemon=True).start()
        pump = threading.Thread(target=_pump_output, args=(send, proc), daemon=True)
        pump.start()
        tail = ProgressTail(reports / "progress.jsonl")
        while proc.poll() is None:
            for line in tail.new_lines():
                send("progress", line)
            time.sleep(0.3)
        pump.join(timeout=5)
        for line in tail.new_lines():
            send("progress", line)
        send("exit", proc.returncode)
        stop_run(proc)  # anything the run left running is killed (and reaped) before the folder ships
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(reports, arcname=".")
        data = buffer.getvalue()
        for start in range(0, len(data), CHUNK):
            send("tar", data[start:start + CHUNK])
        send("end", 0)
    finally:
        stopping.set()
        _stop_surely(proc)
        shutil.rmtree(reports, ignore_errors=True)


def _listen_for_stop(channel: execnet.Channel, proc: subprocess.Popen[bytes], stopping: threading.Event) -> None:
    """A ("stop", 0) or a closed channel (gateway gone) stops the run at once."""
    with contextlib.suppress(Exception):
        while not stopping.is_set():
            if channel.receive()[0] == "stop":
                break
    if not stopping.is_set():
        stop_run(proc)


def _pump_output(send: Callable[[str, bytes], None], proc: subprocess.Popen[bytes]) -> None:
    stdout = proc.stdout
    assert stdout is not None
    with contextlib.suppress(OSError, ValueError):  # a channel closed under us: the run is being stopped
        for chunk in iter(lambda: os.read(stdout.fileno(), 65536), b""):
            send("log", chunk)


_STOP_LOCK = threading.Lock()


def stop_run(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C for the run's process group (the cli and its pytest); once that group has ended (or
    STOP_GRACE_S passed), whatever still descends from us is an orphan of its teardown: SIGKILL."""
    with _STOP_LOCK:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and _group_alive(proc):
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in descendants(os.getpid()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5
        while descendants(os.getpid()) and time.monotonic() < deadline:
            _reap_adopted(proc.pid)
            time.sleep(0.05)


def _stop_surely(proc: subprocess.Popen[bytes]) -> None:
    """stop_run from the main thread, which execnet SIGINTs 5 s after losing the gateway: an
    interrupted wait is resumed, never abandoned (the process would exit with the run alive)."""
    while True:
        try:
            stop_run(proc)
            return
        except KeyboardInterrupt:
            continue


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the run's process group still has a member (its adopted zombies reaped first)."""
    proc.poll()
    _reap_adopted(proc.pid)
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    return True


def marked(marker: str) -> list[int]:
    """Live processes whose environment carries RUN_MARKER_ENV=marker (a run's, whoever adopted them)."""
    wanted = f"{RUN_MARKER_ENV}={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            with contextlib.suppress(OSError):
                if wanted in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    found.append(int(entry))
    return found


def kill_marked(marker: str) -> None:
    """SIGKILL what a stopped run left behind (found by its marker: its parents may be gone)."""
    for pid in marked(marker):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def descendants(root: int) -> list[int]:
    """Every live process below `root` (from /proc: pid -> parent)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _become_subreaper() -> None:
    """Linux: orphans of the run become our children (and so stay findable and killable)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _reap_adopted(run_pid: int) -> None:
    """Collect the exit of orphans the run left us (zombies otherwise); the run itself is Popen's."""
    for pid in descendants(os.getpid()):
        if pid != run_pid:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


class ProgressTail:
    """The complete lines a run's plugin has appended to progress.jsonl since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def new_lines(self) -> list[str]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except OSError:
            return []
        complete = data[:data.rfind(b"\n") + 1]  # a worker may be writing the last line
        self._offset += len(complete)
        return [line for line in complete.decode("utf-8", errors="replace").splitlines() if line.strip()]


def progress_note(line: str) -> str | None:
    """A progress.jsonl line as the fleet's live view shows it ('pass  <scenario>'), or None."""
    with contextlib.suppress(ValueError, AttributeError):
        event = json.loads(line)
        if event.get("event") == "scenario":
            return f"{event.get('verdict', '')}  {event.get('scenario', '')}"
    return None

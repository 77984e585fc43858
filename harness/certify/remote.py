"""Remote rigs: a device certified on a rig controller over ssh, through an execnet gateway.

The fleet machine opens `ssh=<options> host//python=<controller python>` (execnet runs
`ssh <options> '<python> -c "import sys;exec(eval(sys.stdin.readline()))"'` and bootstraps itself
over the pipe). `REMOTE_ENTRY` then runs on the controller: it puts the controller's checkout
(`repo`) on sys.path and calls `serve`, which starts the ordinary `python -m harness.certify.cli
run ... --reports <temp dir>` there and answers on the channel:

    ("log", bytes)       the run's console output, as it comes (written to <reports>/<name>.log)
    ("progress", str)    each line the run's plugin appends to progress.jsonl (the live view)
    ("exit", int)        the run's exit status
    ("tar", bytes) ...   the reports folder as a gzipped tar, in chunks; ("end", 0) closes it

The fleet machine may send ("stop", 0); closing the gateway (Ctrl-C, an error, ssh dying) is the
same order. Stopping is a terminal's Ctrl-C for the run (SIGINT to its process group: pytest tears
the bench down), then, after STOP_GRACE_S, SIGKILL to every process still descending from
`serve`. `serve` is a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so an emulator or device a
dead pytest started in its own session is still its descendant, never an orphan of init. execnet
itself SIGINTs a controller whose gateway is gone 5 s later and exits it 10 s after that, hence the
short grace.

Host keys: `known_hosts` in the inventory pins them (StrictHostKeyChecking=yes); without it ssh
uses the user's own known_hosts. ssh runs with BatchMode=yes (never a password prompt on a pipe)
and logs its own errors to a file (-E), so a gateway that cannot open is a RemoteRigError naming
the rig, user@host:port and ssh's reason, never a device failure. No secret crosses: the
controller reads the device's profile (and its client_secret) from its own checkout.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.certify.places import PLACES_DIR, FleetCancelled, RigBusy
from harness.certify.rig_controller import STOP_GRACE_S
from harness.errors import BenchFailure, ConfigError

if TYPE_CHECKING:
    import execnet


# Runs on the controller (execnet sends this source): our checkout there does the rest.
REMOTE_ENTRY = """
import sys
repo, run_args, marker, place = channel.receive()
sys.path.insert(0, repo)
from harness.certify.rig_controller import serve
serve(channel, repo, run_args, marker, place)
"""


class RemoteRigError(BenchFailure):
    """A rig controller could not be reached or could not run the certification (the bench's fault)."""


@dataclass(frozen=True)
class SshRig:
    """Where a rig controller is and how to reach it."""

    host: str
    repo: str  # the c2c-bench checkout on the controller
    python: str = "python3"
    user: str | None = None
    port: int | None = None
    identity: Path | None = None
    known_hosts: Path | None = None
    places_dir: str = str(PLACES_DIR)  # on the controller: its places, shared by every fleet using it
    connect_timeout_s: int = 10

    @property
    def address(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}{f':{self.port}' if self.port else ''}"


def parse_ssh_rig(name: str, table: dict[str, object], base: Path) -> SshRig:
    """An inventory's `kind = "ssh"` rig; relative key paths are relative to the inventory."""
    def text(key: str, default: str | None = None) -> str | None:
        value = table.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value or re.search(r"\s", value) or "//" in value:
            # execnet splits the ssh part of its spec on spaces, and '//' ends a spec key
            raise ConfigError(f"rig {name!r} {key} must be a non-empty string without spaces or '//'")
        return value

    def path(key: str) -> Path | None:
        value = text(key)
        if value is None:
            return None
        return (base / Path(value).expanduser()).resolve()  # checked when the rig is used (preflight)

    host, repo, python, user = text("host"), text("repo"), text("python", "python3"), text("user")
    if host is None or repo is None:
        raise ConfigError(f"rig {name!r} is kind 'ssh': it needs host and repo (the c2c-bench checkout there)")
    port = table.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
        raise ConfigError(f"rig {name!r} port must be a TCP port number")
    return SshRig(host, repo, python or "python3", user, port, path("identity"), path("known_hosts"),
                  text("places_dir", str(PLACES_DIR)) or str(PLACES_DIR))


def ssh_options(rig: SshRig, log: Path) -> list[str]:
    """The ssh options (no command) that reach the controller: never a prompt, errors into `log`."""
    options = ["-E", str(log), "-o", "BatchMode=yes", "-o", f"ConnectTimeout={rig.connect_timeout_s}",
               "-o", "ServerAliveInterval=15"]
    if rig.port:
        options += ["-p", str(rig.port)]
    if rig.identity:
        options += ["-i", str(rig.identity), "-o", "IdentitiesOnly=yes"]
    if rig.user:
        options += ["-l", rig.user]
    if rig.known_hosts:
        options += ["-o", f"UserKnownHostsFile={rig.known_hosts}", "-o", "StrictHostKeyChecking=yes"]
    return [*options, rig.host]


def gateway_spec(rig: SshRig, log: Path) -> str:
    """execnet's XSpec: `ssh=<options split on spaces>//python=<interpreter on the controller>`."""
    return f"ssh={' '.join(ssh_options(rig, log))}//python={rig.python}"


def _reason(log: Path, stderr: str) -> str:
    said = [line.strip() for line in [*stderr.splitlines(), *_read(log).splitlines()] if line.strip()]
    return "; ".join(said[-3:]) or "no reason given"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def preflight(name: str, rig: SshRig, log: Path) -> None:
    """One ssh round trip that proves the controller answers, its python runs (3.12, with the bench's
    packages) and it holds our checkout; RemoteRigError with ssh's or the controller's words otherwise."""
    for key, path in (("identity", rig.identity), ("known_hosts", rig.known_hosts)):
        if path is not None and not path.is_file():
            raise RemoteRigError(f"rig {name!r} ({rig.address}): {key} {path} is not a file")
    check = (f"import os, sys\nrepo = {rig.repo!r}\n"
             "if sys.version_info < (3, 12):\n"
             "    sys.exit(f'{sys.executable} is Python {sys.version.split()[0]}; c2c-bench needs 3.12')\n"
             "if not os.path.isfile(os.path.join(repo, 'harness', 'certify', 'cli.py')):\n"
             "    sys.exit(f'no c2c-bench checkout at {repo}')\n"
             "sys.path.insert(0, repo)\nimport harness.certify.rig_controller, pytest, pytest_bdd\n")
    argv = ["ssh", *ssh_options(rig, log), f"{shlex.quote(rig.python)} -c {shlex.quote(check)}"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
                              timeout=rig.connect_timeout_s * 3)
    except subprocess.TimeoutExpired:
        raise RemoteRigError(f"rig {name!r} ({rig.address}): no answer in {rig.connect_timeout_s * 3} s") from None
    if done.returncode != 0:
        raise RemoteRigError(f"rig {name!r} ({rig.address}): {_reason(log, done.stderr)}")


@contextlib.contextmanager
def open_gateway(name: str, rig: SshRig, workdir: Path) -> Iterator[execnet.Gateway]:
    """An execnet gateway to the controller, in a group of its own that is always terminated."""
    import execnet

    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f".ssh-{name}.log"
    preflight(name, rig, log)
    group = execnet.Group()
    try:
        try:
            gateway = group.makegateway(gateway_spec(rig, log))
        except Exception as exc:  # execnet's own words (HostNotFound, EOFError...) plus ssh's
            raise RemoteRigError(f"rig {name!r} ({rig.address}): gateway did not open: "
                                 f"{type(exc).__name__}; {_reason(log, '')}") from None
        yield gateway
    finally:
        group.terminate(timeout=STOP_GRACE_S + 4)
        with contextlib.suppress(OSError):
            log.unlink()


def certify_remote(name: str, rig: SshRig, run_args: Sequence[str], out: Path, log_path: Path, *, marker: str,
                   place: int, holder: str, wait: float, on_progress: Callable[[str], None],
                   cancel: threading.Event) -> int:
    """Run `cli run <run_args> --reports <controller temp dir>` on the controller, holding place
    `place` of the rig there too; its console output into `log_path`, its progress lines to
    `on_progress`, its reports folder unpacked into `out`. Returns the run's exit status;
    RemoteRigError when the controller or the link fails, RigBusy when its place stays held."""
    lock = f"{rig.places_dir}/{name}.{place}.lock"
    with open_gateway(name, rig, out.parent) as gateway, log_path.open("wb") as log:
        channel = gateway.remote_exec(REMOTE_ENTRY)
        channel.send((rig.repo, list(run_args), marker, (lock, holder, wait)))
        status: int | None = None
        archive = io.BytesIO()
        stop_by: float | None = None  # once stopped, the controller has its grace and a margin to ship
        while True:
            if cancel.is_set() and stop_by is None:
                channel.send(("stop", 0))
                stop_by = time.monotonic() + STOP_GRACE_S + 30
            if stop_by is not None and time.monotonic() > stop_by:
                raise RemoteRigError(f"rig {name!r} ({rig.address}): the controller did not stop its run in "
                                     f"{STOP_GRACE_S + 30:.0f} s; the gateway is closed under it")
            try:
                kind, payload = channel.receive(timeout=0.5)
            except channel.TimeoutError:
                continue
            except EOFError:
                if stop_by is not None:
                    raise FleetCancelled(f"rig {name!r} ({rig.address}): stopped before its place was free") from None
                raise RemoteRigError(f"rig {name!r} ({rig.address}): the controller closed the channel") from None
            except channel.RemoteError as exc:
                raise RemoteRigError(f"rig {name!r} ({rig.address}): the controller went away: "
                                     f"{_last_line(exc)}") from None
            if kind == "log":
                log.write(payload)
                log.flush()
            elif kind == "progress":
                on_progress(payload)
            elif kind == "exit":
                status = int(payload)
            elif kind == "tar":
                archive.write(payload)
            elif kind == "end":
                break
            elif kind == "busy":
                raise RigBusy(f"rig {name!r} ({rig.address}): {lock} on the controller is held by {payload}; "
                              f"waited {wait:.0f} s")
        try:
            channel.waitclose(timeout=10)
        except (channel.TimeoutError, channel.RemoteError) as exc:  # the run and its folder are here already
            log.write(f"\nc2c-certify fleet: the controller's clean-up: {_last_line(exc)}\n".encode())
    if status is None:
        raise RemoteRigError(f"rig {name!r} ({rig.address}): the run ended without an exit status")
    shutil.rmtree(out, ignore_errors=True)  # the folder is this run's, as a local run's manifest is
    out.mkdir(parents=True)
    archive.seek(0)
    with tarfile.open(fileobj=archive, mode="r:gz") as tar:
        tar.extractall(out, filter="data")  # refuses absolute paths, '..', devices: the controller is not trusted
    return status


def _last_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[-1]

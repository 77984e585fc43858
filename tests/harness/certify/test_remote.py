"""Remote rigs over ssh, for real: a throwaway sshd on loopback, the fleet's execnet gateway through it."""

from __future__ import annotations

import functools
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.certify.fleet import certify_fleet, load_inventory
from harness.certify.remote import RemoteRigError, gateway_spec
from harness.certify.rig_controller import RUN_MARKER_ENV
from harness.errors import BenchFailure, ConfigError
from tests.terminal import as_a_terminal_starts_it
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]
SSHD = Path("/usr/sbin/sshd")
ITEM = "C2C-HDR-01"  # one fast scenario (about 15 s a device on this machine)


@dataclass(frozen=True)
class Sshd:
    port: int
    user: str
    key: Path
    known_hosts: Path
    log: Path
    home: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True,
                   stdin=subprocess.DEVNULL)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """sshd on 127.0.0.1:<free port> as this user: its own host key, one client key, nothing else."""
    if not SSHD.exists() or shutil.which("ssh") is None:
        pytest.skip(f"{SSHD} or ssh is absent (the Makefile bootstrap installs openssh-server)")
    home = tmp_path_factory.mktemp("sshd")
    if os.geteuid() == 0:  # root's sshd insists on its privilege separation directory
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    keygen(home / "host_key")
    keygen(home / "client_key")
    port = free_port()
    config = home / "sshd_config"
    config.write_text(textwrap.dedent(f"""\
        ListenAddress 127.0.0.1
        Port {port}
        HostKey {home / 'host_key'}
        AuthorizedKeysFile {home / 'client_key.pub'}
        PidFile {home / 'sshd.pid'}
        UsePAM no
        StrictModes no
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PermitRootLogin prohibit-password
        """), encoding="utf-8")
    host_key = (home / "host_key.pub").read_text().split()
    (home / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n", encoding="utf-8")
    log = home / "sshd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: listening(port) or proc.poll() is not None, 10, "sshd listening")
        assert proc.poll() is None, log.read_text()
        yield Sshd(port, getpass.getuser(), home / "client_key", home / "known_hosts", log, home)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def inventory(tmp_path: Path, sshd: Sshd, *, local: bool = True, **override: object) -> Path:
    """An ssh rig on the throwaway sshd (the controller's checkout is this one) and a local rig."""
    rig = {"kind": "ssh", "host": "127.0.0.1", "port": sshd.port, "user": sshd.user, "identity": str(sshd.key),
           "known_hosts": str(sshd.known_hosts), "python": sys.executable, "repo": str(REPO),
           "places_dir": str(tmp_path / "controller-places"), **override}
    lines = [f'places_dir = "{tmp_path / "places"}"', "[rigs.far]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in rig.items()]
    lines += ["[[devices]]", 'name = "far-reference"', 'profile = "reference"', 'rig = "far"']
    if local:
        lines += ["[rigs.here]", 'kind = "local"', "[[devices]]", 'name = "here-no-retry"',
                  'profile = "mutant:no-retry-api"', 'rig = "here"']
    path = tmp_path / "lab.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fleet_argv(lab: Path, reports: Path) -> list[str]:
    return [sys.executable, "-m", "harness.certify.cli", "fleet", "--inventory", str(lab), "--reports", str(reports),
            "--item", ITEM]


def test_ssh_rigs_are_read_and_their_mistakes_named(tmp_path: Path, sshd: Sshd) -> None:
    inv = load_inventory(inventory(tmp_path, sshd))
    far = inv.rigs["far"].ssh
    assert far is not None and far.port == sshd.port and far.identity == sshd.key and far.repo == str(REPO)
    assert inv.rigs["here"].ssh is None
    log = tmp_path / "ssh.log"
    # execnet's spec: the ssh part is split on spaces, '//' starts the next key
    assert gateway_spec(far, log) == (
        f"ssh=-E {log} -o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=15 -p {sshd.port} "
        f"-i {sshd.key} -o IdentitiesOnly=yes -l {sshd.user} -o UserKnownHostsFile={sshd.known_hosts} "
        f"-o StrictHostKeyChecking=yes 127.0.0.1//python={sys.executable}")
    text = inventory(tmp_path, sshd).read_text()
    for edit, words in ((lambda t: re.sub(r"\nhost = .*", "", t), "needs host and repo"),
                        (lambda t: t.replace(f'repo = "{REPO}"', 'repo = "/opt/my bench"'), "repo must be"),
                        (lambda t: t.replace(f"port = {sshd.port}", "port = 70000"), "port"),
                        (lambda t: t.replace(f'python = "{sys.executable}"', 'python = "a//b"'), "python must be")):
        path = tmp_path / "bad.toml"
        path.write_text(edit(text), encoding="utf-8")
        with pytest.raises(ConfigError, match=f"rig 'far' .*{words}"):
            load_inventory(path)


def test_a_fleet_certifies_on_a_remote_rig_and_a_local_one_at_once(tmp_path: Path, sshd: Sshd) -> None:
    reports = tmp_path / "fleet"
    done = subprocess.run(fleet_argv(inventory(tmp_path, sshd), reports), cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {r["name"]: r for r in json.loads((reports / "fleet.json").read_text())["devices"]}
    assert set(rows) == {"far-reference", "here-no-retry"}
    for name, row in rows.items():
        cert = json.loads((reports / name / "certificate.json").read_text())
        assert row["state"] == "done" and row["verdicts"] == {i: e["verdict"] for i, e in cert["items"].items()}
        assert row["verdicts"][ITEM] == "pass" and row["scenarios"] == 1, row
        verify = subprocess.run([sys.executable, "-m", "harness.certify.cli", "verify", str(reports / name)],
                                cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr  # copied back byte for byte: the seal holds
    assert "Accepted publickey for" in sshd.log.read_text()  # the remote one really went through ssh
    # its progress line came back over the channel into the fleet's live view
    assert re.search(r"far-reference +1  pass  Every request carries", done.stdout), done.stdout
    # its console output is the log beside its folder; the controller's temp folder is gone
    console = (reports / "far-reference.log").read_text()
    remote_folder = re.search(r"certificate: (\S+)/certificate\.json", console)
    assert remote_folder is not None and "c2c-fleet-remote-" in remote_folder[1], console
    assert not Path(remote_folder[1]).exists()
    devices = {p["value"].strip("'") for f in (reports / "allure-results").glob("*-result.json")
               for p in json.loads(f.read_text()).get("parameters", []) if p["name"] == "device"}
    assert devices == {"reference", "mutant:no-retry-api"}  # one merged Allure folder, both rigs in it


SYSTEM_PYTHON = "/usr/bin/python3"


def system_python_lacks_the_bench() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = "import sys; assert sys.version_info >= (3, 12); import pytest, pytest_bdd"
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, check=False).returncode != 0


@pytest.mark.parametrize("case", ["no sshd", "unknown key", "other host key", "no python", "system python",
                                  "no checkout"])
def test_a_rig_controller_that_cannot_be_reached_is_a_bench_error_row(tmp_path: Path, sshd: Sshd, case: str) -> None:
    closed = free_port()
    stranger = tmp_path / "stranger_key"
    if case == "unknown key":
        keygen(stranger)
    impostor = tmp_path / "known_hosts"  # the pinned key is not the one this sshd shows
    impostor.write_text(f"[127.0.0.1]:{sshd.port} {' '.join((sshd.home / 'client_key.pub').read_text().split()[:2])}\n")
    cases: dict[str, tuple[dict[str, object], str]] = {
        "no sshd": ({"port": closed}, f"port {closed}: Connection refused"),
        "unknown key": ({"identity": str(stranger)}, "Permission denied"),
        "other host key": ({"known_hosts": str(impostor)}, "Host key verification failed"),
        "no python": ({"python": "/nonexistent/python3"}, re.escape("/nonexistent/python3: No such file or directory")),
        "system python": ({"python": SYSTEM_PYTHON}, "needs 3.12|No module named"),  # not the bench's venv
        "no checkout": ({"repo": str(tmp_path / "nothing")}, re.escape(f"no c2c-bench checkout at {tmp_path / 'nothing'}")),
    }
    override, reason = cases[case]
    if case == "system python" and not system_python_lacks_the_bench():
        pytest.skip(f"{SYSTEM_PYTHON} is absent or has the bench's packages")
    lab = load_inventory(inventory(tmp_path, sshd, local=False, **override))
    rows = certify_fleet(lab, tmp_path / "reports", items=[ITEM])
    assert [r.status for r in rows] == ["BENCH ERROR"] and rows[0].verdicts is None, rows
    assert rows[0].headline.startswith("RemoteRigError: rig 'far' (") and "@127.0.0.1:" in rows[0].headline
    assert re.search(reason, rows[0].headline), rows[0].headline
    assert issubclass(RemoteRigError, BenchFailure)  # the bench's failure, never the device's
    assert not (tmp_path / "reports" / "far-reference" / "certificate.json").exists()


HOLD_PLACE = """
import signal, sys
from pathlib import Path
from harness.locks import HolderLock
assert HolderLock(Path(sys.argv[1])).try_acquire("lab-pc/bob pid-of-other-fleet: fleet elsewhere")
print("held", flush=True)
signal.pause()  # holds the place until the test ends it
"""


def test_a_place_held_on_the_controller_by_another_fleet_is_a_rig_busy_row(tmp_path: Path, sshd: Sshd) -> None:
    """Another machine's fleet holds the controller's only place: this fleet's own place is free,
    the controller's is not, so after the rig's wait the row is a bench error naming that holder."""
    lock = tmp_path / "controller-places" / "far.1.lock"
    other = subprocess.Popen([sys.executable, "-c", HOLD_PLACE, str(lock)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "held"
        started = time.monotonic()
        rows = certify_fleet(load_inventory(inventory(tmp_path, sshd, local=False, wait=1)), tmp_path / "reports",
                             items=[ITEM])
    finally:
        other.kill()
        other.wait()
    assert [r.status for r in rows] == ["BENCH ERROR"] and rows[0].verdicts is None, rows
    assert rows[0].headline.startswith(f"RigBusy: rig 'far' ({sshd.user}@127.0.0.1:{sshd.port}): {lock} on the "
                                       "controller is held by lab-pc/bob"), rows[0].headline
    assert time.monotonic() - started >= 1  # the rig's wait, on the controller
    assert not marked(str(tmp_path / "reports" / "far-reference"))  # no run was started


def marked(marker: str) -> list[int]:
    """Processes of one remote run: they carry its marker in their environment."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            if f"{RUN_MARKER_ENV}={marker}".encode() in environ.split(b"\0"):
                found.append(int(entry))
    return found


def started(run: str) -> bool:
    return len(marked(run)) >= 3


def ended(run: str) -> bool:
    return not marked(run)


def ssh_clients(port: int) -> list[int]:
    """This machine's ssh clients to the throwaway sshd (the gateway's own ssh process)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"ssh") and str(port).encode() in argv:
                found.append(int(entry))
    return found


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "fleet-killed"])
def test_a_stopped_fleet_stops_its_runs_and_leaves_no_process_behind(
    tmp_path: Path, sshd: Sshd, signum: signal.Signals
) -> None:
    """Ctrl-C: the fleet stops the controller's run and its own local one. Killed outright: the
    gateway's pipe closes and the controller stops on its own. Either way within 20 s, long before
    the smoke runs would end."""
    reports = tmp_path / "fleet"
    local = signum == signal.SIGINT  # a killed fleet cannot stop a local run: that is the terminal's Ctrl-C
    runs = [str(reports / "far-reference"), *([str(reports / "here-no-retry")] if local else [])]
    argv = [*fleet_argv(inventory(tmp_path, sshd, local=local), reports)[:-2], "--smoke"]  # a minute or more
    fleet = subprocess.Popen(as_a_terminal_starts_it(argv), cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        for run in runs:
            wait_until(functools.partial(started, run), 60, f"{run}: its cli, pytest and device")
        fleet.send_signal(signum)  # to the fleet alone: no terminal delivers it to the ssh client too
        output, _ = fleet.communicate(timeout=60)
    finally:
        if fleet.poll() is None:
            fleet.kill()
    if signum == signal.SIGINT:
        assert "KeyboardInterrupt" in output, output[-2000:]
    for run in runs:
        wait_until(functools.partial(ended, run), 20, f"every process of {run} to end")
        assert not (Path(run) / "certificate.json").exists()  # stopped, not finished
    wait_until(lambda: not ssh_clients(sshd.port), 10, "the gateway's ssh client to end")

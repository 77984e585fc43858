"""A rig's labgrid place, reserved on a real labgrid-coordinator for a fleet device's run."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.certify.coordinator import CoordinatorPlace, LabgridPlace, parse_coordinator_place
from harness.certify.fleet import DeviceOutcome, certify_fleet, load_inventory
from harness.errors import ConfigError
from tests.terminal import as_a_terminal_starts_it
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
COORDINATOR = str(BIN / "labgrid-coordinator") if (BIN / "labgrid-coordinator").exists() else shutil.which(
    "labgrid-coordinator")
CLIENT = str(BIN / "labgrid-client") if (BIN / "labgrid-client").exists() else shutil.which("labgrid-client")
pytestmark = pytest.mark.skipif(COORDINATOR is None or CLIENT is None, reason="labgrid is not installed")
ME = f"{socket.gethostname()}/{getpass.getuser()}"  # labgrid's name for this user on this host


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lg(address: str, place: str, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    """labgrid-client as a person at the lab would run it (as `user` when given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LG_")}
    if user is not None:
        env["LG_USERNAME"] = user
    assert CLIENT is not None
    return subprocess.run([CLIENT, "-x", address, "-p", place, *args], capture_output=True, text=True,
                          env=env, timeout=30, check=False)


def acquired_by(address: str, place: str) -> str:
    shown = lg(address, place, "show")
    assert shown.returncode == 0, shown.stderr
    return next(line.split(":", 1)[1].strip() for line in shown.stdout.splitlines()
                if line.strip().startswith("acquired:"))


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real labgrid-coordinator on loopback (its state files in its own folder) with place rig-1."""
    folder = tmp_path_factory.mktemp("coordinator")
    address = f"127.0.0.1:{free_port()}"
    assert COORDINATOR is not None
    with (folder / "coordinator.log").open("wb") as log:
        proc = subprocess.Popen([COORDINATOR, "--listen", address], cwd=folder, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: lg(address, "rig-1", "create").returncode == 0, 20, "the coordinator to create rig-1",
                   interval=0.3)
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(autouse=True)
def labgrid_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fleet acquires as labgrid's default identity for this user, whatever the shell exports."""
    for name in [k for k in os.environ if k.startswith("LG_")]:
        monkeypatch.delenv(name)


def inventory(tmp_path: Path, address: str, wait: float) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(textwrap.dedent(f'''
        places_dir = "{tmp_path / "places"}"

        [rigs.bench-a]
        kind = "local"
        coordinator = "{address}"
        place = "rig-1"
        wait = {wait}

        [[devices]]
        name = "reference"
        profile = "reference"
        rig = "bench-a"
    '''), encoding="utf-8")
    return path


def test_a_rig_names_both_coordinator_and_place_or_neither() -> None:
    assert parse_coordinator_place("a", {}) is None
    assert parse_coordinator_place("a", {"coordinator": "lab:20408", "place": "rig-1"}) == CoordinatorPlace(
        "lab:20408", "rig-1")
    for table in ({"coordinator": "lab:20408"}, {"place": "rig-1"}, {"coordinator": "lab", "place": "rig-1"}):
        with pytest.raises(ConfigError, match="rig 'a'"):
            parse_coordinator_place("a", table)


def test_the_fleet_holds_the_labgrid_place_for_the_run_and_releases_it_after(
        coordinator: str, tmp_path: Path) -> None:
    rows: list[DeviceOutcome] = []
    seen_during_run: list[str] = []

    def run() -> None:
        rows.extend(certify_fleet(load_inventory(inventory(tmp_path, coordinator, 10)), tmp_path / "reports",
                                  items=["C2C-HDR-01"]))

    fleet = threading.Thread(target=run)
    fleet.start()
    try:  # the run has started (its progress file exists): the coordinator names us as the holder
        wait_until(lambda: (tmp_path / "reports" / "reference" / "progress.jsonl").exists() or not fleet.is_alive(),
                   120, "the device's run to start", interval=0.2)
        seen_during_run.append(acquired_by(coordinator, "rig-1"))
    finally:
        fleet.join(timeout=300)
    assert not fleet.is_alive()
    assert seen_during_run == [ME]
    assert len(rows) == 1 and rows[0].verdicts is not None, rows  # a real run that reached a certificate
    assert rows[0].verdicts.get("C2C-HDR-01") == "pass", rows
    assert acquired_by(coordinator, "rig-1") == "None"  # released after the run


def test_a_place_another_user_holds_is_waited_for_then_rig_busy_naming_them(coordinator: str, tmp_path: Path) -> None:
    taken = lg(coordinator, "rig-1", "acquire", user="alice")
    assert taken.returncode == 0, taken.stderr
    try:
        rows = certify_fleet(load_inventory(inventory(tmp_path, coordinator, 1)), tmp_path / "reports",
                             items=["C2C-HDR-01"])
        assert acquired_by(coordinator, "rig-1").endswith("/alice")  # ours never released alice's place
    finally:
        assert lg(coordinator, "rig-1", "release", user="alice").returncode == 0
    (row,) = rows
    assert row.status == "BENCH ERROR" and row.verdicts is None, row
    assert row.headline.startswith("RigBusy:") and "rig-1" in row.headline and "/alice" in row.headline, row
    assert not (tmp_path / "reports" / "reference").exists()  # the device never ran


def test_a_place_freed_within_the_wait_is_acquired(coordinator: str) -> None:
    assert lg(coordinator, "rig-1", "acquire", user="bob").returncode == 0
    place = LabgridPlace(CoordinatorPlace(coordinator, "rig-1"), poll_s=0.2)
    freed = threading.Timer(1.0, lambda: lg(coordinator, "rig-1", "release", user="bob"))
    freed.start()
    try:
        with place.hold(20):
            assert acquired_by(coordinator, "rig-1") == ME
    finally:
        freed.join()
    assert acquired_by(coordinator, "rig-1") == "None"


def test_an_unreachable_coordinator_is_a_bench_error_row_naming_it(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    rows = certify_fleet(load_inventory(inventory(tmp_path, address, 1)), tmp_path / "reports",
                         items=["C2C-HDR-01"])
    (row,) = rows
    assert row.status == "BENCH ERROR" and row.headline.startswith("CoordinatorUnreachable:"), row
    assert address in row.headline and "refused" in row.headline.lower(), row


def test_ctrl_c_during_the_run_releases_the_place(coordinator: str) -> None:
    place = LabgridPlace(CoordinatorPlace(coordinator, "rig-1"))
    with pytest.raises(KeyboardInterrupt), place.hold(1):
        assert acquired_by(coordinator, "rig-1") == ME
        raise KeyboardInterrupt
    assert acquired_by(coordinator, "rig-1") == "None"


def test_ctrl_c_to_a_fleet_run_releases_the_labgrid_place(coordinator: str, tmp_path: Path) -> None:
    """The fleet as a terminal runs it, interrupted mid-run: its place is free again when it exits
    (the fleet turns Ctrl-C into stopping each run, so the hold ends as a run does)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LG_")}
    argv = [sys.executable, "-m", "harness.certify.cli", "fleet", "--inventory", str(inventory(tmp_path, coordinator, 10)),
            "--reports", str(tmp_path / "reports"), "--item", "C2C-HDR-01"]
    fleet = subprocess.Popen(as_a_terminal_starts_it(argv), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: (tmp_path / "reports" / "reference" / "progress.jsonl").exists() or fleet.poll() is not None,
                   120, "the device's run to start", interval=0.2)
        assert fleet.poll() is None and acquired_by(coordinator, "rig-1") == ME
        os.killpg(fleet.pid, signal.SIGINT)  # a terminal's Ctrl-C: the fleet's whole foreground group
        fleet.wait(timeout=90)
    finally:
        if fleet.poll() is None:
            fleet.kill()
            fleet.wait()
    assert fleet.returncode != 0  # interrupted, not a run that finished before the signal
    assert acquired_by(coordinator, "rig-1") == "None"


def test_a_place_the_coordinator_does_not_know_is_a_bench_error_naming_it(coordinator: str, tmp_path: Path) -> None:
    path = inventory(tmp_path, coordinator, 1)
    path.write_text(path.read_text().replace('place = "rig-1"', 'place = "rig-9"'), encoding="utf-8")
    (row,) = certify_fleet(load_inventory(path), tmp_path / "reports", items=["C2C-HDR-01"])
    assert row.status == "BENCH ERROR" and row.headline.startswith("CoordinatorError:"), row
    assert "'rig-9'" in row.headline and coordinator in row.headline and "matches nothing" in row.headline, row

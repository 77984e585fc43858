"""`c2c-certify fleet`: the inventory's checks, and a real fleet of two software devices."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from harness.certify import fleet
from harness.certify.fleet import (
    DeviceOutcome,
    FleetDevice,
    certify_fleet,
    fleet_bench,
    load_inventory,
    summary_html,
    verdict_diffs,
)
from harness.certify.places import RigBusy, RigPlaces
from harness.device.profile import load_profile
from harness.errors import BenchFailure, ConfigError
from tests.terminal import with_sigint_ignored
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]
INVENTORY = textwrap.dedent('''
    [rigs.local]
    kind = "local"
    slots = 2

    [[devices]]
    name = "reference"
    profile = "reference"
    rig = "local"

    [[devices]]
    name = "no-retry"
    profile = "mutant:no-retry-api"
    rig = "local"
''')


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_inventory_is_read_and_its_mistakes_named(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, INVENTORY))
    assert [d.profile for d in inv.devices] == ["reference", "mutant:no-retry-api"] and inv.rigs["local"].slots == 2
    for text, words in (
        (INVENTORY.replace('rig = "local"\n\n', 'rig = "bench9"\n\n', 1), "rig 'bench9'"),
        (INVENTORY.replace('kind = "local"', 'kind = "ssh"'), "rig 'local' is kind 'ssh': it needs host and repo"),
        (INVENTORY.replace('kind = "local"', 'kind = "usb"'), "'usb'"),
        (INVENTORY.replace('slots = 2', 'slots = 2\nwait = -1'), "wait"),
        (INVENTORY.replace('[rigs.local]', '[rigs."lab/1"]').replace('rig = "local"', 'rig = "lab/1"'), "rig name"),
        (INVENTORY.replace('name = "no-retry"', 'name = "reference"'), "unique"),
        (INVENTORY.replace('slots = 2', 'slots = 0'), "slots"),
        ('[rigs.local]\nkind = "local"\n', r"no \[\[devices\]\]"),
        ("[[devices]]\nname = 3\n", "name"),
    ):
        with pytest.raises(ConfigError, match=words):
            load_inventory(write(tmp_path, text))


def test_fleet_bench_compares_the_fleet_certificate_with_the_solo_one() -> None:
    solos = [DeviceOutcome("reference", "reference", "local", "done", seconds=100.0, verdicts={"A": "pass", "B": "fail"}),
             DeviceOutcome("m", "mutant:x", "local", "done", seconds=90.0, verdicts={"A": "fail"})]
    rows = [DeviceOutcome("reference", "reference", "local", "done", seconds=120.0, verdicts={"A": "pass", "B": "pass"}),
            DeviceOutcome("m", "mutant:x", "local", "done", seconds=110.0, verdicts={})]
    record = fleet_bench(rows, solos, 140.0)
    by_name = {r["name"]: r["value"] for r in record["results"]}
    assert by_name == {"fleet_ratio": 1.4, "fleet_solo_verdict_diffs": 2}  # one per device
    assert record["results"][1]["params"]["by_device"] == {"reference": 1, "m": 1}
    assert verdict_diffs({"A": "pass"}, None) == 1
    assert "<td>m</td>" in summary_html(rows, 140.0) and "certificate.html" in summary_html(rows, None)
    live = DeviceOutcome("r", "reference", "local", "certifying", scenarios=2, last="pass  Pairing")
    assert "<td>2 done; last: pass  Pairing</td>" in summary_html([live], None)  # the summary as it fills
    assert issubclass(RigBusy, BenchFailure)  # the bench's failure, never the device's


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_a_fleet_of_two_software_devices_certifies_each_as_its_solo_run(tmp_path: Path) -> None:
    reports = tmp_path / "fleet"
    done = subprocess.run([sys.executable, "-m", "harness.certify.cli", "fleet", "--inventory",
                           str(write(tmp_path, INVENTORY)), "--reports", str(reports), "--item", "C2C-AUTH-01",
                           "--solo-baseline", "--bench", str(tmp_path / "bench")],
                          cwd=REPO, capture_output=True, text=True, timeout=2300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((reports / "fleet.json").read_text())
    rows = {r["name"]: r for r in summary["devices"]}
    assert set(rows) == {"reference", "no-retry"} and all(r["state"] == "done" for r in rows.values())
    for name, row in rows.items():
        cert = json.loads((reports / name / "certificate.json").read_text())
        assert row["verdicts"] == {i: e["verdict"] for i, e in cert["items"].items()}
        assert row["verdicts"]["C2C-AUTH-01"] == "pass", row
        verify = subprocess.run([sys.executable, "-m", "harness.certify.cli", "verify", str(reports / name)],
                                cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
        assert verify.returncode == 0, verify.stderr
    assert "no-retry" in (reports / "fleet.html").read_text()
    # the merged Allure folder holds both devices' results, each with its device parameter
    devices = {p["value"].strip("'") for f in (reports / "allure-results").glob("*-result.json")
               for p in json.loads(f.read_text()).get("parameters", []) if p["name"] == "device"}
    assert devices == {"reference", "mutant:no-retry-api"}
    bench = {r["name"]: r for r in json.loads((tmp_path / "bench" / "fleet.json").read_text())["results"]}
    assert bench["fleet_solo_verdict_diffs"]["value"] == 0 and bench["fleet_ratio"]["value"] > 0


HOLD_PLACE = """
import sys, time
from pathlib import Path
from harness.certify.places import PlaceLock
place = PlaceLock(Path(sys.argv[1]), 1)
assert place.try_acquire("lab-pc/alice pid-of-other-run: fleet elsewhere")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold_in_another_process(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another run holding a place: a real process with the real flock (it ends, the kernel releases it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_PLACE, str(path), str(seconds)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def fake_runs(monkeypatch: pytest.MonkeyPatch, seconds: float) -> list[tuple[str, float, float]]:
    """certify_one replaced by a timed stand-in: what the place logic decides is when it runs."""
    runs: list[tuple[str, float, float]] = []

    def certify(device: FleetDevice, out: Path, **_: object) -> DeviceOutcome:
        started = time.monotonic()
        time.sleep(seconds)
        runs.append((device.name, started, time.monotonic()))
        return DeviceOutcome(device.name, device.profile, device.rig, "done", verdicts={})

    monkeypatch.setattr(fleet, "certify_one", certify)
    return runs


def overlaps(runs: list[tuple[str, float, float]]) -> bool:
    (_, a0, a1), (_, b0, b1) = runs
    return a0 < b1 and b0 < a1


@pytest.mark.parametrize("slots", [1, 2])
def test_devices_of_one_fleet_share_a_rig_s_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slots: int) -> None:
    runs = fake_runs(monkeypatch, 0.5)
    text = f'places_dir = "{tmp_path / "places"}"\n' + INVENTORY.replace("slots = 2", f"slots = {slots}")
    rows = certify_fleet(load_inventory(write(tmp_path, text)), tmp_path / "reports")
    assert [r.state for r in rows] == ["done", "done"] and len(runs) == 2
    assert overlaps(runs) is (slots == 2), runs  # a one-place rig certifies its devices one after another
    assert sorted(p.name for p in (tmp_path / "places").iterdir()) == [f"local.{n}.lock" for n in range(1, slots + 1)]


def test_a_place_held_by_another_run_is_waited_for_then_a_bench_error_naming_the_holder(tmp_path: Path) -> None:
    places = RigPlaces("bench", 1, 0.6, tmp_path, poll_s=0.05)
    other = hold_in_another_process(tmp_path / "bench.1.lock", 60)
    try:
        started = time.monotonic()
        busy = r"rig 'bench' is held by another run \(bench\.1\.lock by lab-pc/alice"
        with pytest.raises(RigBusy, match=busy), places.hold("me"):
            pass
        assert time.monotonic() - started >= 0.6
    finally:
        other.kill()  # a crashed holder: the kernel drops its flock
        other.wait()
    with places.hold("me") as place:
        assert place.holder() == "me"
    # a holder that finishes within the wait: the place is taken as soon as it is free
    other = hold_in_another_process(tmp_path / "bench.1.lock", 1.0)
    patient = RigPlaces("bench", 1, 60, tmp_path, poll_s=0.05)
    try:
        with patient.hold("me"):
            assert other.poll() is not None, "held the place while the other run still had it"
    finally:
        other.kill()
        other.wait()


def test_a_fleet_device_whose_rig_stays_held_is_a_bench_error_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = fake_runs(monkeypatch, 0.0)
    text = f'places_dir = "{tmp_path}"\n' + INVENTORY.replace("slots = 2", "slots = 1\nwait = 0.3")
    other = hold_in_another_process(tmp_path / "local.1.lock", 60)
    try:
        rows = certify_fleet(load_inventory(write(tmp_path, text)), tmp_path / "reports")
    finally:
        other.kill()
        other.wait()
    assert runs == [] and {r.status for r in rows} == {"BENCH ERROR"}, rows
    assert all("RigBusy" in r.headline and "lab-pc/alice" in r.headline and r.verdicts is None for r in rows)


def test_the_example_inventories_name_real_profiles() -> None:
    inventories = sorted((REPO / "fixtures" / "inventories").glob("*.toml"))
    assert [p.name for p in inventories] == ["labgrid-lab.toml", "remote-lab.toml", "software-lab.toml"]
    for path in inventories:
        for device in load_inventory(path).devices:
            assert load_profile(device.profile).device_id, device


def test_a_device_waits_behind_its_own_fleet_however_long_while_another_run_holds_the_other_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = fake_runs(monkeypatch, 0.8)  # each run outlasts the rig's wait
    text = f'places_dir = "{tmp_path}"\n' + INVENTORY.replace("slots = 2", "slots = 2\nwait = 0.3")
    other = hold_in_another_process(tmp_path / "local.2.lock", 60)
    try:
        rows = certify_fleet(load_inventory(write(tmp_path, text)), tmp_path / "reports")
    finally:
        other.kill()
        other.wait()
    assert [r.status for r in rows] == ["", ""] and len(runs) == 2 and not overlaps(runs), rows


def test_a_run_takes_the_fleets_ctrl_c_even_when_the_fleet_ignores_sigint(tmp_path: Path) -> None:
    """A fleet started with SIGINT ignored (a script's `c2c-certify fleet &`) hands that on to its
    runs; its stop (SIGINT to the run's session, SIGKILL 30 s later) must still end the run as a
    Ctrl-C does, with pytest tearing the bench down, not by the SIGKILL."""
    out = tmp_path / "run"
    argv = with_sigint_ignored([sys.executable, "-m", "harness.certify.cli", "run", "--device", "reference",
                                "--smoke", "--quiet", "--reports", str(out)])  # longer than the 30 s grace
    cancel = threading.Event()
    done: list[int] = []
    runner = threading.Thread(target=lambda: done.append(
        fleet.run_local(argv, out, tmp_path / "run.log", lambda line: None, cancel)))
    runner.start()
    try:
        wait_until(lambda: (out / "progress.jsonl").exists() or not runner.is_alive(), 120, "the run to start",
                   interval=0.2)
        assert runner.is_alive(), (tmp_path / "run.log").read_text()[-2000:]
    finally:
        cancel.set()
        runner.join(timeout=90)
    assert done and done[0] != -signal.SIGKILL, "the run ignored the fleet's SIGINT and was killed"
    assert not (out / "certificate.json").exists()  # stopped, not finished

"""`c2c-certify fleet --inventory lab.toml`: certify many devices at once, each on its rig.

The inventory names the rigs and the devices on them (TOML):

    places_dir = "/tmp/c2c-bench-places"  # optional: where the rigs' place locks live (the default)

    [rigs.local]               # software devices on this machine
    kind = "local"
    slots = 3                  # devices certified at the same time on this rig
    wait = 600                 # optional: seconds to wait for a place another run holds

    [rigs.bench-b]             # a rig controller reached over ssh (harness/certify/remote.py)
    kind = "ssh"
    host = "rig-b.lab"
    port = 22                  # optional
    user = "c2c"               # optional: ssh's default otherwise
    identity = "keys/rig-b"    # optional: private key file, relative to this inventory
    known_hosts = "keys/known_hosts"  # optional: pins the host key (StrictHostKeyChecking=yes)
    python = "/opt/c2c-bench/.venv/bin/python"  # the controller's interpreter
    repo = "/opt/c2c-bench"    # the c2c-bench checkout on the controller
    places_dir = "/tmp/c2c-bench-places"  # optional: the controller's place locks (the default)
    slots = 1

    [rigs.bench-c]             # a rig a labgrid coordinator also reserves (harness/certify/coordinator.py)
    kind = "local"
    coordinator = "127.0.0.1:20408"  # labgrid-coordinator's address
    place = "rig-1"            # the labgrid place acquired for each device's run, released after

    [[devices]]
    name = "reference"         # folder name under the fleet's reports, unique
    profile = "reference"      # profile name, path, or mutant:NAME
    rig = "local"
    workers = 1                # optional: shard this device's run (c2c-certify run --workers)

    [[devices]]
    name = "no-retry"
    profile = "mutant:no-retry-api"
    rig = "local"

    [[devices]]
    name = "camera-b"
    profile = "my-camera"      # a profile of the controller's checkout
    rig = "bench-b"

Each device is one ordinary `c2c-certify run` in its own process and reports folder
(`<reports>/<name>/`: certificate, sealed results, signed manifest; its console output in
`<reports>/<name>.log`), so its certificate is exactly what a solo run writes. The fleet
prints a line per device as its state changes and as each of its scenarios ends (the live
view), and adds `fleet.json` and `fleet.html` (one row per device: status, headline, seconds,
failing items, scenarios so far), rewritten as they change, and one `allure-results/` with
every device's results (each scenario carries the device as an Allure parameter). Ctrl-C stops
every run as a terminal's Ctrl-C would (its process group: pytest tears its bench down), then
kills what still carries the run's marker (C2C_FLEET_RUN in its environment).

Places (harness/certify/places.py): each rig has `slots` places, labgrid's reservation model
without its coordinator; a device holds one for its whole certification. A rig naming a labgrid
`coordinator` and `place` is also acquired there for each run (harness/certify/coordinator.py).

A device on a rig of kind "ssh" is certified by the same `c2c-certify run` on the rig
controller, through an execnet gateway (`ssh=... host//python=...`): its console output and
progress lines stream back into the fleet's live view and its reports folder is copied back
into `<reports>/<name>/`, so its row, certificate and Allure results are a local rig's
(harness/certify/remote.py). Its place is held on the fleet's machine and, for the run, on the
controller too (its `places_dir`), so fleets on different machines sharing one controller queue
there (RigBusy after the rig's `wait`). A controller that cannot be reached is a bench error
row (RemoteRigError naming the host and ssh's reason).
"""

from __future__ import annotations

import contextlib
import getpass
import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.certify.coordinator import (
    CoordinatorPlace,
    hold_coordinator_place,
    parse_coordinator_place,
)
from harness.certify.places import PLACES_DIR, RigPlaces
from harness.certify.remote import SshRig, certify_remote, parse_ssh_rig
from harness.certify.rig_controller import RUN_MARKER_ENV, ProgressTail, kill_marked, progress_note
from harness.errors import BenchFailure, ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
RIG_KINDS = ("local", "ssh")
DEFAULT_WAIT_S = 600.0


@dataclass(frozen=True)
class Rig:
    name: str
    kind: str
    slots: int
    wait: float = DEFAULT_WAIT_S
    ssh: SshRig | None = None  # kind "ssh": how to reach the rig controller
    labgrid: CoordinatorPlace | None = None  # a labgrid coordinator's place reserved for each run


@dataclass(frozen=True)
class FleetDevice:
    name: str
    profile: str
    rig: str
    workers: int = 1


@dataclass(frozen=True)
class Inventory:
    rigs: dict[str, Rig]
    devices: list[FleetDevice]
    places_dir: Path = PLACES_DIR


@dataclass
class DeviceOutcome:
    """One device's row of the fleet summary."""

    name: str
    profile: str
    rig: str
    state: str  # waiting, certifying, done
    exit_code: int | None = None
    status: str = ""
    headline: str = ""
    seconds: float = 0.0
    failing: tuple[str, ...] = ()
    verdicts: dict[str, str] | None = None  # item -> verdict, from the device's certificate
    scenarios: int = 0  # scenarios finished so far (the live view)
    last: str = ""  # the last one: "<verdict>  <scenario>"


def load_inventory(path: Path) -> Inventory:
    """Parse and check an inventory; every mistake is a ConfigError naming the entry."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"inventory {path}: {exc}") from None
    rigs: dict[str, Rig] = {}
    for name, table in dict(data.get("rigs", {})).items():
        kind, slots, wait = table.get("kind", "local"), table.get("slots", 1), table.get("wait", DEFAULT_WAIT_S)
        if kind not in RIG_KINDS:
            raise ConfigError(f"inventory {path}: rig {name!r} is {kind!r}; this bench drives {', '.join(RIG_KINDS)} rigs")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ConfigError(f"inventory {path}: rig name {name!r} must be letters, digits, '.', '_' or '-' "
                              "(it names the rig's place lock files)")
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ConfigError(f"inventory {path}: rig {name!r} slots must be a positive integer")
        if isinstance(wait, bool) or not isinstance(wait, int | float) or wait < 0:
            raise ConfigError(f"inventory {path}: rig {name!r} wait must be a number of seconds >= 0")
        try:
            ssh = parse_ssh_rig(name, table, path.parent) if kind == "ssh" else None
            labgrid = parse_coordinator_place(name, table)
        except ConfigError as exc:
            raise ConfigError(f"inventory {path}: {exc}") from None
        rigs[name] = Rig(name, kind, slots, float(wait), ssh, labgrid)
    places_dir = data.get("places_dir", str(PLACES_DIR))
    if not isinstance(places_dir, str) or not places_dir:
        raise ConfigError(f"inventory {path}: places_dir must be a directory path")
    devices: list[FleetDevice] = []
    for n, table in enumerate(data.get("devices", []), 1):
        name, profile, rig = table.get("name"), table.get("profile"), table.get("rig", "local")
        workers = table.get("workers", 1)
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise ConfigError(f"inventory {path}: device #{n} needs a name usable as a folder name")
        if not isinstance(profile, str) or not profile:
            raise ConfigError(f"inventory {path}: device {name!r} needs a profile")
        if rig not in rigs:
            raise ConfigError(f"inventory {path}: device {name!r} is on rig {rig!r}, which [rigs] does not list")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"inventory {path}: device {name!r} workers must be a positive integer")
        devices.append(FleetDevice(name, profile, str(rig), workers))
    if not devices:
        raise ConfigError(f"inventory {path}: no [[devices]]")
    names = [d.name for d in devices]
    if len(set(names)) != len(names):
        raise ConfigError(f"inventory {path}: device names must be unique")
    return Inventory(rigs, devices, Path(places_dir))


def place_holder(reports: Path, device: FleetDevice) -> str:
    """What a place lock says about its holder: labgrid's "host/user", then this run and device."""
    return f"{socket.gethostname()}/{getpass.getuser()} pid {os.getpid()}: fleet {reports} device {device.name}"


ProgressSink = Callable[[str], None]


def cli_run_args(device: FleetDevice, *, smoke: bool, items: Sequence[str], seed: int) -> list[str]:
    """`c2c-certify run`'s options for one device, but --reports (each rig says where)."""
    args = ["--device", device.profile, "--seed", str(seed), "--quiet", "--workers", str(device.workers)]
    if smoke:
        args.append("--smoke")
    for item in items:
        args += ["--item", item]
    return args


def run_argv(device: FleetDevice, out: Path, *, smoke: bool, items: Sequence[str], seed: int) -> list[str]:
    """The `c2c-certify run` of one device (a process of its own: a crash takes only that device down)."""
    return [sys.executable, "-m", "harness.certify.cli", "run",
            *cli_run_args(device, smoke=smoke, items=items, seed=seed), "--reports", str(out)]


def certify_one(device: FleetDevice, out: Path, *, smoke: bool, items: Sequence[str], seed: int,
                rig: Rig | None = None, place: int = 1, holder: str = "", on_progress: ProgressSink | None = None,
                cancel: threading.Event | None = None) -> DeviceOutcome:
    """Certify one device in its own process (on the rig controller for an ssh rig); its row from the
    certificate it wrote. `cancel` stops the run as Ctrl-C would; RemoteRigError if a controller fails."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log_path = out.parent / f"{out.name}.log"  # beside the folder: the run's manifest lists what is inside
    sink: ProgressSink = on_progress or (lambda line: None)
    stop = cancel or threading.Event()
    if rig is not None and rig.ssh is not None:
        exit_code = certify_remote(rig.name, rig.ssh, cli_run_args(device, smoke=smoke, items=items, seed=seed),
                                   out, log_path, marker=str(out), place=place, holder=holder or str(out),
                                   wait=rig.wait, on_progress=sink, cancel=stop)
    else:
        exit_code = run_local(run_argv(device, out, smoke=smoke, items=items, seed=seed), out, log_path, sink, stop)
    outcome = DeviceOutcome(device.name, device.profile, device.rig, "done", exit_code=exit_code,
                            seconds=round(time.monotonic() - started, 1))
    cert_path = out / "certificate.json"
    if not cert_path.exists():
        outcome.status, outcome.headline = "NO CERTIFICATE", f"see {log_path}"
        return outcome
    cert = json.loads(cert_path.read_text(encoding="utf-8"))
    summary = cert.get("summary", {})
    outcome.status = str(summary.get("status", ""))
    outcome.headline = str(cert.get("headline", outcome.status))
    outcome.failing = tuple(summary.get("failing") or ())
    outcome.verdicts = {i: str(e.get("verdict")) for i, e in cert.get("items", {}).items()}
    return outcome


def run_local(argv: list[str], out: Path, log_path: Path, on_progress: ProgressSink, cancel: threading.Event) -> int:
    """One run on this machine: console into `log_path`, progress lines as they land. The run has a
    session of its own; cancelled or interrupted, its process group gets a Ctrl-C (pytest tears the
    bench down) and, 30 s later, SIGKILL (a Ctrl-C to the run alone would orphan its pytest); then
    any process still carrying the run's marker (an emulator an interrupted pytest left) is killed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
           RUN_MARKER_ENV: str(out)}
    tail = ProgressTail(out / "progress.jsonl")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            while proc.poll() is None and not cancel.wait(0.3):
                for line in tail.new_lines():
                    on_progress(line)
        finally:
            if proc.poll() is None:
                stop_group(proc, grace_s=30)
                kill_marked(str(out))
    for line in tail.new_lines():
        on_progress(line)
    return proc.returncode


def stop_group(proc: subprocess.Popen[bytes], *, grace_s: float) -> None:
    """Ctrl-C for a run's process group, SIGKILL for what is left of it after `grace_s`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader: a zombie still counts as a member
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break  # pytest and every member have finished their teardown
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def certify_fleet(inventory: Inventory, reports: Path, *, smoke: bool = False, items: Sequence[str] = (),
                  seed: int = 1, on_change: Callable[[list[DeviceOutcome]], None] | None = None) -> list[DeviceOutcome]:
    """Every device of the inventory, concurrently up to each rig's slots; the rows in inventory order.
    Ctrl-C (or a bug) stops every run, local and remote, before it propagates."""
    rows = [DeviceOutcome(d.name, d.profile, d.rig, "waiting") for d in inventory.devices]
    lock = threading.Lock()
    cancel = threading.Event()
    places = {name: RigPlaces(name, rig.slots, rig.wait, inventory.places_dir) for name, rig in inventory.rigs.items()}

    def changed() -> None:
        if on_change is not None:
            on_change(list(rows))

    def progress(n: int, line: str) -> None:
        note = progress_note(line)
        if note is not None:
            with lock:
                rows[n].scenarios += 1
                rows[n].last = note
                changed()

    def job(n: int, device: FleetDevice) -> None:
        try:
            holder = place_holder(reports, device)
            rig = inventory.rigs[device.rig]
            with (places[device.rig].hold(holder, cancel=cancel) as place,
                  hold_coordinator_place(rig.labgrid, rig.wait, cancel=cancel)):
                with lock:
                    rows[n].state = "certifying"
                    changed()
                outcome = certify_one(device, reports / device.name, smoke=smoke, items=items, seed=seed,
                                      rig=inventory.rigs[device.rig], place=place.number, holder=holder,
                                      on_progress=lambda line: progress(n, line), cancel=cancel)
        except BenchFailure as exc:  # the bench's, not the device's: no certificate, the holder or host named
            outcome = DeviceOutcome(device.name, device.profile, device.rig, "done", status="BENCH ERROR",
                                    headline=f"{type(exc).__name__}: {exc}")
        with lock:
            outcome.scenarios, outcome.last = rows[n].scenarios, rows[n].last  # the live view's count stays
            rows[n] = outcome
            changed()

    with ThreadPoolExecutor(max_workers=len(inventory.devices)) as pool:
        futures = [pool.submit(job, n, d) for n, d in enumerate(inventory.devices)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            cancel.set()  # leaving the pool waits for every job: each stops its run first
            raise
    gather_allure(reports, [d.name for d in inventory.devices])
    return rows


def gather_allure(reports: Path, names: Sequence[str]) -> Path:
    """One Allure results folder for the fleet: every device's files (unique uuids), side by side."""
    merged = reports / "allure-results"
    merged.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = reports / name / "allure-results"
        if source.is_dir():
            for path in source.iterdir():
                if path.is_file():
                    shutil.copy2(path, merged / path.name)
    return merged


def write_summary(reports: Path, rows: Sequence[DeviceOutcome], *, wall_s: float | None = None) -> Path:
    """fleet.json and fleet.html (atomic replace: a reader never sees half a file)."""
    reports.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {"devices": [asdict(r) for r in rows], "wall_s": wall_s,
                                "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _replace(reports / "fleet.json", json.dumps(document, indent=2))
    _replace(reports / "fleet.html", summary_html(rows, wall_s))
    return reports / "fleet.json"


def summary_html(rows: Sequence[DeviceOutcome], wall_s: float | None) -> str:
    e = html.escape
    body = "".join(
        f"<tr><td>{e(r.name)}</td><td><code>{e(r.profile)}</code></td><td>{e(r.rig)}</td><td>{e(r.state)}</td>"
        f"<td>{e(r.status)}</td><td>{e(r.headline or (f'{r.scenarios} done; last: {r.last}' if r.scenarios else ''))}</td><td>{r.seconds:.0f}</td><td>{e(' '.join(r.failing))}</td>"
        f"<td>{f'<a href=\"{e(r.name)}/certificate.html\">certificate</a>' if r.verdicts is not None else ''}</td></tr>"
        for r in rows)
    total = f"<p>Fleet wall time: {wall_s:.0f} s</p>" if wall_s is not None else "<p>Certifying…</p>"
    return ("<!doctype html><meta charset=utf-8><title>C2C fleet certification</title>"
            "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px 8px}"
            "table{border-collapse:collapse}</style><h1>C2C fleet certification</h1>" + total +
            "<table><tr><th>device</th><th>profile</th><th>rig</th><th>state</th><th>status</th><th>headline</th>"
            "<th>s</th><th>failing</th><th></th></tr>" + body + "</table>\n")


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def verdict_diffs(a: dict[str, str] | None, b: dict[str, str] | None) -> int:
    """Items whose verdict differs between two certificates of the same device (missing counts)."""
    a, b = a or {}, b or {}
    return sum(1 for item in set(a) | set(b) if a.get(item) != b.get(item))


def fleet_bench(rows: Sequence[DeviceOutcome], solos: Sequence[DeviceOutcome], wall_s: float) -> dict[str, Any]:
    """reports/bench/fleet.json: fleet wall time over one device alone (the first device's solo
    time), and how many item verdicts of each device's fleet certificate differ from its solo one."""
    first = solos[0]
    by_name = {r.name: r for r in rows}
    diffs = {s.name: verdict_diffs(s.verdicts, by_name[s.name].verdicts if s.name in by_name else None)
             for s in solos}
    params = {"devices": len(rows), "solo_device": first.profile, "solo_s": first.seconds,
              "solo_s_by_device": {s.name: s.seconds for s in solos}, "fleet_s": round(wall_s, 1)}
    return {"benchmark": "fleet", "results": [
        {"name": "fleet_ratio", "value": round(wall_s / first.seconds, 2) if first.seconds else None,
         "unit": "ratio", "params": params},
        {"name": "fleet_solo_verdict_diffs", "value": sum(diffs.values()), "unit": "count",
         "params": {**params, "by_device": diffs}},
    ]}


def fleet_command(inventory_path: Path, reports: Path, *, smoke: bool, items: Sequence[str], seed: int,
                  bench: Path | None) -> int:
    """`c2c-certify fleet`: certify the inventory, print each row as it changes, write the summary;
    with `bench`, first every device alone (the first one's time is the baseline of fleet_ratio;
    each solo certificate is what that device's fleet certificate must match)."""
    inventory = load_inventory(inventory_path)
    reports.mkdir(parents=True, exist_ok=True)
    solos: list[DeviceOutcome] = []
    if bench is not None:  # every device alone first, one after the other: its certificate to match
        for device in inventory.devices:
            solo = certify_one(device, reports / "solo" / device.name, smoke=smoke, items=items, seed=seed,
                               rig=inventory.rigs[device.rig])
            solos.append(solo)
            print(f"  solo {device.name}: {solo.seconds:.0f} s, {solo.headline}", flush=True)
    started = time.monotonic()
    seen: set[tuple[str, str]] = set()
    shown: dict[str, int] = {}

    def show(rows: list[DeviceOutcome]) -> None:
        write_summary(reports, rows)  # the summary fills as devices finish
        for row in rows:
            if (row.name, row.state) not in seen:
                seen.add((row.name, row.state))
                took = f" {row.seconds:.0f} s" if row.state == "done" else ""
                print(f"  {row.name:<20} {row.state:<11}{took} {row.headline}", flush=True)
            if row.state == "certifying" and row.scenarios > shown.get(row.name, 0):
                shown[row.name] = row.scenarios  # the run's progress line, local or from a rig controller
                print(f"  {row.name:<20} {row.scenarios:>4}  {row.last}", flush=True)

    rows = certify_fleet(inventory, reports, smoke=smoke, items=items, seed=seed, on_change=show)
    wall = time.monotonic() - started
    write_summary(reports, rows, wall_s=round(wall, 1))
    if solos and bench is not None:
        bench.mkdir(parents=True, exist_ok=True)
        (bench / "fleet.json").write_text(json.dumps(fleet_bench(rows, solos, wall), indent=2), encoding="utf-8")
        print(f"  bench: {bench / 'fleet.json'}")
    print(f"fleet of {len(rows)} device(s) in {wall:.0f} s: {reports / 'fleet.json'} {reports / 'fleet.html'}")
    return 0 if all(r.verdicts is not None for r in rows) else 1

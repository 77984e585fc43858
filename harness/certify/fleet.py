"""`c2c-certify fleet --inventory lab.toml`: certify many devices at once, each on its rig.

The inventory names the rigs and the devices on them (TOML):

    places_dir = "/tmp/c2c-bench-places"  # optional: where the rigs' place locks live (the default)

    [rigs.local]               # software devices on this machine
    kind = "local"
    slots = 3                  # devices certified at the same time on this rig
    wait = 600                 # optional: seconds to wait for a place another run holds

    [[devices]]
    name = "reference"         # folder name under the fleet's reports, unique
    profile = "reference"      # profile name, path, or mutant:NAME
    rig = "local"
    workers = 1                # optional: shard this device's run (c2c-certify run --workers)

    [[devices]]
    name = "no-retry"
    profile = "mutant:no-retry-api"
    rig = "local"

Each device is one ordinary `c2c-certify run` in its own process and reports folder
(`<reports>/<name>/`: certificate, sealed results, signed manifest; its console output in
`<reports>/<name>.log`), so its certificate is
exactly what a solo run writes. The fleet adds `fleet.json` and `fleet.html` (one row per
device: status, headline, seconds, failing items), rewritten as each device finishes, and one
`allure-results/` with every device's results (each scenario carries the device as an Allure
parameter).

Places: labgrid's reservation model, without its coordinator. In labgrid
(labgrid/remote/coordinator.py, client.py) a *place* is a rig that one client acquires at a
time: the coordinator records the holder as "host/user", and a second `acquire` is refused
with "Place X is already acquired by host/user"; waiting is a *reservation* (a token in a
queue with a priority, allocated when the place frees, expired unless the client keeps
polling within its timeout); releasing is explicit (`labgrid-client release`). Here each rig
has `slots` places; a device holds one for its whole certification, as an flock on
`<places_dir>/<rig>.<n>.lock` whose text names the holder ("host/user pid N: fleet REPORTS
device NAME"). Devices of one fleet on one rig queue for its places in this process (a
one-place hardware rig certifies its devices one after another); a place held by another run
(another fleet or certification sharing the directory) is polled for up to the rig's `wait`
seconds, then the device's row is a bench error naming the holder (`RigBusy`). The kernel
drops an flock when its process ends, so a crash or Ctrl-C releases the place. Not copied:
the coordinator and its gRPC protocol, reservation tokens and priorities, tag filters that
pick any matching place, `allow` (sharing an acquired place with another user) and the
exporter resources a labgrid place acquires with it.

Remote rigs (kind "ssh", execnet `ssh=host//python=...` rig controllers) are refused with a
ConfigError that says what is missing: see `REMOTE_RIG_MISSING`.
"""

from __future__ import annotations

import contextlib
import getpass
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import BenchFailure, ConfigError
from harness.locks import HolderLock

REPO_ROOT = Path(__file__).resolve().parents[2]
RIG_KINDS = ("local",)
PLACES_DIR = Path("/tmp/c2c-bench-places")  # beside the relay port locks: shared by every user's runs
DEFAULT_WAIT_S = 600.0
REMOTE_RIG_MISSING = (
    "remote rig controllers are not implemented: a fleet starts each device's `c2c-certify run` as a child "
    "process on this machine, and nothing yet starts it through an execnet gateway (ssh=host//python=...) on the "
    "controller, takes the controller's place lock, or copies the device's reports folder back; nor could it be "
    "tested here (no ssh server on this bench). Run `c2c-certify fleet` on the rig controller itself, with its rigs "
    'as kind = "local"')


class RigBusy(BenchFailure):
    """Every place of a rig stayed held by another run for longer than the rig's `wait`."""


@dataclass(frozen=True)
class Rig:
    name: str
    kind: str
    slots: int
    wait: float = DEFAULT_WAIT_S


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


def load_inventory(path: Path) -> Inventory:
    """Parse and check an inventory; every mistake is a ConfigError naming the entry."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"inventory {path}: {exc}") from None
    rigs: dict[str, Rig] = {}
    for name, table in dict(data.get("rigs", {})).items():
        kind, slots, wait = table.get("kind", "local"), table.get("slots", 1), table.get("wait", DEFAULT_WAIT_S)
        if kind == "ssh":
            raise ConfigError(f"inventory {path}: rig {name!r} is kind 'ssh': {REMOTE_RIG_MISSING}")
        if kind not in RIG_KINDS:
            raise ConfigError(f"inventory {path}: rig {name!r} is {kind!r}; this bench drives {', '.join(RIG_KINDS)} rigs")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ConfigError(f"inventory {path}: rig name {name!r} must be letters, digits, '.', '_' or '-' "
                              "(it names the rig's place lock files)")
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ConfigError(f"inventory {path}: rig {name!r} slots must be a positive integer")
        if isinstance(wait, bool) or not isinstance(wait, int | float) or wait < 0:
            raise ConfigError(f"inventory {path}: rig {name!r} wait must be a number of seconds >= 0")
        rigs[name] = Rig(name, kind, slots, float(wait))
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


class PlaceLock:
    """One place of one rig: a harness.locks.HolderLock on `<dir>/<rig>.<n>.lock`."""

    def __init__(self, path: Path, number: int) -> None:
        self.path = path
        self.number = number
        self._lock = HolderLock(path)

    def try_acquire(self, holder: str) -> bool:
        """Take the place if no one holds it (never blocks)."""
        return self._lock.try_acquire(holder)

    def holder(self) -> str:
        """Who holds the place, as its holder wrote it."""
        return self._lock.holder()

    def release(self) -> None:
        self._lock.release()


class RigPlaces:
    """The places of one rig: this run's devices queue for them, other runs' holds are waited out."""

    def __init__(self, rig: Rig, directory: Path, *, poll_s: float = 0.2) -> None:
        self.rig = rig
        self.directory = directory
        self.poll_s = poll_s
        self._mine: set[int] = set()
        self._turn = threading.Condition()

    def _lock(self, n: int) -> PlaceLock:
        return PlaceLock(self.directory / f"{self.rig.name}.{n}.lock", n)

    @contextlib.contextmanager
    def hold(self, holder: str) -> Iterator[PlaceLock]:
        """Hold one place while the body runs; RigBusy once other runs held every free one for `wait` s."""
        place = self._acquire(holder)
        try:
            yield place
        finally:
            with self._turn:
                place.release()
                self._mine.discard(place.number)
                self._turn.notify_all()

    def _acquire(self, holder: str) -> PlaceLock:
        deadline: float | None = None
        with self._turn:
            while True:
                for n in range(1, self.rig.slots + 1):
                    place = self._lock(n)
                    if n not in self._mine and place.try_acquire(holder):
                        self._mine.add(n)
                        return place
                if self._mine:  # this run holds a place of the rig: queue behind it, however long
                    deadline = None
                    self._turn.wait(self.poll_s)
                    continue
                now = time.monotonic()  # every place is another run's: wait out `wait`, then name them
                deadline = deadline if deadline is not None else now + self.rig.wait
                if now >= deadline:
                    held = "; ".join(f"{self._lock(n).path.name} by {self._lock(n).holder()}"
                                     for n in range(1, self.rig.slots + 1))
                    raise RigBusy(f"rig {self.rig.name!r} is held by another run ({held}); "
                                  f"waited {self.rig.wait:.0f} s")
                self._turn.wait(min(self.poll_s, deadline - now))


def place_holder(reports: Path, device: FleetDevice) -> str:
    """What a place lock says about its holder: labgrid's "host/user", then this run and device."""
    return f"{socket.gethostname()}/{getpass.getuser()} pid {os.getpid()}: fleet {reports} device {device.name}"


def run_argv(device: FleetDevice, out: Path, *, smoke: bool, items: Sequence[str], seed: int) -> list[str]:
    """The `c2c-certify run` of one device (a process of its own: a crash takes only that device down)."""
    argv = [sys.executable, "-m", "harness.certify.cli", "run", "--device", device.profile, "--seed", str(seed),
            "--reports", str(out), "--quiet", "--workers", str(device.workers)]
    if smoke:
        argv.append("--smoke")
    for item in items:
        argv += ["--item", item]
    return argv


def certify_one(device: FleetDevice, out: Path, *, smoke: bool, items: Sequence[str], seed: int) -> DeviceOutcome:
    """Certify one device in its own process; its row from the certificate it wrote."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    started = time.monotonic()
    log_path = out.parent / f"{out.name}.log"  # beside the folder: the run's manifest lists what is inside
    with log_path.open("wb") as log:
        done = subprocess.run(run_argv(device, out, smoke=smoke, items=items, seed=seed), cwd=REPO_ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
    outcome = DeviceOutcome(device.name, device.profile, device.rig, "done", exit_code=done.returncode,
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


def certify_fleet(inventory: Inventory, reports: Path, *, smoke: bool = False, items: Sequence[str] = (),
                  seed: int = 1, on_change: Callable[[list[DeviceOutcome]], None] | None = None) -> list[DeviceOutcome]:
    """Every device of the inventory, concurrently up to each rig's slots; the rows in inventory order."""
    rows = [DeviceOutcome(d.name, d.profile, d.rig, "waiting") for d in inventory.devices]
    lock = threading.Lock()
    places = {name: RigPlaces(rig, inventory.places_dir) for name, rig in inventory.rigs.items()}

    def changed() -> None:
        if on_change is not None:
            on_change(list(rows))

    def job(n: int, device: FleetDevice) -> None:
        try:
            with places[device.rig].hold(place_holder(reports, device)):
                with lock:
                    rows[n].state = "certifying"
                    changed()
                outcome = certify_one(device, reports / device.name, smoke=smoke, items=items, seed=seed)
        except RigBusy as exc:  # a bench error, not the device's: no certificate, the holder named
            outcome = DeviceOutcome(device.name, device.profile, device.rig, "done", status="BENCH ERROR",
                                    headline=f"{type(exc).__name__}: {exc}")
        with lock:
            rows[n] = outcome
            changed()

    with ThreadPoolExecutor(max_workers=len(inventory.devices)) as pool:
        for future in [pool.submit(job, n, d) for n, d in enumerate(inventory.devices)]:
            future.result()
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
        f"<td>{e(r.status)}</td><td>{e(r.headline)}</td><td>{r.seconds:.0f}</td><td>{e(' '.join(r.failing))}</td>"
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


def fleet_bench(rows: Sequence[DeviceOutcome], solo: DeviceOutcome, wall_s: float) -> dict[str, Any]:
    """reports/bench/fleet.json: fleet wall time over the first device's solo time, and whether its
    fleet certificate matches its solo one."""
    params = {"devices": len(rows), "solo_device": solo.profile, "solo_s": solo.seconds, "fleet_s": round(wall_s, 1)}
    twin = next((r for r in rows if r.profile == solo.profile), None)
    return {"benchmark": "fleet", "results": [
        {"name": "fleet_ratio", "value": round(wall_s / solo.seconds, 2) if solo.seconds else None,
         "unit": "ratio", "params": params},
        {"name": "fleet_solo_verdict_diffs", "value": verdict_diffs(solo.verdicts, twin.verdicts if twin else None),
         "unit": "count", "params": params},
    ]}


def fleet_command(inventory_path: Path, reports: Path, *, smoke: bool, items: Sequence[str], seed: int,
                  bench: Path | None) -> int:
    """`c2c-certify fleet`: certify the inventory, print each row as it changes, write the summary;
    with `bench`, first the inventory's first device alone (the baseline of fleet_ratio)."""
    inventory = load_inventory(inventory_path)
    reports.mkdir(parents=True, exist_ok=True)
    solo = None
    if bench is not None:
        first = inventory.devices[0]
        solo = certify_one(first, reports / "solo" / first.name, smoke=smoke, items=items, seed=seed)
        print(f"  solo {first.name}: {solo.seconds:.0f} s, {solo.headline}", flush=True)
    started = time.monotonic()
    seen: set[tuple[str, str]] = set()

    def show(rows: list[DeviceOutcome]) -> None:
        write_summary(reports, rows)  # the summary fills as devices finish
        for row in rows:
            if (row.name, row.state) not in seen:
                seen.add((row.name, row.state))
                took = f" {row.seconds:.0f} s" if row.state == "done" else ""
                print(f"  {row.name:<20} {row.state:<11}{took} {row.headline}", flush=True)

    rows = certify_fleet(inventory, reports, smoke=smoke, items=items, seed=seed, on_change=show)
    wall = time.monotonic() - started
    write_summary(reports, rows, wall_s=round(wall, 1))
    if solo is not None and bench is not None:
        bench.mkdir(parents=True, exist_ok=True)
        (bench / "fleet.json").write_text(json.dumps(fleet_bench(rows, solo, wall), indent=2), encoding="utf-8")
        print(f"  bench: {bench / 'fleet.json'}")
    print(f"fleet of {len(rows)} device(s) in {wall:.0f} s: {reports / 'fleet.json'} {reports / 'fleet.html'}")
    return 0 if all(r.verdicts is not None for r in rows) else 1

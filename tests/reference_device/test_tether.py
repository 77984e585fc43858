"""Tethered camera source: real libgphoto2 virtual camera (subprocesses) and a fake adapter
for the error paths the virtual camera cannot produce (-53, unplug/replug)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.faults.media import MediaKit
from reference_device.errors import ConfigError
from reference_device.sources.base import CapturedFile
from reference_device.sources.camera import (
    CameraError,
    CameraEvent,
    CameraFileInfo,
    CameraPath,
)
from reference_device.sources.tether import TetherConfig, TetherError, TetherSource
from reference_device.sources.tether_ledger import LEDGER_NAME
from tests.waiting import wait_until as wait_for

REPO = Path(__file__).resolve().parents[2]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the real virtual camera -----------------------------------------------------------------
@pytest.fixture
def vcam(tmp_path: Path) -> Path:
    """A VCAMERADIR holding exactly one JPG (the frame every capture returns)."""
    vdir = tmp_path / "vcam"
    MediaKit(seed=21, stash_dir=tmp_path / "stash").generate(["jpg"], vdir)
    assert len(list(vdir.glob("*.JPG"))) == 1
    return vdir


def _env(vcam: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["VCAMERADIR"] = str(vcam)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_tether(
    vcam: Path, tmp_path: Path, *args: str, timeout: float = 60
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    cmd = [
        sys.executable,
        "-m",
        "reference_device.sources.tether_cli",
        "--dest",
        str(tmp_path / "dest"),
        "--state",
        str(tmp_path / "state"),
        *args,
    ]
    done = subprocess.run(
        cmd, env=_env(vcam), cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode == 0, done.stderr[-2000:]
    return [x for x in lines if x["event"] == "file"], lines[-1]


def test_virtual_camera_frames_arrive_byte_identical(vcam: Path, tmp_path: Path) -> None:
    source_sha = sha(next(vcam.glob("*.JPG")))
    files, final = run_tether(
        vcam, tmp_path, "--trigger-every", "0.05", "--max", "5", "--timeout", "45"
    )
    assert len(files) == 5
    paths = [Path(f["path"]) for f in files]
    assert len(set(paths)) == 5
    assert all(p.parent == tmp_path / "dest" and p.name.startswith("GPH_") for p in paths)
    assert all(sha(p) == source_sha == f["sha256"] for p, f in zip(paths, files, strict=True))
    assert final["camera"] == "Nikon DSC D750" and final["downloaded"] == 5
    ledger = [json.loads(x) for x in (tmp_path / "state" / LEDGER_NAME).read_text().splitlines()]
    assert sum(e["state"] == "downloaded" for e in ledger) == 5
    # the source JPG was on the card before the first connection: baseline, not downloaded
    assert any(e["state"] == "preexisting" for e in ledger)
    assert not list((tmp_path / "dest").glob(".*.part"))


def test_27th_capture_limit_is_handled_by_a_new_session(vcam: Path, tmp_path: Path) -> None:
    source_sha = sha(next(vcam.glob("*.JPG")))
    files, final = run_tether(
        vcam, tmp_path, "--trigger-every", "0.03", "--max", "30", "--timeout", "90", timeout=120
    )
    # --max stops the run once 30 have arrived; a frame already on its way may still land
    assert len(files) >= 30
    assert len({f["path"] for f in files}) == len(files)  # reused camera names got distinct local names
    assert all(f["sha256"] == source_sha for f in files)
    assert final["reinits"] >= 1


BUSY_SCRIPT = textwrap.dedent(
    """
    import json, sys, threading, time
    from pathlib import Path
    from reference_device.sources.tether import TetherConfig, TetherSource
    dest, state, src_name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    files = []
    source = TetherSource(TetherConfig(dest=dest, state_dir=state, busy_retries=60, busy_backoff_max=0.05))
    source.start(files.append)
    deadline = time.monotonic() + 20
    while source.status()["state"] != "connected":
        assert time.monotonic() < deadline, source.status()
        time.sleep(0.01)
    raw = source.adapter.raw          # the same gphoto2 Camera, used WITHOUT the source's lock
    import gphoto2 as gp
    stop = threading.Event()
    rogue_calls = [0]
    def second_user():
        while not stop.is_set():
            burst = time.monotonic() + 0.05
            while time.monotonic() < burst:
                try:
                    raw.file_get("/store_00010001", src_name, gp.GP_FILE_TYPE_NORMAL)
                    rogue_calls[0] += 1
                except gp.GPhoto2Error:
                    pass
            stop.wait(0.05)
    rogue = threading.Thread(target=second_user, daemon=True)
    rogue.start()
    while rogue_calls[0] < 5:
        time.sleep(0.005)
    for _ in range(4):
        source.trigger()
    while len(files) < 4:
        assert time.monotonic() < deadline + 40, source.status()
        time.sleep(0.01)
    stop.set(); rogue.join()
    source.stop()
    print(json.dumps({"files": [str(f.path) for f in files], "status": source.status()}))
    """
)


def test_busy_camera_with_two_users_is_retried(vcam: Path, tmp_path: Path) -> None:
    src = next(vcam.glob("*.JPG"))
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            BUSY_SCRIPT,
            str(tmp_path / "dest"),
            str(tmp_path / "state"),
            src.name,
        ],
        env=_env(vcam),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"]["busy_retries"] > 0
    assert len(result["files"]) == 4
    assert all(sha(Path(p)) == sha(src) for p in result["files"])


def test_power_cut_of_the_rig_loses_and_duplicates_nothing(vcam: Path, tmp_path: Path) -> None:
    """SIGKILL the tether process mid-run, restart it on the same state: nothing downloaded twice."""
    cmd = [
        sys.executable,
        "-m",
        "reference_device.sources.tether_cli",
        "--dest",
        str(tmp_path / "dest"),
        "--state",
        str(tmp_path / "state"),
        "--trigger-every",
        "0.05",
    ]
    proc = subprocess.Popen(
        cmd,
        env=_env(vcam),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        seen = []
        assert proc.stdout is not None
        for line in proc.stdout:
            if json.loads(line)["event"] == "file":
                seen.append(line)
            if len(seen) == 3:
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # power cut: no cleanup runs
        proc.wait(10)
    before = {p.name for p in (tmp_path / "dest").iterdir() if not p.name.startswith(".")}
    assert len(before) >= 3
    files, final = run_tether(
        vcam, tmp_path, "--trigger-every", "0.05", "--max", "2", "--timeout", "45"
    )
    assert len(files) == 2
    after = {p.name for p in (tmp_path / "dest").iterdir()}
    assert (
        before < after and len(after) == len(before) + 2
    )  # new frames, no re-download, no leftovers
    assert final["state"] == "stopped"


# --- a fake adapter for what the virtual camera cannot do ----------------------------------------
class FakeCamera:
    """An in-memory camera: a card, an event queue, and switches for unplug/claim/busy."""

    def __init__(self) -> None:
        self.card: dict[str, tuple[bytes, int]] = {}
        self.events: deque[CameraEvent] = deque()
        self.plugged = True
        self.claim_failures = 0
        self.busy_failures = 0
        self.wedged_triggers = 0
        self.opened = False
        self.opens = 0
        self.deleted: list[str] = []
        self._n = 0
        self.lock = threading.Lock()

    def shoot(self, *, event: bool = True, name: str | None = None) -> tuple[str, bytes]:
        with self.lock:
            self._n += 1
            folder = "/store_00010001/DCIM/100FAKE"
            name = name or f"DSC_{self._n:04d}.JPG"
            data = hashlib.sha256(f"frame {self._n}".encode()).digest() * 50
            self.card[f"{folder}/{name}"] = (data, 1_750_000_000 + self._n)
            if event and self.plugged and self.opened:
                self.events.append(CameraEvent("file_added", CameraPath(folder, name)))
            return f"{folder}/{name}", data

    def _check(self) -> None:
        if not self.plugged:
            raise CameraError(-7, "I/O problem")
        if not self.opened:
            raise CameraError(-7, "camera not open")
        if self.busy_failures:
            self.busy_failures -= 1
            raise CameraError(-110, "I/O in progress")

    def unplug(self) -> None:
        self.plugged = False
        self.events.clear()

    def open(self) -> dict[str, Any]:
        if not self.plugged:
            raise CameraError(-105, "Unknown model")
        if self.claim_failures:
            self.claim_failures -= 1
            raise CameraError(-53, "Could not claim the USB device")
        self.opened = True
        self.opens += 1
        return {"model": "Fake Body", "port": "usb:002,007"}

    def close(self) -> None:
        self.opened = False

    def wait_event(self, timeout_ms: int) -> CameraEvent:
        self._check()
        if self.events:
            return self.events.popleft()
        time.sleep(min(timeout_ms, 5) / 1000)
        return CameraEvent("timeout")

    def list_files(self) -> list[CameraPath]:
        self._check()
        return [CameraPath(*k.rsplit("/", 1)) for k in sorted(self.card)]

    def file_info(self, path: CameraPath) -> CameraFileInfo:
        self._check()
        if path.full not in self.card:
            raise CameraError(-108, "File not found")
        data, mtime = self.card[path.full]
        return CameraFileInfo(len(data), mtime)

    def download(self, path: CameraPath) -> bytes:
        self._check()
        return self.card[path.full][0]

    def delete(self, path: CameraPath) -> None:
        self._check()
        del self.card[path.full]
        self.deleted.append(path.full)

    def trigger(self) -> None:
        self._check()
        if self.wedged_triggers:
            self.wedged_triggers -= 1
            raise CameraError(-1, "Unspecified error")
        self.shoot()


class Rig:
    def __init__(self, tmp_path: Path, camera: FakeCamera, **cfg: Any) -> None:
        self.tmp_path = tmp_path
        self.camera = camera
        self.files: list[CapturedFile] = []
        self.reannounced: list[CapturedFile] = []
        self.cfg = {
            "redetect_interval": 0.02,
            "event_timeout_ms": 5,
            "event_budget": 0.05,
            "busy_backoff": 0.001,
            **cfg,
        }
        self.source = self._new()

    def _new(self) -> TetherSource:
        config = TetherConfig(
            dest=self.tmp_path / "dest", state_dir=self.tmp_path / "state", **self.cfg
        )
        return TetherSource(config, adapter=self.camera)

    def start(self) -> Rig:
        self.source.start(self._on_file)
        return self

    def _on_file(self, f: CapturedFile) -> None:
        (self.reannounced if f.reannounced else self.files).append(f)

    def restart(self) -> None:
        self.source.stop()
        self.source = self._new()
        self.start()

    def state(self) -> str:
        return self.source.status()["state"]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path, FakeCamera())
    yield r
    r.source.stop()


def test_could_not_claim_gives_a_clear_status_then_recovers(rig: Rig) -> None:
    rig.camera.claim_failures = 3
    rig.start()
    status = wait_for(
        lambda: (s := rig.source.status())["state"] == "claim_failed" and s, what="claim_failed"
    )
    assert "another program holds the camera (gvfs" in status["message"]
    assert "retrying" in status["message"]
    wait_for(lambda: rig.state() == "connected", what="connected after the claim clears")
    _, data = rig.camera.shoot()
    wait_for(lambda: len(rig.files) == 1, what="the frame")
    assert rig.files[0].path.read_bytes() == data and rig.files[0].origin == "tether"


def test_unplug_and_replug_loses_no_frame(rig: Rig) -> None:
    rig.start()
    wait_for(lambda: rig.state() == "connected")
    shots = [rig.camera.shoot()]
    wait_for(lambda: len(rig.files) == 1)
    rig.camera.unplug()
    status = wait_for(
        lambda: (s := rig.source.status())["state"] == "disconnected" and s, what="disconnected"
    )
    assert "re-detecting" in status["message"]
    with pytest.raises(TetherError, match="disconnected"):
        rig.source.trigger()
    # frames shot while the cable was out: no events ever reach the rig
    shots += [rig.camera.shoot(), rig.camera.shoot()]
    rig.camera.plugged = True
    wait_for(lambda: len(rig.files) == 3, what="frames shot while unplugged")
    got = {f.path.read_bytes() for f in rig.files}
    assert got == {data for _, data in shots}
    assert rig.source.status()["reconnects"] == 1 and rig.state() == "connected"


def test_restart_uses_the_durable_ledger(rig: Rig) -> None:
    rig.camera.shoot(event=False)  # already on the card before the very first connection
    rig.start()
    wait_for(lambda: rig.state() == "connected")
    rig.camera.shoot()
    wait_for(lambda: len(rig.files) == 1)
    rig.source.stop()  # the rig is off; the camera keeps shooting
    rig.camera.shoot(event=False)
    rig.files.clear()
    rig.restart()
    wait_for(lambda: len(rig.files) == 1, what="the frame shot while the rig was off")
    assert rig.files[0].path.name == "DSC_0003.JPG"
    assert [f.path.name for f in rig.reannounced] == ["DSC_0002.JPG"]  # the queue ignores it
    assert sorted(p.name for p in (rig.tmp_path / "dest").iterdir()) == [
        "DSC_0002.JPG",
        "DSC_0003.JPG",
    ]


def test_import_existing_downloads_the_card_on_first_connection(tmp_path: Path) -> None:
    camera = FakeCamera()
    camera.shoot(event=False)
    camera.shoot(event=False)
    rig = Rig(tmp_path, camera, import_existing=True).start()
    try:
        wait_for(lambda: len(rig.files) == 2)
    finally:
        rig.source.stop()


def test_download_finished_before_a_power_cut_is_reused_not_duplicated(rig: Rig) -> None:
    rig.start()
    wait_for(lambda: rig.state() == "connected")
    rig.source.stop()
    _, data = rig.camera.shoot(event=False)
    # the previous run wrote the file but died before recording it in the ledger
    (rig.tmp_path / "dest" / "DSC_0001.JPG").write_bytes(data)
    rig.restart()
    wait_for(lambda: len(rig.files) == 1)
    assert [p.name for p in (rig.tmp_path / "dest").iterdir()] == ["DSC_0001.JPG"]


def test_card_until_confirmed_deletes_on_confirmation(tmp_path: Path) -> None:
    camera = FakeCamera()
    rig = Rig(tmp_path, camera, card_files="until_confirmed").start()
    try:
        wait_for(lambda: rig.state() == "connected")
        path, _ = camera.shoot()
        wait_for(lambda: rig.source.status()["downloaded"] == 1)  # recorded after the hand-over
        assert path in camera.card
        assert rig.source.on_confirmed(rig.files[0].path)
        wait_for(lambda: path not in camera.card, what="deletion from the card")
        assert rig.source.status()["deleted_from_card"] == 1
        assert not rig.source.on_confirmed(tmp_path / "unknown.JPG")
    finally:
        rig.source.stop()


def test_card_delete_after_download(tmp_path: Path) -> None:
    camera = FakeCamera()
    rig = Rig(tmp_path, camera, card_files="delete").start()
    try:
        wait_for(lambda: rig.state() == "connected")
        path, _ = camera.shoot()
        wait_for(lambda: path in camera.deleted, what="deletion after download")
        assert rig.files[0].path.is_file()
    finally:
        rig.source.stop()


def test_busy_is_retried_and_counted(rig: Rig) -> None:
    rig.start()
    wait_for(lambda: rig.state() == "connected")
    rig.camera.busy_failures = 5
    rig.source.trigger()
    wait_for(lambda: len(rig.files) == 1)
    assert rig.source.status()["busy_retries"] >= 5


def test_hostile_camera_file_names_stay_inside_dest(rig: Rig) -> None:
    rig.start()
    wait_for(lambda: rig.state() == "connected")
    rig.camera.shoot(name="..\\..\\evil name ü.JPG")
    rig.camera.shoot(name=".hidden\x01.JPG")
    wait_for(lambda: len(rig.files) == 2)
    for f in rig.files:
        assert f.path.parent == rig.tmp_path / "dest"
        assert not f.path.name.startswith(".")
    assert {f.path.name for f in rig.files} == {"evil name ü.JPG", "hidden_.JPG"}


def test_torn_ledger_line_is_ignored(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / LEDGER_NAME).write_text(
        '{"key": "__baseline__", "camera_path": "", "state": "baseline"}\n{"key": "x", "ca'
    )
    camera = FakeCamera()
    rig = Rig(tmp_path, camera).start()
    try:
        wait_for(lambda: rig.state() == "connected")
        camera.shoot()
        wait_for(lambda: len(rig.files) == 1)
        assert rig.source.ledger.torn_lines == 1
        lines = (state / LEDGER_NAME).read_text().splitlines()
        assert json.loads(lines[-1])["state"] == "downloaded"
    finally:
        rig.source.stop()


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="colour"):
        TetherConfig.from_mapping({"dest": tmp_path, "state_dir": tmp_path, "colour": "red"})
    with pytest.raises(ConfigError, match="card_files"):
        TetherConfig.from_mapping({"dest": tmp_path, "state_dir": tmp_path, "card_files": "shred"})
    with pytest.raises(ConfigError, match=r"'tether\.state_dir': required"):
        TetherConfig.from_mapping({"dest": tmp_path})
    cfg = TetherConfig.from_mapping(
        {"dest": str(tmp_path), "state_dir": str(tmp_path), "trigger_every": 2.0}
    )
    assert cfg.dest == tmp_path and cfg.trigger_every == 2.0


def test_wedged_session_is_reinitialised_by_the_worker(rig: Rig) -> None:
    rig.start()
    wait_for(lambda: rig.state() == "connected")
    opens = rig.camera.opens
    rig.camera.wedged_triggers = 1
    with pytest.raises(TetherError, match="re-initialising"):
        rig.source.trigger()
    wait_for(lambda: rig.source.status()["reinits"] == 1, what="the worker's re-init")
    assert rig.camera.opens == opens + 1
    rig.source.trigger()
    wait_for(lambda: rig.source.status()["downloaded"] == 1)
    status = rig.source.status()
    assert (
        status["kind"] == "tether"
        and status["camera"] == "Fake Body"
        and status["port"] == "usb:002,007"
    )
    assert (
        status["triggers"] == 1
        and status["downloaded"] == 1
        and status["last_file"] == "DSC_0001.JPG"
    )


def test_a_reused_camera_name_never_reuses_a_local_name(rig: Rig) -> None:
    """The device may remove uploaded files; a camera reusing DSC_0001 still gets a new name."""
    rig.start()
    wait_for(lambda: rig.state() == "connected")
    rig.camera.shoot(name="DSC_0001.JPG")
    wait_for(lambda: len(rig.files) == 1)
    rig.files[0].path.unlink()  # uploaded and cleaned up by the device
    rig.camera.shoot(name="DSC_0001.JPG")  # new frame, same name, new content
    wait_for(lambda: len(rig.files) == 2)
    assert rig.files[1].path.name == "DSC_0001_1.JPG"


class InstantTimeoutCamera(FakeCamera):
    """A driver that answers "timeout" at once instead of waiting (libgphoto2's virtual camera)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = 0

    def wait_event(self, timeout_ms: int) -> CameraEvent:
        self._check()
        self.waits += 1
        if self.events:
            return self.events.popleft()
        return CameraEvent("timeout")


def test_a_camera_that_never_waits_does_not_spin_the_worker(tmp_path: Path) -> None:
    rig = Rig(tmp_path, InstantTimeoutCamera(), event_timeout_ms=100).start()
    try:
        wait_for(lambda: rig.state() == "connected", what="connected")
        camera = rig.camera
        assert isinstance(camera, InstantTimeoutCamera)
        before, began = camera.waits, time.monotonic()
        _, data = camera.shoot()
        wait_for(lambda: len(rig.files) == 1, what="the frame")
        wait_for(lambda: time.monotonic() - began >= 1.0, what="a second of an idle camera")
        asked = (camera.waits - before) / (time.monotonic() - began)
        assert asked <= 30, f"{asked:.0f} event waits per second with a 100 ms event timeout"
        assert rig.files[0].path.read_bytes() == data
    finally:
        rig.source.stop()

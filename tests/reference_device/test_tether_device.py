"""The tethered camera wired into the reference device: config, shutter action, upload
confirmation, status faces, and the whole rig as a real process on libgphoto2's virtual
camera against the real cloud emulator over TLS, with a power cut mid-transfer."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from reference_device.config import load_config
from reference_device.errors import ConfigError
from reference_device.sources.registry import build_sources, confirm_upload, shutter, sources_status
from reference_device.sources.tether import TetherConfig, TetherSource
from reference_device.sources.watch import WatchSource
from reference_device.status_page import render_panel
from reference_device.status_server import BadRequest, validate_action
from reference_device.status_view import summary_line
from reference_device.testing import DeviceProcess
from reference_device.tui import render_status
from tests.reference_device.conftest import device_config, sha256, wait_until
from tests.reference_device.test_tether import FakeCamera, Rig

MIB = 1024 * 1024
PART = 5 * MIB


# --- config ----------------------------------------------------------------------------------
def _toml(tmp_path: Path, body: str, media: bool = True) -> Path:
    head = f'state_dir = "{tmp_path / "state"}"\n'
    if media:
        head += f'media_dirs = ["{tmp_path / "media"}"]\n'
    path = tmp_path / "device.toml"
    path.write_text(head + body)
    return path


def test_sources_tether_table_with_every_key(tmp_path: Path) -> None:
    cfg = load_config(_toml(tmp_path, """
[sources.tether]
dest = "frames"
state_dir = "/tmp/x-tether-state"
camera = "Nikon DSC D750"
port = "usb:001,001"
card_files = "until_confirmed"
import_existing = true
redetect_interval = 1
busy_retries = 5
busy_backoff = 0.02
busy_backoff_max = 0.4
event_timeout_ms = 100
event_budget = 0.5
trigger_every = 3.5
"""), env={})
    t = cfg.tether
    assert isinstance(t, TetherConfig)
    assert t.dest == tmp_path / "frames"  # relative to the config file
    assert t.state_dir == Path("/tmp/x-tether-state")
    assert (t.camera, t.port, t.card_files, t.import_existing) == ("Nikon DSC D750", "usb:001,001",
                                                                   "until_confirmed", True)
    assert (t.redetect_interval, t.busy_retries, t.event_timeout_ms, t.trigger_every) == (1, 5, 100, 3.5)


def test_tether_defaults_and_switches(tmp_path: Path) -> None:
    path = _toml(tmp_path, "")
    assert load_config(path, env={}).tether is None
    cfg = load_config(path, env={}, overrides={"tether": True})  # c2c-device run --tether
    assert cfg.tether is not None
    assert cfg.tether.dest == tmp_path / "media"  # the first watch folder
    assert cfg.tether.state_dir == tmp_path / "state"
    assert cfg.tether.card_files == "keep"
    env_cfg = load_config(path, env={"C2C_DEVICE_TETHER": "yes"})
    assert env_cfg.tether is not None
    # no media dir: the tether alone is enough, frames go under the state dir
    alone = load_config(_toml(tmp_path, "[sources.tether]\n", media=False), env={})
    assert alone.media_dirs == [] and alone.tether is not None
    assert alone.tether.dest == tmp_path / "state" / "tether"
    off = load_config(_toml(tmp_path, "[sources.tether]\nenabled = false\n"), env={})
    assert off.tether is None


@pytest.mark.parametrize(("body", "field", "problem"), [
    ("[sources.tether]\ncolour = 'red'\n", "sources.tether.colour", "unknown key"),
    ("[sources.tether]\ncard_files = 'shred'\n", "sources.tether.card_files", "not one of"),
    ("[sources.tether]\nredetect_interval = 'soon'\n", "sources.tether.redetect_interval", "number"),
    ("[sources.tether]\nimport_existing = 1\n", "sources.tether.import_existing", "boolean"),
    ("[sources.tether]\nbusy_retries = true\n", "sources.tether.busy_retries", "integer"),
    ("[sources.tether]\nevent_budget = 0\n", "sources.tether.event_budget", "must be > 0"),
    ("[sources.tether]\nenabled = 'maybe'\n", "sources.tether.enabled", "true or false"),
    ("[sources.ftp]\nhost = 'x'\n", "sources.ftp", "unknown source"),
    ("sources = 3\n", "sources", "table"),
])
def test_bad_tether_config_names_the_key(tmp_path: Path, body: str, field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_toml(tmp_path, body), env={})
    assert info.value.field == field and problem in info.value.problem


def test_no_media_dir_and_no_camera_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tethered camera"):
        load_config(_toml(tmp_path, "", media=False), env={})


def test_build_sources_follows_the_config(tmp_path: Path) -> None:
    cfg = load_config(_toml(tmp_path, ""), env={}, overrides={"tether": True})
    kinds = [type(s) for s in build_sources(cfg, lambda p, r: None)]
    assert kinds == [WatchSource, TetherSource]
    only = load_config(_toml(tmp_path, "[sources.tether]\n", media=False), env={})
    assert [type(s) for s in build_sources(only, lambda p, r: None)] == [TetherSource]


# --- shutter, confirmation, status (a fake camera behind the real source) --------------------------
@pytest.fixture
def rig(tmp_path: Path) -> Any:
    r = Rig(tmp_path, FakeCamera(), card_files="until_confirmed")
    yield r
    r.source.stop()


def test_shutter_fires_and_waits_through_a_reinit(rig: Any) -> None:
    rig.start()
    rig.camera.wedged_triggers = 1  # the first trigger finds a wedged session
    assert shutter([rig.source], 3, threading.Event(), timeout=10) == 3
    wait_until(lambda: len(rig.files) == 3, 10, "three frames")
    assert rig.source.status()["reinits"] >= 1


class SlowToOpen(FakeCamera):
    """A camera whose first open() waits for `ready` (the rig just powered on)."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = threading.Event()

    def open(self) -> dict[str, Any]:
        self.ready.wait(10)
        return super().open()


def test_shutter_waits_while_the_source_is_starting(tmp_path: Path) -> None:
    camera = SlowToOpen()
    rig = Rig(tmp_path, camera).start()
    try:
        assert rig.state() == "starting"
        threading.Timer(0.2, camera.ready.set).start()
        assert shutter([rig.source], 2, threading.Event(), timeout=10) == 2
        wait_until(lambda: len(rig.files) == 2, 10, "two frames")
    finally:
        camera.ready.set()
        rig.source.stop()


def test_shutter_fails_at_once_without_a_camera(rig: Any) -> None:
    rig.camera.plugged = False
    rig.start()
    wait_until(lambda: rig.state() == "searching", 10, "searching")
    with pytest.raises(ValueError, match=r"cannot trigger: camera is searching.*fired 0 of 1"):
        shutter([rig.source], 1, threading.Event(), timeout=30)
    rig.camera.plugged = True
    wait_until(lambda: rig.state() == "connected", 10, "connected after plugging in")
    assert shutter([rig.source], 1, threading.Event(), timeout=10) == 1
    wait_until(lambda: len(rig.files) == 1, 10, "the frame")


def test_shutter_refuses_bad_counts_and_a_missing_camera() -> None:
    for bad in (0, -1, 101, True, "3"):
        with pytest.raises(ValueError, match="count"):
            shutter([], bad, threading.Event())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no tethered camera"):
        shutter([], 1, threading.Event())
    assert validate_action("shutter", {}) == {"count": 1}
    assert validate_action("shutter", {"count": 4}) == {"count": 4}
    for body in ({"count": 0}, {"count": "2"}, {"count": True}, {"frames": 2}):
        with pytest.raises(BadRequest):
            validate_action("shutter", body)


def test_confirmed_upload_deletes_the_frame_from_the_card(rig: Any) -> None:
    rig.start()
    wait_until(lambda: rig.state() == "connected", 10, "connected")
    card_path, _ = rig.camera.shoot()
    wait_until(lambda: rig.source.status()["downloaded"] == 1, 10, "download")
    local = rig.files[0].path
    confirm_upload([rig.source], local.parent / "someone-else.JPG", "watch")  # not ours: ignored
    assert card_path in rig.camera.card
    confirm_upload([rig.source], local, "watch")  # the watch folder saw it first: still ours
    wait_until(lambda: card_path not in rig.camera.card, 10, "deletion from the card")


def test_status_faces_show_the_camera() -> None:
    snap: dict[str, Any] = {"sources": [
        {"kind": "watch", "dirs": ["/m"]},
        {"kind": "tether", "state": "claim_failed", "message": "another program <b>holds</b> it",
         "downloaded": 3, "last_error": "[-53] Could not claim"},
    ]}
    html = render_panel(snap)
    assert 'id="source-tether" class="bad"' in html
    assert "another program &lt;b&gt;holds&lt;/b&gt; it · 3 downloaded" in html
    assert "tether=claim_failed" in summary_line(snap)
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(render_status(snap, show_qr=False))
    assert "Camera     another program <b>holds</b> it · 3 downloaded" in console.export_text()

    class Broken:
        name = "broken"

        def status(self) -> dict[str, Any]:
            raise RuntimeError("boom")

    assert sources_status([Broken()]) == [{"kind": "broken", "state": "error", "message": "boom"}]  # type: ignore[list-item]


# --- the real rig: device process + virtual camera + cloud emulator over TLS ---------------------
def _noisy_jpeg(path: Path) -> str:
    """A ~5.5 MB JPEG (two 5 MiB parts): every virtual capture returns these bytes."""
    pixels = np.random.default_rng(7).integers(0, 256, (2000, 3000, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    assert path.stat().st_size > PART
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _api(dev: DeviceProcess, action: str, body: dict[str, Any]) -> httpx.Response:
    url = (dev.state_dir / "status-url").read_text().strip()
    return httpx.post(f"{url}/api/{action}", json=body, timeout=30)


def _camera(status: dict[str, Any]) -> dict[str, Any]:
    return next((s for s in status.get("sources", []) if s.get("kind") == "tether"), {})


def _frames(dest: Path) -> list[Path]:
    return sorted(p for p in dest.iterdir() if not p.name.startswith("."))


def _pair_if_needed(dev: DeviceProcess, control: Any, project_id: str) -> None:
    st = dev.wait_for(lambda s: s["pairing"]["state"] in ("showing_code", "paired", "repair_needed"),
                      30, "pairing state")
    if st["pairing"]["state"] == "repair_needed":
        wait_until(lambda: (dev.state_dir / "status-url").exists(), 10, "status url")
        _api(dev, "pairing/start", {})
        st = dev.wait_for(lambda s: s["pairing"]["state"] == "showing_code", 30, "a new code")
    if st["pairing"]["state"] == "showing_code":
        control.approve(st["pairing"]["user_code"], project_id)
        dev.wait_for(lambda s: s["pairing"]["state"] == "paired", 30, "paired")


def test_missing_camera_does_not_crash_the_device(cloud: Any, control: Any, tmp_path: Path) -> None:
    values = device_config(cloud, tmp_path, sources={"tether": {"redetect_interval": 0.3}})
    dev = DeviceProcess(values, client_secret=control.client_secret(),
                        env={"VCAMERADIR": str(tmp_path / "no-such-dir")})  # would segfault libgphoto2
    try:
        dev.start()
        st = dev.wait_for(lambda s: _camera(s).get("state") == "searching", 30, "camera searching")
        assert "no camera detected" in _camera(st)["message"]
        wait_until(lambda: (dev.state_dir / "status-url").exists(), 10, "status url")
        r = _api(dev, "shutter", {"count": 1})
        assert r.status_code == 409 and "cannot trigger" in r.json()["error"], r.text
        assert dev.is_running()
    finally:
        dev.kill()


def test_tethered_rig_survives_a_power_cut_mid_transfer(cloud: Any, control: Any, tmp_path: Path) -> None:
    vcam = tmp_path / "vcam"
    vcam.mkdir()
    frame_sha = _noisy_jpeg(vcam / "IMG_0001.JPG")
    dest = tmp_path / "frames"
    values = device_config(
        cloud, tmp_path, parallel_files=1, parallelism=2, part_size=PART,
        max_upload_rate=6_000_000,  # a metered link: the cut lands while the queue runs
        sources={"tether": {"dest": str(dest), "card_files": "until_confirmed",
                            "redetect_interval": 0.3}},
    )
    project = control.create_project("Tether")
    dev = DeviceProcess(values, client_secret=control.client_secret(), env={"VCAMERADIR": str(vcam)})
    try:
        dev.start()
        _pair_if_needed(dev, control, project["id"])
        dev.wait_for(lambda s: _camera(s).get("state") == "connected", 30, "camera connected")

        r = _api(dev, "shutter", {"count": 4})
        assert r.status_code == 200 and r.json()["triggered"] == 4, r.text
        wait_until(lambda: len(_frames(dest)) == 4, 30, "four frames downloaded")
        # power cut once one frame is in the cloud and the next is on the wire
        st = dev.wait_for(lambda s: s["queue"]["completed"] >= 1 and s["queue"]["uploading"] >= 1
                          and s["queue"]["remaining_count"] >= 2, 60, "mid-queue")
        assert len(st["files"]) == 4
        dev.kill()
        before = _frames(dest)
        assert len(before) == 4
        db = sqlite3.connect(dev.state_dir / "queue.sqlite3")  # what the cut left on disk
        try:
            states = dict(db.execute("SELECT state, COUNT(*) FROM files GROUP BY state").fetchall())
        finally:
            db.close()
        # mid-queue: one frame delivered, the rest not (queued, or claimed while the part
        # slots take the next files' parts before the current file completes)
        assert states.get("done", 0) >= 1 and states.get("queued", 0) + states.get("uploading", 0) >= 2, states
        interrupted = states.get("uploading", 0)  # 0 if the cut fell between two files
        # what the dead process left behind says nothing about the new one
        (dev.state_dir / "status-url").unlink()
        assert dev.status_file is not None
        dev.status_file.unlink()

        dev.start()
        _pair_if_needed(dev, control, project["id"])
        dev.wait_for(lambda s: _camera(s).get("state") == "connected", 30, "camera reconnected")
        wait_until(lambda: (dev.state_dir / "status-url").exists(), 10, "the new status url")
        r = _api(dev, "shutter", {"count": 2})
        assert r.status_code == 200 and r.json()["triggered"] == 2, r.text
        wait_until(lambda: len(_frames(dest)) == 6, 30, "two more frames")
        st = dev.wait_for(lambda s: s["queue"]["completed"] == 6 and s["queue"]["remaining_count"] == 0,
                          90, "every frame delivered")

        frames = _frames(dest)
        assert set(before) < set(frames)  # the new session's frames got new local names
        assert all(sha256(p) == frame_sha for p in frames)
        assert sorted(f["name"] for f in st["files"]) == sorted(p.name for p in frames)
        ledger = control.ledger()
        for frame in frames:
            rows = [r for r in ledger if r["name"] == frame.name and r["state"] == "complete"]
            assert len(rows) == 1, f"{frame.name} delivered {len(rows)} times"
            assert rows[0]["sha256"] == frame_sha and rows[0]["filesize"] == frame.stat().st_size
        assert len([r for r in ledger if r["state"] == "complete"]) == 6
        assert all(r["bytes_received"] == 0 for r in ledger if r["state"] != "complete"), ledger
        if interrupted:
            log_text = (dev.state_dir / "device.log").read_text()
            assert f"reconciled {interrupted} interrupted upload" in log_text
        # until_confirmed: this session's two frames left the card once the cloud had them;
        # frames of the session before the cut are never deleted by (reused) name
        camera = dev.wait_for(lambda s: _camera(s).get("deleted_from_card") == 2, 30,
                              "confirmed frames deleted from the card")
        assert _camera(camera)["state"] == "connected"
    finally:
        dev.kill()


# --- CLI and queue ---------------------------------------------------------------------------
def test_cli_tether_flag_and_shutter_verb(tmp_path: Path) -> None:
    from reference_device.cli import _config_from_args, _control_body, build_parser

    parser = build_parser()
    path = _toml(tmp_path, "")
    args = parser.parse_args(["run", "--config", str(path), "--tether"])
    assert _config_from_args(args).tether is not None
    args = parser.parse_args(["run", "--config", str(path)])
    assert _config_from_args(args).tether is None
    args = parser.parse_args(["shutter", "--status-port", "1", "-n", "3"])
    assert _control_body(args, parser) == ("shutter", {"count": 3})
    args = parser.parse_args(["shutter", "--status-port", "1"])
    assert _control_body(args, parser) == ("shutter", {"count": 1})


def test_reannounced_frame_is_a_no_op_in_the_queue(tmp_path: Path) -> None:
    """After a power cut the source hands over frames the queue already has: nothing changes."""
    from reference_device.queue import FileQueue

    frame = tmp_path / "GPH_0099.JPG"
    frame.write_bytes(b"\xff\xd8frame\xff\xd9")
    queue = FileQueue(tmp_path / "queue.sqlite3")
    try:
        def add() -> tuple[Any, bool]:
            st = frame.stat()
            return queue.add(frame, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino,
                             captured_at=st.st_mtime, filetype="image", origin="tether")

        st = frame.stat()
        assert not queue.known(frame, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino)
        rec, created = add()
        assert created
        assert queue.known(frame, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino)
        for state in ("uploading", "done"):
            queue.set_state(rec.id, state)
            again, created = add()
            assert not created and again.id == rec.id and again.state == state
        assert len(queue.all()) == 1
    finally:
        queue.close()

"""A power cut (SIGKILL of the rig's process group) at each instant of a tethered download.

The rig is a real process running the tether source on a camera whose card survives the
cut (a real camera is powered on its own; libgphoto2's virtual camera lives inside the rig
process and loses its card, so it cannot show this). The process kills its own process
group at one precise instant of the download; a second process boots on the same local
storage and download ledger. Whatever the instant, the frame ends up in one local file under
its own name, every hand-over to the queue names that file, and nothing is stored twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reference_device.sources.tether_ledger import LEDGER_NAME

REPO = Path(__file__).resolve().parents[2]

RIG = textwrap.dedent(
    """
    import json, os, signal, sys, threading
    from pathlib import Path
    from reference_device.sources import tether_card as tether_mod
    from reference_device.sources.tether import TetherConfig, TetherSource
    from reference_device.sources.tether_ledger import TetherLedger
    from tests.reference_device.test_tether import FakeCamera

    dest, state, kill_at, phase = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]

    def power_cut():
        os.killpg(0, signal.SIGKILL)  # the whole rig, at once: nothing after this line runs

    def out(event, **kw):
        print(json.dumps({"event": event, **kw}), flush=True)

    camera = FakeCamera()
    if phase == "boot":  # the camera kept its card while the rig was off: the same frame
        camera.shoot(event=False)
    pumped = threading.Event()
    wait_event = camera.wait_event
    def pump(timeout_ms):
        pumped.set()  # the connect-time card scan is over once events are pumped
        return wait_event(timeout_ms)
    camera.wait_event = pump

    write = tether_mod.atomic_write
    def atomic_write(path, data, mtime):
        if kill_at == "mid-write":
            path.with_name(f".{path.name}.part").write_bytes(data[: len(data) // 2])
            power_cut()
        write(path, data, mtime)
        if kill_at == "written":
            power_cut()
    tether_mod.atomic_write = atomic_write

    record = TetherLedger.record
    def record_then_cut(self, entry):
        if entry.state == "downloaded" and kill_at == "torn-record":
            with open(self.path, "ab") as f:
                f.write(json.dumps({"key": entry.key})[:15].encode())
                f.flush()
                os.fsync(f.fileno())
            power_cut()
        record(self, entry)
        if entry.state == "downloaded" and kill_at == "recorded":
            power_cut()
    TetherLedger.record = record_then_cut

    def on_file(f):
        out("file", path=str(f.path), reannounced=f.reannounced)
        if kill_at == "handed-over" and not f.reannounced:
            power_cut()

    source = TetherSource(TetherConfig(dest=dest, state_dir=state, redetect_interval=0.02,
                                       event_timeout_ms=5, event_budget=0.05), adapter=camera)
    source.start(on_file)
    if not pumped.wait(20):
        sys.exit(4)
    if phase == "shoot":
        camera.shoot()
        source._thread.join(20)  # the worker runs until the power cut ends the whole process
        sys.exit(5)
    source.stop()
    out("status", **source.status())
    """
)


def _rig(tmp_path: Path, kill_at: str, phase: str) -> tuple[int, list[dict[str, Any]]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", RIG, str(tmp_path / "dest"), str(tmp_path / "state"), kill_at, phase],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60, start_new_session=True,
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("kill_at", ["mid-write", "written", "handed-over", "torn-record", "recorded"])
def test_power_cut_at_any_instant_of_a_download_stores_the_frame_once(tmp_path: Path, kill_at: str) -> None:
    """Cut, boot again: the frame is finished or fetched again into the same local file."""
    rc, before = _rig(tmp_path, kill_at, "shoot")
    assert rc == -9, f"the rig was not cut at {kill_at} (exit {rc})"
    rc, after = _rig(tmp_path, "never", "boot")
    assert rc == 0, after
    dest = tmp_path / "dest"
    frame = dest / "DSC_0001.JPG"
    stored = sorted(p.name for p in dest.iterdir())
    assert stored == ["DSC_0001.JPG"], f"cut at {kill_at}: {stored}"  # no DSC_0001_1.JPG, no .part
    handed = [Path(e["path"]) for e in before + after if e["event"] == "file"]
    assert handed and set(handed) == {frame}, handed  # the queue only ever sees the one file
    ledger = [json.loads(line) for line in (tmp_path / "state" / LEDGER_NAME).read_text().splitlines()
              if line.startswith("{") and line.endswith("}")]
    assert {e["local"] for e in ledger if e["state"] == "downloaded"} == {str(frame)}
    assert after[-1]["event"] == "status"

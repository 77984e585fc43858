"""Real-time upload of a growing MP4 whose header is rewritten at the end."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

from tests.reference_device.conftest import sha256, wait_until
from tests.reference_device.test_engine_e2e import make_engine, pair

MIB = 1024 * 1024


def test_growing_mp4_uploads_in_real_time(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path, realtime=True, part_size=5 * MIB, quiet_period=3.0)
    engine.start()
    path = tmp_path / "media" / "A001_C001.mp4"
    try:
        pair(engine, control)

        def entry() -> dict[str, Any] | None:
            return next((f for f in engine.snapshot()["files"] if f["name"] == path.name), None)

        with open(path, "wb") as fh:
            fh.write(struct.pack(">I4s", 16, b"ftyp") + b"isom0000")
            fh.write(struct.pack(">I4s", 0, b"mdat"))  # size unknown while recording
            for _ in range(40):  # keep growing until the device has picked it up as real-time
                fh.write(os.urandom(MIB // 4))
                fh.flush()
                try:
                    wait_until(entry, 0.3, "real-time pickup")
                    break
                except AssertionError:
                    continue
            assert entry() is not None
            while fh.tell() < 11 * MIB:
                fh.write(os.urandom(MIB))
            fh.flush()
            # a middle part goes up while the file is still open and growing
            wait_until(lambda: (e := entry()) and e["bytes_done"] >= 5 * MIB, 30, "middle part uploaded")
            assert entry()["state"] == "uploading"  # type: ignore[index]
            fh.write(os.urandom(2 * MIB + 12345))
            end = fh.tell()
            fh.seek(24)  # header rewrite at stop-record: the mdat size becomes known
            fh.write(struct.pack(">I", end - 24))
            fh.seek(end)
            fh.write(struct.pack(">I4s", 16, b"moov") + b"m" * 8)
        wait_until(lambda: (e := entry()) and e["state"] == "done", 40, "real-time upload done")
        rows = [r for r in control.ledger() if r["name"] == path.name]
        assert len(rows) == 1 and rows[0]["state"] == "complete" and rows[0]["realtime"]
        assert rows[0]["sha256"] == sha256(path)
        assert rows[0]["filesize"] == path.stat().st_size
    finally:
        engine.stop()

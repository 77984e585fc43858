"""Many files of mixed formats (and hostile names) delivered, every hash matching."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reference_device.media_check import filetype_for
from tests.reference_device.conftest import sha256, wait_until
from tests.reference_device.media_samples import make_set
from tests.reference_device.test_engine_e2e import make_engine, pair

COUNT = int(os.environ.get("C2C_TEST_FILES", "100"))


def test_mixed_formats_all_delivered(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path, parallel_files=4)
    files = make_set(tmp_path / "media", COUNT)
    engine.start()
    try:
        pair(engine, control)
        wait_until(lambda: engine.snapshot()["queue"]["completed"] == COUNT, 120, f"{COUNT} files uploaded")
        ledger = [r for r in control.ledger() if r["state"] == "complete"]
        assert len(ledger) == COUNT
        by_name = {r["name"]: r for r in ledger}
        for name, path in files.items():
            assert by_name[name]["sha256"] == sha256(path), name
        assets = {a["name"]: a for a in control.assets()}
        assert assets["ünïcødé clip.mov"]["tree_path"].endswith("/ünïcødé clip.mov")
        journal = [j for j in control.journal() if j["method"] == "PUT"]
        assert journal and all(j["status"] == 200 for j in journal)
        assert filetype_for(files["ünïcødé clip.mov"]) == "video/quicktime"
        snap = engine.snapshot()
        assert snap["queue"]["remaining_count"] == 0 and snap["queue"]["remaining_bytes"] == 0
        assert all(f["state"] == "done" and f["bytes_done"] == f["size"] for f in snap["files"])
    finally:
        engine.stop()

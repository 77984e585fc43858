"""The watch source meets bad objects named like clips (what CTL-04 puts in the folder as
root): it skips them without opening them, so a FIFO never blocks it, and hands the good
clip beside them over as usual; a clip that vanishes after being handed over is quarantined."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from reference_device.errors import MediaError
from reference_device.media_check import check_file
from reference_device.sources.base import CapturedFile
from reference_device.sources.watch import WatchSource


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_fifo_symlink_and_folder_named_like_clips_are_skipped_unopened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "A001_C003.MOV")
    os.symlink(tmp_path / "nowhere.jpg", tmp_path / "_DSC0012.JPG")
    (tmp_path / "A001_C002.MOV").mkdir()
    (tmp_path / "good.jpg").write_bytes(b"\xff\xd8ok\xff\xd9")
    clock, got = Clock(), []
    src = WatchSource([tmp_path], quiet_period=2.0, clock=clock)
    src._on_file = got.append

    def scans() -> None:
        src.scan()
        clock.t += 3
        src.scan()
    worker = threading.Thread(target=scans, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the watch source blocked (it opened the FIFO)"
    assert [c.path.name for c in got] == ["good.jpg"]
    assert all(isinstance(c, CapturedFile) for c in got)


def test_a_clip_gone_after_hand_over_is_vanished(tmp_path: Path) -> None:
    clip = tmp_path / "A.JPG"
    clip.write_bytes(b"\xff\xd8ok\xff\xd9")
    assert check_file(clip) == 6
    clip.unlink()
    with pytest.raises(MediaError) as caught:
        check_file(clip)
    assert caught.value.reason == "vanished"

"""The capture-folder watch on a real folder: the bench acts when a device opens a file and
counts the device's scans, without opening anything itself (harness/faults/media/fswatch.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.errors import MediaError
from harness.faults.media.fswatch import FolderWatch
from harness.faults.media.objects import Vanish


def test_a_clip_vanishes_the_moment_it_is_opened(tmp_path: Path) -> None:
    folder, made = tmp_path / "media", tmp_path / "made.jpg"
    folder.mkdir()
    made.write_bytes(b"x" * 4096)
    clip = folder / "A001.JPG"
    with FolderWatch(folder) as watch:
        vanish = Vanish(clip)
        watch.on_open(clip.name, vanish.fire)
        os.replace(made, clip)  # captured as the bench does: renamed in, never opened there
        assert not watch.wait_for(lambda _ev: vanish.fired_at is not None, 0.2)
        with open(clip, "rb") as device:  # the device starts reading
            assert watch.wait_for(lambda _ev: vanish.fired_at is not None, 5)
            assert not clip.exists()
            assert device.read() == b"x" * 4096  # what it had open it can still read
        assert watch.opened(clip.name) and not watch.errors


def test_only_the_armed_name_triggers(tmp_path: Path) -> None:
    (tmp_path / "good.jpg").write_bytes(b"g")
    (tmp_path / "bad.jpg").write_bytes(b"b")
    with FolderWatch(tmp_path) as watch:
        vanish = Vanish(tmp_path / "bad.jpg")
        watch.on_open("bad.jpg", vanish.fire)
        with open(tmp_path / "good.jpg", "rb"):
            assert watch.wait_for(lambda ev: any(e.opened("good.jpg") for e in ev), 5)
        assert vanish.fired_at is None and (tmp_path / "bad.jpg").exists()


def test_scans_of_the_folder_are_counted(tmp_path: Path) -> None:
    with FolderWatch(tmp_path) as watch:
        for _ in range(3):
            os.listdir(tmp_path)
        assert watch.wait_for(lambda _ev: watch.listings() >= 3, 5)
        (tmp_path / "a.jpg").write_bytes(b"a")  # writing is not a scan
        assert watch.listings() == 3


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not a directory"):
        FolderWatch(tmp_path / "nope").start()

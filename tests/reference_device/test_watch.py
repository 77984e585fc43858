from __future__ import annotations

import os
import time
from pathlib import Path

from reference_device.sources.base import CapturedFile
from reference_device.sources.watch import WatchSource, is_ignored


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_ignored_names() -> None:
    assert is_ignored(".hidden") and is_ignored("clip.mov.part") and is_ignored("x.tmp")
    assert is_ignored("~$lock") and not is_ignored("A001.mov")


def test_stable_rule_recursive_and_once(tmp_path: Path) -> None:
    clock = Clock()
    (tmp_path / "sub").mkdir()
    (tmp_path / ".cache").mkdir()
    (tmp_path / "sub" / "a.jpg").write_bytes(b"1")
    (tmp_path / ".cache" / "b.jpg").write_bytes(b"1")
    (tmp_path / ".c.jpg").write_bytes(b"1")
    got: list[CapturedFile] = []
    src = WatchSource([tmp_path], quiet_period=2.0, clock=clock)
    src._on_file = got.append
    assert src.scan() == []
    clock.t += 1
    assert src.scan() == []
    clock.t += 1.5
    ready = src.scan()
    assert [c.path.name for c in ready] == ["a.jpg"] and not ready[0].growing
    clock.t += 5
    assert src.scan() == []
    assert len(got) == 1


def test_growing_file_waits_then_realtime(tmp_path: Path) -> None:
    clock = Clock()
    f = tmp_path / "rec.mov"
    f.write_bytes(b"x")
    src = WatchSource([tmp_path], quiet_period=2.0, clock=clock)
    rt = WatchSource([tmp_path], quiet_period=2.0, clock=clock, realtime=True)
    src.scan(), rt.scan()
    for i in range(3):
        clock.t += 1
        with open(f, "ab") as fh:
            fh.write(b"y" * 10)
        os.utime(f, ns=(i + 10, i + 10))
        assert src.scan() == []
        got = rt.scan()
        assert (len(got) == 1 and got[0].growing) if i == 0 else got == []
    clock.t += 3
    assert [c.path for c in src.scan()] == [f]
    assert rt.scan() == []  # the real-time uploader owns it


def test_endless_growth_reported(tmp_path: Path) -> None:
    clock = Clock()
    f = tmp_path / "forever.mov"
    f.write_bytes(b"x")
    problems: list[tuple[Path, str]] = []
    src = WatchSource([tmp_path], quiet_period=2.0, max_growth_time=5.0, clock=clock,
                      on_problem=lambda p, r: problems.append((p, r)))
    src.scan()
    for i in range(8):
        clock.t += 1
        with open(f, "ab") as fh:
            fh.write(b"y")
        os.utime(f, ns=(i + 10, i + 10))
        src.scan()
    assert problems == [(f, "endlessly_growing")]


def test_settled_waits_for_files_placed_before_the_moment(tmp_path: Path) -> None:
    """Manual "upload all" waits on this: files already in storage must be handed over first."""
    clock = Clock()
    clock.t = time.time() + 1.0
    (tmp_path / "a.jpg").write_bytes(b"1")
    moment = time.time() + 0.5  # a.jpg was placed before this moment
    src = WatchSource([tmp_path], quiet_period=2.0, clock=clock)
    src._on_file = lambda _cf: None
    assert not src.settled(moment)  # no scan since the moment: unknown files may exist
    src.scan()
    assert not src.settled(moment)  # seen, still in its quiet period
    assert src.settled(moment - 60)  # a.jpg came after that earlier moment: not waited for
    clock.t += 2.5
    assert [c.path.name for c in src.scan()] == ["a.jpg"]
    assert src.settled(moment)

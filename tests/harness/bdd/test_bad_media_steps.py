"""The bad-media steps against a stand-in bench on a real folder: the bad object is captured
first, the bench waits for the device to meet it, removes it at the end, and the Then step
tells "skipped or quarantined" from "uploaded as if good" (harness/bdd/steps/media_steps.py)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.bdd.state import ScenarioState
from harness.bdd.steps import media_steps
from harness.bdd.steps.media_steps import _capture_bad_first, bad_media_problems
from harness.certify.ledger import FileVerdict
from harness.errors import BenchFailure

State = ScenarioState


class Media:
    def __init__(self, root: Path) -> None:
        self.root, self.n = root, 0

    def generate(self, kinds: list[str], out: Path, count: int = 1) -> list[dict[str, Any]]:
        self.n += 1
        path = out / f"C{self.n:03d}.{kinds[0].upper()}"
        path.write_bytes(b"\xff\xd8" + b"x" * 1000 + b"\xff\xd9")
        return [{"path": str(path), "sha256": "s" * 64, "size": 1004, "kind": kinds[0]}]

    def corrupt(self, path: Path, how: str) -> dict[str, Any]:
        os.truncate(path, 0)
        return {"how": how, "sha256": "e" * 64, "size": 0}


class Device:
    """A watch-folder device: capture renames into the folder; `reads` opens what it is told to."""

    def __init__(self, root: Path) -> None:
        self.folder, self.incoming_dir = root / "media", root / "incoming"
        self.folder.mkdir()
        self.incoming_dir.mkdir()
        self.on_capture: Callable[[Path], None] = lambda _p: None

    def watch_folder(self) -> Path:
        return self.folder

    def capture(self, files: list[Path]) -> list[Path]:
        out = []
        for f in files:
            tmp = self.incoming_dir / f".{f.name}.part"
            shutil.copyfile(f, tmp)
            dest = self.folder / f.name
            os.replace(tmp, dest)
            self.on_capture(dest)
            out.append(dest)
        return out

    def status(self) -> dict[str, Any] | None:
        return None


class Bench:
    def __init__(self, root: Path) -> None:
        self.state = State()
        self.device = Device(root)
        self.media = Media(root)
        self.profile = SimpleNamespace(name="fake", capture=SimpleNamespace(driver="watch-folder"))
        self.has_status = False
        self.seen: list[str] = []
        self.marks: list[tuple[Any, ...]] = []
        self._root = root

    def scratch(self, name: str = "capture") -> Path:
        path = self._root / "scratch" / f"{name}-{time.monotonic_ns()}"
        path.mkdir(parents=True)
        return path

    def exercised(self, what: str) -> None:
        self.seen.append(what)

    @property
    def timeline(self) -> Any:
        return SimpleNamespace(record=lambda *a, **kw: self.marks.append((*a, kw)))


class Request:
    def __init__(self) -> None:
        self.finalizers: list[Callable[[], None]] = []

    def addfinalizer(self, fn: Callable[[], None]) -> None:
        self.finalizers.append(fn)

    def finish(self) -> None:
        for fn in reversed(self.finalizers):
            fn()


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media_steps, "TAKE_IN_S", 0.5)
    monkeypatch.setattr(media_steps, "VANISH_OPEN_S", 2.0)


def test_a_fifo_is_captured_first_never_opened_by_the_bench_and_removed(tmp_path: Path, fast: None) -> None:
    bench, request = Bench(tmp_path), Request()
    _capture_bad_first(bench, request, "fifo", "mov")  # type: ignore[arg-type]
    [cap] = bench.state.captures
    assert cap.corruption == "fifo" and cap.sha256 is None and cap.path.is_fifo()
    assert any("did not open the fifo" in s for s in bench.seen)
    request.finish()
    assert os.listdir(bench.device.folder) == []


def test_a_device_stuck_opening_the_fifo_is_released_at_the_end(tmp_path: Path, fast: None) -> None:
    bench, request = Bench(tmp_path), Request()
    _capture_bad_first(bench, request, "fifo", "mov")  # type: ignore[arg-type]
    path = bench.state.captures[0].path
    got: list[bytes] = []
    stuck = threading.Thread(target=lambda: got.append(path.read_bytes()), daemon=True)
    stuck.start()
    wchan = Path(f"/proc/self/task/{stuck.native_id}/wchan")
    tick = threading.Event()
    for _ in range(250):  # until the naive device waits inside open() for a writer (5 s at most)
        if wchan.read_text() == "wait_for_partner" or tick.wait(0.02):
            break
    assert wchan.read_text() == "wait_for_partner"
    request.finish()
    stuck.join(5)
    assert not stuck.is_alive() and got == [b""]
    assert any("a reader was blocked opening the FIFO" in str(m) for m in bench.marks)
    assert os.listdir(bench.device.folder) == []


def test_a_clip_vanishes_when_the_device_opens_it_then_the_good_ones_come(tmp_path: Path, fast: None) -> None:
    bench, request = Bench(tmp_path), Request()
    read: list[bytes] = []

    def device_reads(dest: Path) -> None:
        def later() -> None:
            with open(dest, "rb") as fh:
                read.append(fh.read())
        threading.Timer(0.1, later).start()
    bench.device.on_capture = device_reads
    _capture_bad_first(bench, request, "vanish", "jpg")  # type: ignore[arg-type]
    [cap] = bench.state.captures
    assert cap.corruption == "vanish" and cap.sha256 == "s" * 64
    assert not cap.path.exists() and any("deleted the moment the device opened it" in s for s in bench.seen)
    request.finish()


def test_a_device_that_never_opens_the_clip_is_a_bench_error_not_a_pass(tmp_path: Path, fast: None) -> None:
    bench, request = Bench(tmp_path), Request()
    with pytest.raises(BenchFailure, match=r"did not open .* vanishing .* not exercised"):
        _capture_bad_first(bench, request, "vanish", "jpg")  # type: ignore[arg-type]
    request.finish()
    assert os.listdir(bench.device.folder) == []


def test_the_bad_file_must_come_first(tmp_path: Path, fast: None) -> None:
    bench = Bench(tmp_path)
    bench.state.captures.append(SimpleNamespace(name="good.jpg"))
    with pytest.raises(BenchFailure, match="first capture"):
        _capture_bad_first(bench, Request(), "fifo", "mov")  # type: ignore[arg-type]


def test_mode_000_on_a_root_bench_does_not_apply(tmp_path: Path, fast: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(pytest.skip.Exception, match="not-applicable: unreadable: the bench runs as root"):
        _capture_bad_first(Bench(tmp_path), Request(), "unreadable", "jpg")  # type: ignore[arg-type]


def test_objects_need_a_watch_folder(tmp_path: Path, fast: None) -> None:
    bench = Bench(tmp_path)
    bench.profile.capture.driver = "command"
    with pytest.raises(pytest.skip.Exception, match="not-applicable: a dangling-symlink can only be made in a watch"):
        _capture_bad_first(bench, Request(), "dangling-symlink", "jpg")  # type: ignore[arg-type]


def _verdict(name: str, corruption: str | None, outcome: str, delivered: list[str | None] | None = None) -> FileVerdict:
    return FileVerdict(name=name, outcome=outcome, captured_at=0.0, sha256=None, size=0, paused=False,
                       corruption=corruption, assets=["a1"] if delivered else [], cloud_sha256=delivered or [])


def test_skipped_or_quarantined_bad_files_are_fine() -> None:
    files = [_verdict("F.MOV", "fifo", "rejected"), _verdict("V.JPG", "vanish", "rejected"),
             _verdict("G.JPG", None, "intact", ["g"])]
    assert bad_media_problems(files, []) == []
    assert bad_media_problems(files, [{"name": "V.JPG", "state": "quarantined", "reason": "vanished"}]) == []


def test_an_object_with_no_bytes_uploaded_as_if_good() -> None:
    files = [_verdict("F.MOV", "fifo", "intact", ["e3b0"])]
    [problem] = bad_media_problems(files, [])
    assert "F.MOV (fifo) was uploaded as if good" in problem


def test_a_vanished_clip_uploaded_short_is_corrupt() -> None:
    files = [_verdict("V.JPG", "vanish", "corrupt", ["abcd"])]
    assert "uploaded as if good: corrupt" in bad_media_problems(files, [])[0]
    whole = [_verdict("V.JPG", "vanish", "intact", ["s"])]  # read whole before it vanished: fine
    assert bad_media_problems(whole, [{"name": "V.JPG", "state": "done"}]) == []


def test_status_must_report_the_bad_file_clearly() -> None:
    files = [_verdict("Z.JPG", "zero-length", "rejected")]
    assert "still shows Z.JPG (zero-length) as 'queued'" in bad_media_problems(files, [{"name": "Z.JPG", "state": "queued"}])[0]
    assert "without a reason" in bad_media_problems(files, [{"name": "Z.JPG", "state": "quarantined"}])[0]
    assert "as 'done', but it was not uploaded" in bad_media_problems(files, [{"name": "Z.JPG", "state": "done"}])[0]

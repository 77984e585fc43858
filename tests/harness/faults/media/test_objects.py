"""Bad media objects on a real filesystem: what each one is, that the bench never blocks on
one, and that removing one leaves the folder clean (harness/faults/media/objects.py)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

import pytest

from harness.errors import MediaError
from harness.faults.media.objects import OBJECTS, not_applicable, place, release_fifo_readers


@pytest.fixture
def card(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(watch folder, staging beside it, a generated clip outside both)."""
    folder, staging = tmp_path / "media", tmp_path / "incoming"
    folder.mkdir()
    clip = tmp_path / "clip.jpg"
    clip.write_bytes(b"\xff\xd8" + b"x" * 100 + b"\xff\xd9")
    return folder, staging, clip


def test_dangling_symlink_points_at_nothing(card: tuple[Path, Path, Path]) -> None:
    folder, staging, clip = card
    obj = place("dangling-symlink", folder, "A001.JPG", staging=staging, original=clip)
    assert obj.path.is_symlink() and not obj.path.exists()
    with pytest.raises(FileNotFoundError):
        open(obj.path, "rb")  # noqa: SIM115 - the failure is the point
    assert os.listdir(folder) == ["A001.JPG"] and clip.is_file()
    obj.remove()
    assert os.listdir(folder) == []


def test_directory_named_like_a_clip(card: tuple[Path, Path, Path]) -> None:
    folder, staging, _ = card
    obj = place("directory", folder, "A001_C002.MOV", staging=staging)
    assert obj.path.is_dir()
    with pytest.raises(IsADirectoryError):
        open(obj.path, "rb")  # noqa: SIM115
    obj.remove()
    assert os.listdir(folder) == []


def test_fifo_never_blocks_the_bench(card: tuple[Path, Path, Path]) -> None:
    folder, staging, _ = card
    obj = place("fifo", folder, "A001_C003.MOV", staging=staging)
    assert stat.S_ISFIFO(os.lstat(obj.path).st_mode)
    assert release_fifo_readers(obj.path) is False  # nobody reading: ENXIO, no wait
    assert obj.remove() == []
    assert os.listdir(folder) == []


def test_a_reader_blocked_on_the_fifo_is_released(card: tuple[Path, Path, Path]) -> None:
    """A device thread that opened the FIFO waits for a writer; removing the object frees it."""
    folder, staging, _ = card
    obj = place("fifo", folder, "A001_C004.MOV", staging=staging)
    got: list[bytes] = []
    opening = threading.Event()

    def device_reads() -> None:
        opening.set()
        with open(obj.path, "rb") as fh:  # blocks until a writer opens the FIFO
            got.append(fh.read())

    reader = threading.Thread(target=device_reads, daemon=True)
    reader.start()
    assert opening.wait(5)
    released, tick = False, threading.Event()
    for _ in range(200):  # until the reader is inside open() (10 s at most)
        released = release_fifo_readers(obj.path)
        if released or tick.wait(0.05):
            break
    reader.join(5)
    assert released and not reader.is_alive() and got == [b""]
    obj.remove()
    assert os.listdir(folder) == []


@pytest.mark.parametrize("how", OBJECTS)
def test_a_name_already_there_is_refused_and_kept(card: tuple[Path, Path, Path], how: str) -> None:
    folder, staging, clip = card
    (folder / "A001.JPG").write_bytes(b"precious")
    with pytest.raises(MediaError, match="already there"):
        place(how, folder, "A001.JPG", staging=staging, original=clip, euid=1000)
    assert (folder / "A001.JPG").read_bytes() == b"precious"


def test_unknown_object_and_bad_names_are_refused(card: tuple[Path, Path, Path]) -> None:
    folder, staging, _ = card
    with pytest.raises(MediaError, match="unknown bad media object 'socket'"):
        place("socket", folder, "A.JPG", staging=staging)
    with pytest.raises(MediaError, match="not a plain file name"):
        place("fifo", folder, "../A.JPG", staging=staging)
    assert os.listdir(folder) == []


def test_mode_000_does_not_apply_to_root() -> None:
    assert "root" in (not_applicable("unreadable", euid=0) or "")
    assert not_applicable("unreadable", euid=1000) is None
    assert all(not_applicable(h, euid=0) is None for h in ("dangling-symlink", "directory", "fifo", "vanish"))


def test_mode_000_placement_refused_as_root(card: tuple[Path, Path, Path]) -> None:
    folder, staging, clip = card
    with pytest.raises(MediaError, match="root"):
        place("unreadable", folder, "A.JPG", staging=staging, original=clip, euid=0)
    assert os.listdir(folder) == []


def _place_unreadable_and_read(root: Path) -> str:
    obj = place("unreadable", root / "media", "A.JPG", staging=root / "incoming", original=root / "clip.jpg")
    try:
        with open(obj.path, "rb"):
            return "read"
    except PermissionError:
        return "denied"
    finally:
        obj.remove()


def test_mode_000_stops_a_plain_user() -> None:
    """The non-root case; when the test runs as root, in a forked child that became nobody."""
    root = Path(tempfile.mkdtemp(prefix="c2c-unreadable-"))
    try:
        (root / "media").mkdir()
        (root / "clip.jpg").write_bytes(b"\xff\xd8clip\xff\xd9")
        for p in (root, root / "media"):
            p.chmod(0o777)
        (root / "clip.jpg").chmod(0o644)
        if os.geteuid() != 0:
            assert _place_unreadable_and_read(root) == "denied"
        else:
            rfd, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: drop to nobody, place, report through the pipe, never return to pytest
                code = 1
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                    os.write(wfd, _place_unreadable_and_read(root).encode())
                    code = 0
                except BaseException as exc:
                    os.write(wfd, f"error {type(exc).__name__}: {exc}".encode())
                finally:
                    os._exit(code)
            os.close(wfd)
            with os.fdopen(rfd, "rb") as fh:
                said = fh.read().decode()
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0 and said == "denied", said
        assert os.listdir(root / "media") == []
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_mode_000_that_the_bench_can_still_read_is_refused(card: tuple[Path, Path, Path]) -> None:
    """Told it is not root while it is: the bench's own probe reads the file, so it refuses."""
    if os.geteuid() != 0:
        pytest.skip("only root reads a mode-000 file")
    folder, staging, clip = card
    with pytest.raises(MediaError, match="does not stop this user"):
        place("unreadable", folder, "A.JPG", staging=staging, original=clip, euid=1000)
    assert os.listdir(folder) == [] and [p for p in staging.iterdir()] == [] and clip.is_file()


def test_staging_on_another_filesystem_is_a_clear_error(card: tuple[Path, Path, Path]) -> None:
    folder, _, _ = card
    other = Path("/dev/shm")
    if not other.is_dir() or os.stat(other).st_dev == os.stat(folder).st_dev:
        pytest.skip("no second filesystem to stage on")
    staging = Path(tempfile.mkdtemp(dir=other))
    try:
        with pytest.raises(MediaError, match="same filesystem"):
            place("directory", folder, "A.MOV", staging=staging)
        assert os.listdir(folder) == [] and os.listdir(staging) == []
    finally:
        shutil.rmtree(staging, ignore_errors=True)


from __future__ import annotations

import struct
from pathlib import Path

import pytest

from reference_device.errors import MediaError
from reference_device.media_check import check_file, filetype_for


def _mp4(boxes: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(struct.pack(">I4s", 8 + len(body), kind) + body for kind, body in boxes)


def _wav(data: bytes) -> bytes:
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, 8000, 16000, 2, 16)
    chunk = b"data" + struct.pack("<I", len(data)) + data
    body = b"WAVE" + fmt + chunk
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I4s", len(data), kind) + data + b"\0\0\0\0"
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", b"\0" * 13) + chunk(b"IDAT", b"x" * 20) + chunk(b"IEND", b"")


GOOD = {
    "a.jpg": b"\xff\xd8\xff\xe0" + b"x" * 100 + b"\xff\xd9",
    "b.mp4": _mp4([(b"ftyp", b"isom0000"), (b"mdat", b"y" * 500), (b"moov", b"z" * 40)]),
    "c.wav": _wav(b"\0" * 400),
    "d.png": _png(),
    "e.tif": b"II*\x00" + struct.pack("<I", 8) + b"\0" * 64,
    "f.cube": b"TITLE x\n",
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_files_pass(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(GOOD[name])
    assert check_file(path) == len(GOOD[name])


@pytest.mark.parametrize("name", ["a.jpg", "b.mp4", "c.wav", "d.png"])
def test_truncated_is_corrupt(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(GOOD[name][: len(GOOD[name]) * 2 // 3])
    with pytest.raises(MediaError) as err:
        check_file(path)
    assert err.value.reason == "corrupt"


def test_wrong_magic_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(b"not a jpeg at all")
    with pytest.raises(MediaError, match="SOI"):
        check_file(path)


def test_zero_vanished_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zero = tmp_path / "z.mov"
    zero.write_bytes(b"")
    with pytest.raises(MediaError) as err:
        check_file(zero)
    assert err.value.reason == "zero_length"
    with pytest.raises(MediaError) as err:
        check_file(tmp_path / "gone.mov")
    assert err.value.reason == "vanished"
    (tmp_path / "dir.mov").mkdir()
    with pytest.raises(MediaError) as err:
        check_file(tmp_path / "dir.mov")
    assert err.value.reason == "unreadable"
    locked = tmp_path / "locked.jpg"
    locked.write_bytes(GOOD["a.jpg"])

    def deny(*_a: object, **_k: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(MediaError) as err:
        check_file(locked)
    assert err.value.reason == "unreadable"


def test_filetypes() -> None:
    assert filetype_for(Path("A001.MOV")) == "video/quicktime"
    assert filetype_for(Path("x.RAF")) == "image/x-fujifilm-raf"
    assert filetype_for(Path("noext")) == "application/octet-stream"

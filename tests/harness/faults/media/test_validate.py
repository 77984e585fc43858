from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

from harness.errors import MediaError
from harness.faults.media import validate


def _entry(valid_set: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(e for e in valid_set if e["kind"] == kind)


def test_cube_strict_row_count(tmp_path: Path) -> None:
    p = tmp_path / "look.cube"
    p.write_text("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7)
    assert "7 rows, LUT_3D_SIZE 2 needs 8" in (validate(p).error or "")
    p.write_text("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7 + "0 0\n")
    assert "row has 2 values" in (validate(p).error or "")
    p.write_text("0 0 0\n")
    assert "before LUT_3D_SIZE" in (validate(p).error or "")
    p.write_text('TITLE "x"\nLUT_3D_SIZE 2\n# c\n\n' + "0.5 0.5 0.5\n" * 8)
    assert validate(p).ok


def test_wav_chunk_running_past_the_end(valid_set: list[dict[str, Any]], tmp_path: Path) -> None:
    src = Path(_entry(valid_set, "wav")["path"])
    data = bytearray(src.read_bytes())
    # enlarge the last chunk (data) size field while keeping RIFF size consistent
    pos = data.rfind(b"data")
    struct.pack_into("<I", data, pos + 4, struct.unpack_from("<I", data, pos + 4)[0] + 100)
    bad = tmp_path / "bad.WAV"
    bad.write_bytes(bytes(data))
    assert "runs past the end" in (validate(bad).error or "")


def test_plain_tiff_is_not_a_dng(valid_set: list[dict[str, Any]], tmp_path: Path) -> None:
    fake = tmp_path / "fake.DNG"
    shutil.copy(_entry(valid_set, "tiff")["path"], fake)
    assert "missing tags" in (validate(fake).error or "")


def test_wrong_container_for_extension(valid_set: list[dict[str, Any]], tmp_path: Path) -> None:
    fake = tmp_path / "photo.JPG"
    shutil.copy(_entry(valid_set, "tiff")["path"], fake)
    assert "expected JPEG" in (validate(fake).error or "")


def test_sha_mismatch_and_not_a_file(valid_set: list[dict[str, Any]], tmp_path: Path) -> None:
    entry = _entry(valid_set, "jpg")
    assert "differs from expected" in (
        validate(Path(entry["path"]), expect_sha256="0" * 64).error or ""
    )
    (tmp_path / "dir.JPG").mkdir()
    assert "not a regular file" in (validate(tmp_path / "dir.JPG").error or "")


def test_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"'\.xyz'"):
        validate(tmp_path / "a.xyz")

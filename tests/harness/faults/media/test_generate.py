from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from harness.errors import MediaError
from harness.faults.media import KINDS, FixtureGenerator, MediaKit, sha256_file, validate

BIT_EXACT = (
    "jpg",
    "tiff",
    "dng",
    "wav",
    "cube",
    "bin",
    "mp4",
    "mov",
    "prores",
)  # HEIC: x265 threads


def test_every_kind_generated_and_fully_decodes(valid_set: list[dict[str, Any]]) -> None:
    assert sorted(e["kind"] for e in valid_set) == sorted(k for k in KINDS if k != "bin")
    for entry in valid_set:
        path = Path(entry["path"])
        result = validate(path, expect_sha256=entry["sha256"])
        assert result.ok, result.error
        assert entry["size"] == path.stat().st_size
        assert entry["corruption"] is None


def test_jpeg_carries_exif_from_the_manifest(valid_set: list[dict[str, Any]]) -> None:
    entry = next(e for e in valid_set if e["kind"] == "jpg")
    with Image.open(entry["path"]) as im:
        exif = im.getexif()
        ifd = exif.get_ifd(0x8769)
    assert exif[0x010F] == entry["metadata"]["make"]
    assert exif[0x0110] == entry["metadata"]["model"]
    assert ifd[0xA431] == entry["metadata"]["serial"]
    assert ifd[0x9003] == entry["capture_time_iso"][:19].replace("-", ":").replace("T", " ")


def test_video_and_audio_carry_timecode(valid_set: list[dict[str, Any]]) -> None:
    for entry in valid_set:
        if entry["kind"] in ("mp4", "mov", "prores"):
            details = validate(Path(entry["path"])).details
            assert details["timecode"] == entry["metadata"]["timecode"]
            assert details["video_frames"] == entry["metadata"]["frames"]
        if entry["kind"] == "wav":
            details = validate(Path(entry["path"])).details
            assert details["time_reference"] == entry["metadata"]["time_reference"] > 0
            assert details["chunks"] == ["fmt ", "bext", "iXML", "data"]


def test_dng_develops_in_libraw_or_passes_structure(valid_set: list[dict[str, Any]]) -> None:
    entry = next(e for e in valid_set if e["kind"] == "dng")
    details = validate(Path(entry["path"])).details
    assert details["dng_version"] == "1.4.0.0"
    assert details["shape"] == [192, 256]


def test_camera_style_names(valid_set: list[dict[str, Any]]) -> None:
    clips = [e["name"] for e in valid_set if e["kind"] in ("mp4", "mov", "prores")]
    assert all(re.fullmatch(r"[A-D]\d{3}_C\d{3}_\d{4}[A-Z0-9]{2}\.(MOV|MP4)", n) for n in clips), (
        clips
    )
    wav = next(e["name"] for e in valid_set if e["kind"] == "wav")
    assert re.fullmatch(r"[A-D]\d{3}_S\d{2}_T\d{3}\.WAV", wav)


def test_same_seed_same_names_metadata_and_bytes(tmp_path: Path) -> None:
    runs = []
    for i in range(2):
        kit = MediaKit(seed=99, stash_dir=tmp_path / f"s{i}")
        runs.append(kit.generate(["all", "bin"], tmp_path / f"run{i}"))
    a, b = runs
    assert [e["name"] for e in a] == [e["name"] for e in b]
    assert [e["metadata"] for e in a] == [e["metadata"] for e in b]
    assert [e["capture_time"] for e in a] == [e["capture_time"] for e in b]
    for x, y in zip(a, b, strict=True):
        if x["kind"] in BIT_EXACT:
            assert x["sha256"] == y["sha256"], x["name"]
    other = MediaKit(seed=100, stash_dir=tmp_path / "s3").generate(["all"], tmp_path / "run3")
    assert [e["name"] for e in other] != [e["name"] for e in a]


def test_mtime_is_the_capture_time(valid_set: list[dict[str, Any]]) -> None:
    for entry in valid_set:
        assert Path(entry["path"]).stat().st_mtime == pytest.approx(entry["capture_time"], abs=1)


def test_large_data_file_exact_size_and_hash(tmp_path: Path) -> None:
    gen = FixtureGenerator(seed=1)
    size = 20 * 1024 * 1024 + 7
    fx = gen.large(tmp_path, size)
    assert fx.path.suffix == ".bin" and fx.format == "data"
    assert fx.path.stat().st_size == size
    assert sha256_file(fx.path) == fx.sha256


@pytest.mark.parametrize(
    "name",
    [
        "clip with spaces.MOV",
        "Überraschung ñandú.JPG",
        "e\u0301te\u0301.WAV",
        "日本語 🎬 take.MP4",
        "-dash 'q' \"d\".cube",
    ],
)
def test_hostile_names_are_written_and_valid(tmp_path: Path, name: str) -> None:
    kind = {".MOV": "mov", ".JPG": "jpg", ".WAV": "wav", ".MP4": "mp4", ".cube": "cube"}[
        Path(name).suffix
    ]
    kit = MediaKit(seed=3, stash_dir=tmp_path / "stash")
    entry = kit.generate_named(kind, tmp_path / "card", name)
    assert entry["name"] == name
    assert (tmp_path / "card" / name).is_file()
    assert validate(Path(entry["path"])).ok


def test_hostile_name_style_generates_unicode_and_spaces(tmp_path: Path) -> None:
    kit = MediaKit(seed=3, hostile_names=True, stash_dir=tmp_path / "stash")
    entries = kit.generate(["jpg", "wav", "mov"], tmp_path, count=2)
    names = [e["name"] for e in entries]
    assert any(" " in n for n in names) and any(not n.isascii() for n in names)
    assert all(validate(Path(e["path"])).ok for e in entries)


@pytest.mark.parametrize("bad", ["a/b.JPG", "", "..", "x\0y.JPG", "n" * 300 + ".JPG"])
def test_bad_names_refused_without_leftovers(tmp_path: Path, bad: str) -> None:
    with pytest.raises(MediaError, match="name"):
        FixtureGenerator().generate("jpg", tmp_path, name=bad)
    assert list(tmp_path.iterdir()) == []


def test_unknown_kind_named_in_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="'gif'"):
        MediaKit().generate(["gif"], tmp_path)


def test_cli_writes_files_and_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.faults.media.__main__ import main
    from harness.faults.media.manifest import load_manifest

    assert main(["--out", str(tmp_path), "--kinds", "jpg,cube", "--seed", "2"]) == 0
    entries = load_manifest(tmp_path / "media-manifest.json")
    assert [e["kind"] for e in entries] == ["jpg", "cube"]
    assert all(validate(Path(e["path"])).ok for e in entries)
    assert main(["--out", str(tmp_path), "--kinds", "gif"]) == 2
    assert "unknown media kind 'gif'" in capsys.readouterr().err

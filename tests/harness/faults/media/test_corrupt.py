from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.errors import MediaError
from harness.faults.media import MediaKit, load_manifest, sha256_file, validate
from tests.waiting import wait_until as _wait_for

DECODER_VISIBLE = ("zero_length", "truncate", "header_damage")


def _copy(entry: dict[str, Any], tmp_path: Path) -> Path:
    dest = tmp_path / "card" / entry["name"]
    dest.parent.mkdir(exist_ok=True)
    shutil.copy2(entry["path"], dest)
    return dest


@pytest.mark.parametrize("how", DECODER_VISIBLE)
def test_visible_damage_changes_hash_and_fails_full_decode(
    valid_set: list[dict[str, Any]], tmp_path: Path, how: str
) -> None:
    kit = MediaKit(stash_dir=tmp_path / "stash")
    for entry in valid_set:
        path = _copy(entry, tmp_path)
        rec = kit.corrupt(path, how)
        assert rec["corruption"]["how"] == how
        assert rec["corruption"]["original_sha256"] == entry["sha256"]
        assert rec["sha256"] != entry["sha256"]
        result = validate(path)
        assert not result.ok, f"{how} {entry['name']} still decodes"
        assert entry["name"] in (result.error or "")
        # the original bytes are kept
        assert sha256_file(Path(rec["corruption"]["stash"])) == entry["sha256"]


def test_bitflip_always_changes_hash(valid_set: list[dict[str, Any]], tmp_path: Path) -> None:
    kit = MediaKit(stash_dir=tmp_path / "stash")
    for entry in valid_set:
        path = _copy(entry, tmp_path)
        rec = kit.corrupt(path, "bitflip")
        assert rec["sha256"] != entry["sha256"]
        assert rec["size"] == entry["size"]
        assert rec["corruption"]["params"]["offset"] == entry["size"] // 2


def test_restore_brings_back_the_original(valid_set: list[dict[str, Any]], tmp_path: Path) -> None:
    kit = MediaKit(stash_dir=tmp_path / "stash")
    entry = valid_set[0]
    path = _copy(entry, tmp_path)
    rec = kit.corrupt(path, "truncate", keep=100)
    assert path.stat().st_size == 100
    kit.restore(rec)
    assert sha256_file(path) == entry["sha256"]


def test_vanish_now_and_scheduled_on_a_trigger(kit: MediaKit, tmp_path: Path) -> None:
    a, b = kit.generate(["jpg"], tmp_path / "card", count=2)
    rec = kit.corrupt(Path(a["path"]), "vanish")
    assert not Path(a["path"]).exists() and rec["sha256"] is None
    assert sha256_file(Path(rec["corruption"]["stash"])) == a["sha256"]

    started = {"upload": False}
    fault = kit.schedule(Path(b["path"]), "vanish", when=lambda: started["upload"], timeout=10)
    assert Path(b["path"]).exists() and not fault.fired
    started["upload"] = True
    record = fault.wait(10)
    assert record is not None and record["corruption"]["how"] == "vanish"
    assert not Path(b["path"]).exists()


def test_rename_after_delay(kit: MediaKit, tmp_path: Path) -> None:
    (entry,) = kit.generate(["mov"], tmp_path / "card")
    fault = kit.schedule(Path(entry["path"]), "rename", delay=0.01, new_name="renamed clip.MOV")
    rec = fault.wait(10)
    assert rec is not None
    assert not Path(entry["path"]).exists()
    assert sha256_file(tmp_path / "card" / "renamed clip.MOV") == entry["sha256"]


def test_scheduled_trigger_never_met_is_a_clear_error(kit: MediaKit, tmp_path: Path) -> None:
    (entry,) = kit.generate(["jpg"], tmp_path)
    fault = kit.schedule(Path(entry["path"]), "vanish", when=lambda: False, timeout=0.05)
    with pytest.raises(MediaError, match="trigger not met"):
        fault.wait(10)
    assert Path(entry["path"]).exists()


def test_permission_denied_makes_the_file_unreadable(kit: MediaKit, tmp_path: Path) -> None:
    (entry,) = kit.generate(["wav"], tmp_path / "card")
    path = Path(entry["path"])
    rec = kit.corrupt(path, "permission_denied")
    effective = rec["corruption"]["params"]["effective"]
    assert effective == ("directory" if os.geteuid() == 0 else "chmod")
    with pytest.raises(OSError):
        path.read_bytes()
    kit.restore(rec)
    assert sha256_file(path) == entry["sha256"]


def test_grow_forever_until_stopped(kit: MediaKit, tmp_path: Path) -> None:
    (entry,) = kit.generate(["mov"], tmp_path / "card")
    path = Path(entry["path"])
    kit.corrupt(path, "grow", chunk=4096, interval=0.001)
    _wait_for(lambda: path.stat().st_size >= entry["size"] + 3 * 4096)
    appended = kit.stop_growing(path)
    size = path.stat().st_size
    assert size == entry["size"] + appended
    assert path.stat().st_size == size
    grow_entry = next(
        e for e in kit.manifest() if e["corruption"] and e["corruption"]["how"] == "grow"
    )
    assert grow_entry["corruption"]["appended_bytes"] == appended


def test_manifest_file_records_everything(kit: MediaKit, tmp_path: Path) -> None:
    entries = kit.generate(["jpg", "cube"], tmp_path / "card")
    kit.corrupt(Path(entries[1]["path"]), "zero_length")
    on_disk = load_manifest(tmp_path / "manifest.json")
    assert on_disk == kit.manifest()
    assert [e["corruption"] and e["corruption"]["how"] for e in on_disk] == [
        None,
        None,
        "zero_length",
    ]
    last = on_disk[-1]
    assert (
        last["size"] == 0
        and last["format"] == "cube-lut"
        and last["capture_time"] == entries[1]["capture_time"]
    )
    for key in ("name", "size", "sha256", "capture_time", "format", "metadata", "corruption"):
        assert key in on_disk[0]


def test_bad_requests_are_named(kit: MediaKit, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="unknown corruption 'melt'"):
        kit.corrupt(tmp_path / "x.JPG", "melt")
    with pytest.raises(MediaError, match="not an existing regular file"):
        kit.corrupt(tmp_path / "missing.JPG", "truncate")
    (entry,) = kit.generate(["jpg"], tmp_path)
    with pytest.raises(MediaError, match="bad parameters"):
        kit.corrupt(Path(entry["path"]), "truncate", nonsense=1)
    with pytest.raises(MediaError, match="must cut something"):
        kit.corrupt(Path(entry["path"]), "truncate", keep=10**9)
    assert sha256_file(Path(entry["path"])) == entry["sha256"]


def test_load_manifest_rejects_other_json(tmp_path: Path) -> None:
    bad = tmp_path / "m.json"
    bad.write_text("[1, 2]")
    with pytest.raises(MediaError, match="not a c2c-media-manifest/1"):
        load_manifest(bad)


@pytest.mark.parametrize("how", ["truncate", "bitflip", "permission_denied", "rename", "vanish"])
def test_corruptors_on_hostile_names(kit: MediaKit, tmp_path: Path, how: str) -> None:
    entry = kit.generate_named("jpg", tmp_path / "card", "Überraschung 🎬 'take' 2.JPG")
    rec = kit.corrupt(Path(entry["path"]), how)
    assert rec["name"] == entry["name"]
    assert rec["corruption"]["original_sha256"] == entry["sha256"]
    kit.restore(rec)
    assert sha256_file(Path(entry["path"])) == entry["sha256"]
    assert load_manifest(tmp_path / "manifest.json")[-1]["name"] == entry["name"]


def test_every_corruption_has_its_function() -> None:
    """MediaKit.corrupt dispatches through ONE_SHOT: a name in HOWS without a function would fail late."""
    from harness.faults.media.corrupt import HOWS, ONE_SHOT

    assert set(ONE_SHOT) == set(HOWS) - {"grow"}

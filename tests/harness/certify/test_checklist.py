from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.items.checklist import (
    DEFAULT_CHECKLIST,
    Measurement,
    load_checklist,
    parse_checklist,
)

RAW = tomllib.loads(DEFAULT_CHECKLIST.read_text(encoding="utf-8"))


def test_packaged_checklist_loads_every_item() -> None:
    checklist = load_checklist()
    assert checklist.ids == RAW["ids"]
    assert len(checklist) == 67
    assert "C2C-UPL-01" in checklist and "C2C-NOPE-01" not in checklist


def test_named_measurements_have_openhtf_limits() -> None:
    c = load_checklist()
    resend = c["C2C-CTL-01"].measurement("resent_bytes_per_cut")
    assert resend.check(5_000_000, part_size=8_388_608)
    assert not resend.check(9_000_000, part_size=8_388_608)
    assert c["C2C-NETW-01"].measurement("upload_Mbps").check(50)
    assert not c["C2C-NETW-01"].measurement("upload_Mbps").check(49.9)
    assert c["C2C-SOCK-01"].measurement("heartbeat_gap_s").check(300)
    assert not c["C2C-SOCK-01"].measurement("heartbeat_gap_s").check(301)
    assert c["C2C-NET-02"].measurement("user_alerts").check(0)
    assert not c["C2C-NET-02"].measurement("user_alerts").check(1)
    assert c["C2C-NET-02"].measurement("refreshes").low is not None


def test_symbolic_limit_needs_its_context() -> None:
    m = Measurement("resent_bytes_per_cut", "bytes", high="part_size")
    with pytest.raises(ConfigError, match="part_size"):
        m.check(1)


def test_kinds_and_automatable() -> None:
    c = load_checklist()
    assert c["C2C-UPL-03"].applies_to("camera") and not c["C2C-UPL-03"].applies_to("app")
    assert c["C2C-WF-01"].automatable is False
    assert c["C2C-HDR-01"].automatable is True


def _bad(mutate) -> str:  # type: ignore[no-untyped-def]
    data = copy.deepcopy(RAW)
    mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_checklist(data)
    return str(info.value)


def test_validation_names_the_bad_field() -> None:
    assert "applies" in _bad(lambda d: d["item"][0].update(applies="kind == toaster"))
    assert "how_verified" in _bad(lambda d: d["item"][0].update(how_verified=["vibes"]))
    assert "scenarios" in _bad(lambda d: d["item"][0].update(scenarios=[]))
    assert "'id'" in _bad(lambda d: d["item"][0].update(id="UPL-1"))
    assert "duplicate" in _bad(lambda d: d["item"].append(copy.deepcopy(d["item"][0])))
    assert "no [[item]]" in _bad(lambda d: d["ids"].append("C2C-ZZZ-01"))
    assert "not listed" in _bad(lambda d: d["ids"].remove("C2C-UPL-01"))
    assert "schema" in _bad(lambda d: d.update(schema="v0"))
    assert "low" in _bad(lambda d: d["item"][27]["measurements"][0].update(low="a lot"))
    assert "unknown field" in _bad(lambda d: d["item"][0].update(colour="red"))


def test_missing_and_broken_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_checklist(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("ids = [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_checklist(broken)


def test_the_checklist_is_read_once_per_file_version(tmp_path: Path) -> None:
    """A bench worker loaded it at every scenario's setup (~5 % of its CPU); an edit is read again."""
    assert load_checklist() is load_checklist()
    copy_of = tmp_path / "checklist.toml"
    text = DEFAULT_CHECKLIST.read_text(encoding="utf-8")
    copy_of.write_text(text, encoding="utf-8")
    first = load_checklist(copy_of)
    assert load_checklist(copy_of) is first and first.path == copy_of
    title = first.items[0].title
    copy_of.write_text(text.replace(f'"{title}"', '"Renamed in place"', 1), encoding="utf-8")
    assert load_checklist(copy_of).items[0].title == "Renamed in place"
    copy_of.write_text("ids = [", encoding="utf-8")
    for _ in range(2):  # a broken file raises every time, never a cached answer
        with pytest.raises(ConfigError, match="not valid TOML"):
            load_checklist(copy_of)

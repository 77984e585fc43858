"""Settings logic (unit): part plans, TOML loading, validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cloud.settings import CloudSettings, dump_toml
from harness.errors import ConfigError

MIB = 1024 * 1024


@pytest.mark.parametrize(("filesize", "parts", "plan"), [
    (0, None, (1, 0)), (1, None, (1, 1)), (21_136_250, None, (2, 10_568_125)),
    (50_645_990, None, (3, 16_881_997)), (15 * MIB, 3, (3, 5 * MIB)),
    (15 * MIB - 1, 3, (3, 5 * MIB)), (15 * MIB - 3, 3, (1, 15 * MIB - 3)), (10, 1, (1, 10)),
    (10, 10001, (1, 10)),
    (5 * 1024**4, None, (10000, 549_755_814)),
])
def test_part_plan(filesize: int, parts: int | None, plan: tuple[int, int]) -> None:
    count, size = CloudSettings().part_plan(filesize, parts)
    assert (count, size) == plan
    last = filesize - size * (count - 1)
    assert 0 <= last <= size or count == 1
    if count > 1:
        assert last > 0 and size >= 5 * MIB


def test_parts_ignored_when_switched_off() -> None:
    settings = CloudSettings().updated({"honour_parts": False})
    assert settings.part_plan(30 * MIB, 3) == (2, 15 * MIB)


def test_toml_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(dump_toml({"device_code_lifetime": 30, "offset_sign": "strict",
                               "strict_client_version": True, "upload_base_url": 'x"y'}))
    with pytest.raises(ConfigError, match="upload_base_url"):
        CloudSettings.from_toml(path)
    path.write_text("[cloud]\n" + dump_toml({"device_code_lifetime": 30, "offset_sign": "strict"}))
    settings = CloudSettings.from_toml(path)
    assert settings.device_code_lifetime == 30 and settings.offset_sign == "strict"


@pytest.mark.parametrize(("changes", "words"), [
    ({"typo": 1}, "unknown setting 'typo'"), ({"max_parts": 0}, "max_parts"),
    ({"status_mode": "smoke"}, "status_mode"), ({"access_token_lifetime": -1}, ">= 0"),
    ({"access_token_lifetime": True}, "int"), ({"default_part_size": 1}, "default_part_size"),
])
def test_validation_names_the_field(changes: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        CloudSettings().updated(changes)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        CloudSettings.from_toml(tmp_path / "missing.toml")

"""read_toml / read_json_object: one wording for a missing, unreadable or malformed bench file."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config_files import read_json_object, read_toml
from harness.errors import ConfigError


def test_read_toml_gives_the_table(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text('name = "x"\n[t]\nn = 2\n', encoding="utf-8")
    assert read_toml(path, "profile") == {"name": "x", "t": {"n": 2}}


@pytest.mark.parametrize(("text", "problem"), [
    (None, "not found; try b"),
    ("name = ", "is not valid TOML"),
    (b"\xff\xfe", "is not UTF-8 text"),
])
def test_read_toml_names_what_and_where(tmp_path: Path, text: str | bytes | None, problem: str) -> None:
    path = tmp_path / "a.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_toml(path, "device profile 'a'", missing_hint="; try b")
    assert str(caught.value).startswith(f"device profile 'a': {path} {problem}")


def test_a_directory_is_not_readable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^checklist: cannot read .*: Is a directory"):
        read_toml(tmp_path, "checklist")


def test_read_json_object(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"a": [1]}', encoding="utf-8")
    assert read_json_object(path, "reports") == {"a": [1]}
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^reports: .* holds list, not a JSON object"):
        read_json_object(path, "reports")
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^reports: .* is not valid JSON"):
        read_json_object(path, "reports")

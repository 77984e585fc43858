"""Reading the bench's TOML and JSON files with one error wording.

Every reader of a checklist, profile, answer file or results file used to wrap the same
two failures (missing file, unparsable text) in its own words; here they become one
`ConfigError` that names what the file is for and where it is, so a person can fix it.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from harness.errors import ConfigError


def _read_text(path: Path, what: str, missing_hint: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{what}: {path} not found{missing_hint}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what}: {path} is not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from exc


def read_toml(path: Path, what: str, *, missing_hint: str = "") -> dict[str, Any]:
    """The TOML document at `path`; ConfigError '<what>: <path> ...' if missing or not TOML."""
    text = _read_text(path, what, missing_hint)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what}: {path} is not valid TOML: {exc}") from exc


def read_json_object(path: Path, what: str, *, missing_hint: str = "") -> dict[str, Any]:
    """The JSON object at `path`; ConfigError '<what>: <path> ...' if missing, not JSON or not an object."""
    text = _read_text(path, what, missing_hint)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what}: {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: {path} holds {type(data).__name__}, not a JSON object")
    return data

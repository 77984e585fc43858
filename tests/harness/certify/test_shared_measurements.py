"""Top-level `[[measurement]]` tables: one definition merged into every listed item."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.items.checklist import DEFAULT_CHECKLIST, load_checklist, parse_checklist

RAW = tomllib.loads(DEFAULT_CHECKLIST.read_text(encoding="utf-8"))


def _with(shared: Any) -> dict[str, Any]:
    data = copy.deepcopy(RAW)
    data["measurement"] = shared
    return data


def test_shared_definition_is_merged_into_each_listed_item() -> None:
    c = parse_checklist(_with([{"name": "probe_count", "unit": "count", "high": 0, "doc": "d",
                                "items": ["C2C-AUTH-01", "C2C-QA-01"]}]))
    for item_id in ("C2C-AUTH-01", "C2C-QA-01"):
        m = c[item_id].measurement("probe_count")
        assert m.check(0) and not m.check(1)
    with pytest.raises(KeyError):
        c["C2C-AUTH-02"].measurement("probe_count")
    # the item's own measurements are kept, the shared one comes after them
    assert c["C2C-AUTH-01"].measurements[0].name == "user_code_digits"


def test_shared_symbolic_limits_resolve_from_the_scenario() -> None:
    c = parse_checklist(_with([{"name": "files_intact", "unit": "count", "low": "expected_files",
                                "high": "expected_files", "items": ["C2C-QA-01"]}]))
    m = c["C2C-QA-01"].measurement("files_intact")
    assert m.check(3, expected_files=3)
    assert not m.check(2, expected_files=3)


@pytest.mark.parametrize(("shared", "needle"), [
    ({"name": "x", "unit": "count"}, "missing field 'items'"),
    ({"name": "x", "unit": "count", "items": []}, "field 'items' must be a non-empty list"),
    ({"name": "x", "unit": "count", "items": ["C2C-NOPE-01"]}, "C2C-NOPE-01"),
    ({"name": "x", "unit": "count", "items": "C2C-QA-01"}, "field 'items' must be list"),
    ({"name": "x", "items": ["C2C-QA-01"]}, "missing field 'unit'"),
    ({"name": "x", "unit": "count", "high": "nope", "items": ["C2C-QA-01"]}, "field 'high'"),
    ({"name": "x", "unit": "count", "limit": 3, "items": ["C2C-QA-01"]}, "unknown field(s) ['limit']"),
    ({"name": "user_code_digits", "unit": "digits", "items": ["C2C-AUTH-01"]}, "already has a measurement"),
])
def test_bad_shared_definition_names_the_field(shared: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_checklist(_with([shared]))
    assert needle in str(info.value)


def test_measurement_must_be_an_array_of_tables() -> None:
    with pytest.raises(ConfigError, match="array of tables"):
        parse_checklist(_with({"name": "x"}))


def test_packaged_checklist_still_loads() -> None:
    assert len(load_checklist()) == len(RAW["ids"])

"""What a collected pytest item is, in the checklist's words: its item IDs and its Gherkin names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest_bdd.scenario import scenario_wrapper_template_registry

from harness.items.checklist import ITEM_ID


def checklist_ids(item: pytest.Item) -> list[str]:
    """The checklist IDs a scenario is tagged with (its @C2C-... markers)."""
    return sorted({m.name for m in item.iter_markers() if ITEM_ID.match(m.name)})


def _template(item: pytest.Item) -> Any:
    obj = getattr(item, "obj", None)
    return None if obj is None else scenario_wrapper_template_registry.get(obj)


def outline_name(item: pytest.Item) -> str:
    """The scenario's Gherkin name without its Examples row (the name checklist.toml lists)."""
    template = _template(item)
    return item.name if template is None else str(template.name)


def scenario_name(item: pytest.Item) -> str:
    """The Gherkin scenario name, with the Examples row of an outline."""
    template = _template(item)
    if template is None:
        return item.name
    name = str(template.name)
    example = getattr(getattr(item, "callspec", None), "params", {}).get("_pytest_bdd_example")
    if example:
        name += " [" + ", ".join(f"{k}={v}" for k, v in example.items()) + "]"
    return name


def feature_file(item: pytest.Item) -> str:
    """The .feature file's name (the test module's name for a plain test)."""
    feature = getattr(_template(item), "feature", None)
    return Path(str(getattr(feature, "filename", "") or getattr(feature, "rel_filename", ""))).name or Path(str(item.path)).name


def plain_nodeid(item: pytest.Item) -> str:
    """The node id without the `@group` suffix `--dist loadgroup` adds: the same in serial and sharded runs."""
    nodeid = item.nodeid
    for mark in item.iter_markers("xdist_group"):
        name = str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        while nodeid.endswith(f"@{name}"):
            nodeid = nodeid.removesuffix(f"@{name}")
    return nodeid


def step_texts(item: pytest.Item) -> list[str]:
    """The Gherkin text of a scenario's steps, background first ([] for a plain test)."""
    template = _template(item)
    if template is None:
        return []
    return [str(step.name) for step in template.steps]


def expected_scenarios(items: list[pytest.Item]) -> dict[str, list[str]]:
    """Per checklist item, every scenario (and outline example) the suite has for it."""
    expected: dict[str, set[str]] = {}
    for item in items:
        for item_id in checklist_ids(item):
            expected.setdefault(item_id, set()).add(scenario_name(item))
    return {k: sorted(v) for k, v in sorted(expected.items())}

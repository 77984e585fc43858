"""The feature files, the checklist and the step library agree with each other.

- every checklist item has at least one scenario tagged with its ID, and every scenario
  the checklist names exists with that tag;
- every tag is a checklist ID or a known tag (so --strict-markers never trips);
- every step of every scenario (outline rows rendered) matches exactly one step definition.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pytest_bdd.parser import FeatureParser

from harness.bdd.catalog import find_step, step_catalog
from harness.bdd.markers import BUILTIN_TAGS
from harness.certify.cli import plugin_args
from harness.feature_files import FEATURES_DIR
from harness.items.checklist import ITEM_ID, load_checklist


def _scenarios() -> list[tuple[str, str, set[str], list[tuple[str, str]]]]:
    """(feature file, scenario name, tags, [(keyword, rendered step text)]) for every example row."""
    out = []
    for path in sorted(FEATURES_DIR.glob("*.feature")):
        feature = FeatureParser(str(FEATURES_DIR), path.name).parse()
        for template in feature.scenarios.values():
            tags = set(template.tags) | set(feature.tags)
            rows = [(c, set(ex.tags)) for ex in template.examples for c in ex.as_contexts()] or [({}, set())]
            for ctx, example_tags in rows:
                scenario = template.render(ctx)
                out.append((path.name, template.name, tags | example_tags, [(s.type, s.name) for s in scenario.steps]))
    return out


SCENARIOS = _scenarios()
CHECKLIST = load_checklist()


def test_features_exist() -> None:
    assert FEATURES_DIR.is_dir()
    assert len(SCENARIOS) >= len(CHECKLIST)


@pytest.mark.parametrize("item_id", CHECKLIST.ids)
def test_every_item_has_a_tagged_scenario(item_id: str) -> None:
    tagged = [(f, n) for f, n, tags, _ in SCENARIOS if item_id in tags]
    assert tagged, f"{item_id} has no scenario tagged @{item_id}"


def test_checklist_scenarios_exist_with_their_tag() -> None:
    index: dict[tuple[str, str], set[str]] = {}
    for f, n, tags, _ in SCENARIOS:
        index.setdefault((f, n), set()).update(tags)
    for item in CHECKLIST:
        for ref in item.scenarios:
            assert (ref.feature, ref.name) in index, f"{item.id}: no scenario {ref.name!r} in {ref.feature}"
            assert item.id in index[(ref.feature, ref.name)], f"{ref.name!r} is not tagged @{item.id}"


def test_every_tag_is_known() -> None:
    known = set(CHECKLIST.ids) | set(BUILTIN_TAGS) | {"tether"}
    for f, n, tags, _ in SCENARIOS:
        unknown = {t for t in tags if t not in known and not ITEM_ID.match(t)}
        assert not unknown, f"{f}: {n!r} has unknown tags {unknown}"
        bogus_ids = {t for t in tags if ITEM_ID.match(t) and t not in CHECKLIST}
        assert not bogus_ids, f"{f}: {n!r} tags IDs not in the checklist: {bogus_ids}"


def test_every_step_has_exactly_one_definition() -> None:
    catalog = step_catalog()
    missing, ambiguous = [], []
    for f, _n, _, steps in SCENARIOS:
        for keyword, text in steps:
            found = find_step(keyword, text, catalog)
            if not found:
                missing.append(f"{f}: {keyword} {text}")
            elif len(found) > 1:
                ambiguous.append(f"{f}: {keyword} {text} -> {[s.function for s in found]}")
    assert not missing, "steps without a definition:\n" + "\n".join(missing)
    assert not ambiguous, "steps matching several definitions:\n" + "\n".join(ambiguous)


def test_every_step_is_documented() -> None:
    undocumented = [s.pattern for s in step_catalog() if not s.doc]
    assert not undocumented


def test_suite_module_collects_every_scenario() -> None:
    """The certification suite collects one test per scenario/example row under --strict-markers."""
    repo = Path(__file__).resolve().parents[1]
    argv = [sys.executable, "-m", "pytest", str(repo / "harness" / "bdd" / "suite.py"), *plugin_args(),
            "--collect-only", "-q", "--strict-markers", "-W", "error::pytest.PytestUnknownMarkWarning"]
    done = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"{len(SCENARIOS)} tests collected" in done.stdout, done.stdout[-2000:]

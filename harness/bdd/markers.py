"""The markers of a certification run: checklist items and feature @tags, and the @evidence-*
levels a scenario's markers give it (kept apart from the plugin so tests and tools read them
without loading pytest hooks).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.feature_files import features_dir
from harness.items.verdicts import EVIDENCE_LEVELS, EVIDENCE_TAG, evidence_levels

_TAG_LINE = re.compile(r"^\s*@")
BUILTIN_TAGS = {
    "smoke": "fast certification subset (<= 60 s)",
    "declared": "verified from the device profile's declarations",
    "operator": "needs a person on the bench",
    "slow": "long-running scenario",
    "tethered": "tethered camera scenarios",
    **{f"{EVIDENCE_TAG}{level}": f"enforces a [{level.upper()}] point of c2c-api.md" for level in EVIDENCE_LEVELS},
}


def feature_tags(directory: Path | None = None) -> set[str]:
    """Every @tag used in the feature files (so --strict-markers accepts them)."""
    directory = features_dir() if directory is None else directory
    tags: set[str] = set()
    if directory.is_dir():
        for path in directory.glob("*.feature"):
            for line in path.read_text(encoding="utf-8").splitlines():
                if _TAG_LINE.match(line):
                    tags.update(t[1:] for t in line.split() if t.startswith("@"))
    return tags


def scenario_evidence(item: pytest.Item) -> list[str]:
    """How firm the expectations a scenario enforces are: its @evidence-* tags (c2c-api.md levels)."""
    return evidence_levels(m.name for m in item.iter_markers())

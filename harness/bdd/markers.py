"""The markers of a certification run: checklist items and feature @tags, and the @evidence-*
levels a scenario's markers give it (kept apart from the plugin so tests and tools read them
without loading pytest hooks).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from harness.items.verdicts import EVIDENCE_LEVELS, EVIDENCE_TAG, evidence_levels

if TYPE_CHECKING:  # only annotations: `c2c-certify` reads the feature folder without loading pytest
    import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
FEATURES_DIR = CHECKOUT / "features"
FEATURES_ENV = "C2C_FEATURES"
_TAG_LINE = re.compile(r"^\s*@")
BUILTIN_TAGS = {
    "smoke": "fast certification subset (<= 60 s)",
    "declared": "verified from the device profile's declarations",
    "operator": "needs a person on the bench",
    "slow": "long-running scenario",
    "tethered": "tethered camera scenarios",
    **{f"{EVIDENCE_TAG}{level}": f"enforces a [{level.upper()}] point of c2c-api.md" for level in EVIDENCE_LEVELS},
}


def features_dir() -> Path:
    """The certification's feature files: $C2C_FEATURES (a vendor's own folder) or the checkout's."""
    chosen = os.environ.get(FEATURES_ENV)
    return Path(chosen).expanduser().resolve() if chosen else FEATURES_DIR


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

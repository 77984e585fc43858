from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.faults.media import MediaKit


@pytest.fixture(scope="module")
def valid_set(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """One fixture of every kind, generated once per module (about a second)."""
    root = tmp_path_factory.mktemp("media")
    kit = MediaKit(seed=11, stash_dir=root / "stash")
    return kit.generate(["all"], root / "card")


@pytest.fixture
def kit(tmp_path: Path) -> MediaKit:
    with MediaKit(
        seed=5, manifest_path=tmp_path / "manifest.json", stash_dir=tmp_path / "stash"
    ) as k:
        yield k

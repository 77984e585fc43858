"""pytest-xdist's loadgroup scheduling, told each test's group beside its node id.

Imported only on the controller of a `--dist loadgroup` run (harness.bdd.sharding), so a
run without pytest-xdist never imports it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from xdist.scheduler import LoadGroupScheduling  # type: ignore[import-untyped]  # xdist ships no types


class GroupScheduling(LoadGroupScheduling):  # type: ignore[misc]  # its base is untyped
    """`--dist loadgroup` as xdist schedules it (one work unit a group, every other test on its
    own), with the group read from what the workers handed over (harness.bdd.sharding) instead
    of an `@group` suffix xdist could not add to the node id."""

    def __init__(self, config: pytest.Config, log: object, *, groups: Callable[[], dict[str, str]]) -> None:
        super().__init__(config, log)
        self._read_groups = groups
        self._groups: dict[str, str] = {}

    def schedule(self) -> None:
        if self.collection is None:  # the first distribution: every worker has reported (and handed over)
            self._groups = self._read_groups()
        super().schedule()

    def _split_scope(self, nodeid: str) -> str:
        """The work unit of a test: its group, else what xdist's loadgroup says (the node id)."""
        group = self._groups.get(nodeid)
        return group if group is not None else str(super()._split_scope(nodeid))

"""Suite-wide ordering: the mutant matrix first, then the other long files, longest first.

`make test` runs the suite on pytest-xdist with whole files as work units, in collection
order (`--dist loadfile --no-loadscope-reorder`). The matrix is one file whose module
fixture certifies every mutant (about ten minutes, mostly waiting on devices), so it goes
to the first worker at once while the other workers share the rest; anywhere later in the
queue it would start late and be alone at the end. The same holds, smaller, for the files
that run whole certifications or campaigns: started last, one of them is the run's tail.
Longest first, short files fill the gaps (LPT scheduling).
"""

from __future__ import annotations

import pytest

LONG_FILES = (  # from make test's --durations, longest first
    "tests/mutants/test_mutants.py",
    "tests/harness/certify/test_netw01_certify.py",
    "tests/harness/certify/test_cli.py",
    "tests/harness/chaos/test_campaign.py",
    "tests/harness/bdd/test_sharded_plugin.py",
    "tests/harness/certify/test_plugin.py",
    "tests/harness/certify/test_sharded_certify.py",
    "tests/harness/certify/test_fleet.py",
    "tests/harness/certify/test_retry.py",
    "tests/harness/faults/power/test_labgrid_profile.py",
)


def _rank(item: pytest.Item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return LONG_FILES.index(path) if path in LONG_FILES else len(LONG_FILES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move the long files' tests to the front, longest first, keeping every other test's order."""
    items[:] = sorted(items, key=_rank)  # stable: the order inside a file and among the rest holds

"""Suite-wide ordering: the mutant matrix first.

`make test` runs the suite on pytest-xdist with whole files as work units, in collection
order (`--dist loadfile --no-loadscope-reorder`). The matrix is one file whose module
fixture certifies every mutant (about ten minutes, mostly waiting on devices), so it goes
to the first worker at once while the other workers share the rest; anywhere later in the
queue it would start late and be alone at the end.
"""

from __future__ import annotations

import pytest

MATRIX_FILE = "tests/mutants/test_mutants.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move the matrix file's tests to the front, keeping every other test's order."""
    first = [i for i in items if i.nodeid.startswith(MATRIX_FILE)]
    if first:
        items[:] = first + [i for i in items if not i.nodeid.startswith(MATRIX_FILE)]

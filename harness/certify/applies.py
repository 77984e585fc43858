"""Applicability expressions moved to `harness.items.applies` (the floor below device profiles).

This name stays only until every caller imports `harness.items.applies` (issue #15 sweep).
"""

from harness.items.applies import *  # noqa: F403

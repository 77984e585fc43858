"""The checklist model moved to `harness.items.checklist` (the floor below device profiles).

This name stays only until every caller imports `harness.items.checklist` (issue #15 sweep).
"""

from harness.items.checklist import *  # noqa: F403

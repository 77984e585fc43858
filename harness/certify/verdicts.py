"""The verdict words moved to `harness.items.verdicts` (the floor below device profiles).

This name stays only until every caller imports `harness.items.verdicts` (issue #15 sweep).
"""

from harness.items.verdicts import *  # noqa: F403

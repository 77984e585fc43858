"""The certification suite: every scenario in features/, bound to the step library.

Run through `c2c-certify run` (or `pytest harness/bdd/suite.py --c2c-device=reference`).
"""

from __future__ import annotations

import os
from pathlib import Path

from pytest_bdd import scenarios

from harness.bdd.steps import step_fixtures

FEATURES_DIR = Path(os.environ.get("C2C_FEATURES", Path(__file__).resolve().parents[2] / "features"))

globals().update(step_fixtures())
scenarios(str(FEATURES_DIR))

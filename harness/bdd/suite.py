"""The certification suite: every scenario in features/ (or a vendor's own folder named by
$C2C_FEATURES), bound to the step library.

Run through `c2c-certify run` (or `pytest harness/bdd/suite.py --c2c-device=reference`).
"""

from __future__ import annotations

from pytest_bdd import scenarios

from harness.bdd.steps import step_fixtures
from harness.feature_files import features_dir

globals().update(step_fixtures())
scenarios(str(features_dir()))

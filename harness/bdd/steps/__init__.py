"""The step library, one module per protocol. Steps talk only to the protocols via `bench`.

`step_fixtures()` gives the pytest-bdd step fixtures of every module, for a test module
(`harness/bdd/suite.py`) or a vendor's own conftest to put in its namespace:

    globals().update(step_fixtures())
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

STEP_MODULES = (
    "harness.bdd.steps.device_steps",
    "harness.bdd.steps.device_display_steps",
    "harness.bdd.steps.cloud_steps",
    "harness.bdd.steps.network_steps",
    "harness.bdd.steps.packet_steps",
    "harness.bdd.steps.power_steps",
    "harness.bdd.steps.media_steps",
    "harness.bdd.steps.oracle_steps",
    "harness.bdd.steps.transfer_oracle_steps",
    "harness.bdd.steps.token_oracle_steps",
    "harness.bdd.steps.workflow_oracle_steps",
    "harness.bdd.steps.media_oracle_steps",
    "harness.bdd.steps.auth_oracle_steps",
    "harness.bdd.steps.pairing_steps",
    "harness.bdd.steps.security_steps",
    "harness.bdd.steps.presence_steps",
    "harness.bdd.steps.tethered_steps",
    "harness.bdd.steps.hostile_steps",
)


def step_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in STEP_MODULES]


def step_fixtures() -> dict[str, Any]:
    """{fixture name: step fixture} for every step definition in the library."""
    out: dict[str, Any] = {}
    for module in step_modules():
        for name, value in vars(module).items():
            if name.startswith("pytestbdd_"):
                out[f"{name}__{module.__name__.rsplit('.', 1)[-1]}"] = value
    return out

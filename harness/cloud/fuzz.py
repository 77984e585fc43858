"""Fuzz the emulator's device API from its OpenAPI document (issue #11 point 4).

The emulator is the oracle every certificate rests on, so it must answer ANY request a
device can send the way its contract says: a documented status, the documented JSON shape,
never a 5xx, and a refused request must leave the delivery ledger as it was. schemathesis
draws requests from `harness.cloud.openapi.DEVICE_SCHEMA` (valid and invalid ones, half
each) and sends them over real TLS to a real emulator process, authenticated as a device
paired through the real device-code flow.

    python -m harness.cloud.fuzz --requests 10000 [--seed 1] [--out reports/fuzz.json]

prints (and writes) the request count, 5xx count, schema violations (with the first few
examples) and whether the ledger changed only by accepted asset creations.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode

from harness.cloud.control import CloudControl
from harness.cloud.openapi import DEVICE_SCHEMA
from harness.cloud.runner import EmulatorProcess
from harness.cloud.testing import FIRMWARE, PairedDevice, api_client, pair_device
from harness.errors import BenchFailure

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
ASSET_CREATE = "POST /v2/devices/assets"
EXAMPLES_KEPT = 10


@dataclass
class FuzzReport:
    """What one run found. `ledger_ok`: rows before the run are unchanged and every new row
    belongs to an asset whose creation was accepted (2xx)."""

    requests: int = 0
    server_errors: int = 0
    violations: int = 0
    ledger_ok: bool = True
    ledger_problems: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    per_operation: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return self.server_errors == 0 and self.violations == 0 and self.ledger_ok


class DeviceApiFuzzer:
    """Runs the generated requests against one emulator and keeps the tally."""

    def __init__(self, cloud: CloudControl, device: PairedDevice,
                 contract: dict[str, Any] | None = None) -> None:
        self.cloud = cloud
        self.device = device
        self.contract = contract or DEVICE_SCHEMA
        self.schema = schemathesis.openapi.from_dict(self.contract)
        self.session = requests.Session()
        self.session.verify = str(cloud.ca_bundle)
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE or a proxy in the environment would win
        self.report = FuzzReport()
        self.created: set[str] = set()
        self._statuses: Counter[str] = Counter()
        self._per_op: Counter[str] = Counter()

    def seed_ledger(self) -> str:
        """Upload one real file, so the ledger holds a complete row the fuzz must not touch;
        returns its asset id, which path parameters `asset_id` then draw now and then."""
        with api_client(self.cloud.api_url, self.cloud.ca_bundle) as http:
            made = http.post("/v2/devices/assets", headers=self.device.headers,
                             json={"name": "seed.mp4", "filetype": "video/mp4", "filesize": 16})
            made.raise_for_status()
            asset = made.json()
            put = http.put(asset["upload_urls"][0], content=b"0123456789abcdef",
                           headers={"content-type": "video/mp4", "x-amz-acl": "private"})
            if put.status_code != 200:
                raise BenchFailure(f"the fuzz could not seed the ledger: part PUT answered {put.status_code}")
        return str(asset["id"])

    def run(self, budget: int, run_seed: int = 1) -> FuzzReport:
        """Spread `budget` requests over the operations, valid and invalid data alike."""
        asset_id = self.seed_ledger()
        self.schema = schemathesis.openapi.from_dict(_steer_asset_ids(self.contract, asset_id))
        operations = []
        for result in self.schema.get_all_operations():
            if isinstance(result, Err):
                raise BenchFailure(f"the device API's OpenAPI document is invalid: {result.err()}")
            operations.append(result.ok())
        before = {self.row_key(r): r for r in self.cloud.ledger()}
        started = time.monotonic()
        slots = [(op, mode) for op in operations for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
        share, extra = divmod(budget, len(slots))
        for index, (operation, mode) in enumerate(slots):
            self._fuzz(operation, mode, share + (1 if index < extra else 0), run_seed + index)
        self.report.seconds = round(time.monotonic() - started, 1)
        self.check_ledger(before)
        self.report.statuses = dict(sorted(self._statuses.items()))
        self.report.per_operation = dict(sorted(self._per_op.items()))
        return self.report

    def _fuzz(self, operation: Any, mode: GenerationMode, count: int, op_seed: int) -> None:
        if count <= 0:
            return
        sent = 0

        @seed(op_seed)
        @settings(max_examples=count, database=None, deadline=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])
        @given(case=operation.as_strategy(generation_mode=mode))
        def one(case: Any) -> None:
            nonlocal sent
            if sent >= count:
                return
            sent += 1
            self._send(operation.label, case)

        one()

    def _send(self, label: str, case: Any) -> None:
        headers = {"Authorization": f"Bearer {self.device.access_token}", "x-client-version": FIRMWARE}
        try:
            response = case.call(base_url=self.cloud.api_url, session=self.session, headers=headers,
                                 timeout=30, verify=str(self.cloud.ca_bundle))
        except requests.RequestException as exc:
            self._note(label, f"{label}: no answer ({type(exc).__name__})")
            self.report.server_errors += 1
            return
        self.report.requests += 1
        self._per_op[label] += 1
        self._statuses[str(response.status_code)] += 1
        if response.status_code >= 500:
            self.report.server_errors += 1
        if label == ASSET_CREATE and 200 <= response.status_code < 300:
            try:
                self.created.add(str(response.json()["id"]))
            except (ValueError, KeyError, TypeError):
                pass
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            self.report.violations += 1
            titles = "; ".join(sorted({f.title for f in group.exceptions}))
            self._note(label, f"{label} -> {response.status_code}: {titles}")
        except AssertionError as exc:
            self.report.violations += 1
            self._note(label, f"{label} -> {response.status_code}: {str(exc)[:200]}")

    def _note(self, label: str, example: str) -> None:
        if len(self.report.examples) < EXAMPLES_KEPT and example not in self.report.examples:
            self.report.examples.append(example)

    @staticmethod
    def row_key(row: dict[str, Any]) -> str:
        return str(row.get("asset_id") or row.get("id") or json.dumps(row, sort_keys=True))

    def check_ledger(self, before: dict[str, dict[str, Any]]) -> None:
        after = {self.row_key(r): r for r in self.cloud.ledger()}
        problems = [f"ledger row {key} changed" for key, row in before.items() if after.get(key) != row]
        problems += [f"ledger row {key} appeared without an accepted asset creation"
                     for key in after if key not in before and key not in self.created]
        self.report.ledger_problems = problems[:EXAMPLES_KEPT]
        self.report.ledger_ok = not problems


def _steer_asset_ids(contract: dict[str, Any], asset_id: str) -> dict[str, Any]:
    """The contract with every `asset_id` path parameter drawing the seeded asset or any string."""
    steered = copy.deepcopy(contract)
    for operations in steered["paths"].values():
        for operation in operations.values():
            for param in operation.get("parameters", []):
                if param.get("name") == "asset_id":
                    param["schema"] = {"anyOf": [{"const": asset_id}, {"type": "string"}]}
    return steered


def fuzz(budget: int, run_seed: int = 1, workdir: Path | None = None) -> FuzzReport:
    """Start an emulator, pair a device through it, fuzz its device API, stop it."""
    with (tempfile.TemporaryDirectory(prefix="c2c-fuzz-", dir=workdir) as tmp,
          EmulatorProcess(Path(tmp) / "cloud") as process):
        cloud = process.control
        if cloud is None:
            raise BenchFailure("the emulator started without its control API")
        device = pair_device(cloud, project_name="Fuzz")
        return DeviceApiFuzzer(cloud, device).run(budget, run_seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.cloud.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="how many requests to send")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the report here (JSON)")
    args = parser.parse_args(argv)
    report = fuzz(args.requests, args.seed)
    text = json.dumps({**asdict(report), "clean": report.clean}, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())

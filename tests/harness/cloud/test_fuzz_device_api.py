"""The emulator's device API under schemathesis at a small budget: every answer documented,
never a 5xx, the ledger moved only by accepted asset creations; and the fuzzer does see a
violation when the contract and the emulator disagree."""

from __future__ import annotations

import copy

from harness.cloud.control import CloudControl
from harness.cloud.fuzz import DeviceApiFuzzer
from harness.cloud.openapi import DEVICE_SCHEMA
from harness.cloud.testing import PairedDevice, api_client


def test_device_api_answers_every_request_as_documented(cloud: CloudControl, paired_device: PairedDevice) -> None:
    report = DeviceApiFuzzer(cloud, paired_device).run(400, run_seed=7)
    assert report.requests == 400
    assert report.server_errors == 0, report.examples
    assert report.violations == 0, report.examples
    assert report.ledger_ok, report.ledger_problems
    assert [r["state"] for r in cloud.ledger() if r.get("name") == "seed.mp4"] == ["complete"]  # one real row kept
    assert len(report.per_operation) == len(DEVICE_SCHEMA["paths"])  # every operation was fuzzed
    assert {"200", "204", "400", "401", "404"} <= set(report.statuses)  # accepted and refused ones


def test_a_contract_the_emulator_breaks_is_reported(cloud: CloudControl, paired_device: PairedDevice) -> None:
    contract = copy.deepcopy(DEVICE_SCHEMA)
    me = contract["paths"]["/v2/devices/me"]["get"]["responses"]["200"]["content"]["application/json"]
    me["schema"] = {**me["schema"], "required": [*me["schema"]["required"], "no_such_field"]}
    del contract["paths"]["/v2/devices/heartbeat"]["post"]["responses"]["204"]
    report = DeviceApiFuzzer(cloud, paired_device, contract).run(48, run_seed=3)
    assert report.violations > 0
    assert any("GET /v2/devices/me -> 200" in e for e in report.examples), report.examples
    assert any("POST /v2/devices/heartbeat -> 204" in e for e in report.examples), report.examples


def test_an_asset_created_outside_the_fuzz_is_a_ledger_problem(cloud: CloudControl,
                                                               paired_device: PairedDevice) -> None:
    fuzzer = DeviceApiFuzzer(cloud, paired_device)
    before = {fuzzer.row_key(r): r for r in cloud.ledger()}
    with api_client(cloud.api_url, cloud.ca_bundle) as http:
        made = http.post("/v2/devices/assets", headers=paired_device.headers,
                         json={"name": "x.mp4", "filetype": "video/mp4", "filesize": 10})
    assert made.status_code == 200
    fuzzer.check_ledger(before)
    assert not fuzzer.report.ledger_ok and "without an accepted asset creation" in fuzzer.report.ledger_problems[0]

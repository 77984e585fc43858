"""A profile's declarations checked against the journal: a false one blocks CERTIFIED."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness.bdd.declarations import contradictions
from harness.certify.certificate import build_certificate
from harness.certify.checklist import load_checklist
from harness.device.profile import load_profile

REFERENCE = load_profile("reference")


def put(asset: str, part: int, start: float, seconds: float) -> dict[str, Any]:
    return {"method": "PUT", "path": f"/s3/parts/{asset}/{part}/1", "t": start + seconds,
            "started_at": start, "duration_ms": seconds * 1000}


GROWING = "A growing file is uploaded while it is being recorded or when it completes"
SERIAL = [put("a", 1, 0.0, 1.0), put("a", 2, 1.0, 1.0), put("b", 1, 2.0, 1.0)]
PARALLEL = [put("a", 1, 0.0, 1.0), put("a", 2, 0.5, 1.0)]


def test_declaring_parallel_and_uploading_serially_is_contradicted() -> None:
    [found] = contradictions(REFERENCE, SERIAL, {"A burst of captures is uploaded concurrently"})
    assert found.declaration == "capabilities: parallel" and "most 1, 3 part PUTs" in found.evidence
    assert contradictions(REFERENCE, PARALLEL, {"A burst of captures is uploaded concurrently"}) == []


def test_a_declaration_is_judged_only_where_a_scenario_exercised_it() -> None:
    assert contradictions(REFERENCE, SERIAL, {"Captured media is uploaded automatically"}) == []  # one small file: says nothing
    serial_device = replace(REFERENCE, capabilities=REFERENCE.capabilities - {"parallel"})
    assert contradictions(serial_device, SERIAL, {"A burst of captures is uploaded concurrently"}) == []  # it never claimed it


def test_declaring_realtime_without_a_realtime_part_is_contradicted() -> None:
    growing = [{"method": "POST", "path": "/v2/devices/assets", "t": 1.0}, put("g", 1, 2.0, 1.0)]
    [found] = contradictions(replace(REFERENCE, capabilities=frozenset({"realtime"})), growing, {GROWING})
    assert "realtime_upload/parts" in found.evidence
    live = [*growing, {"method": "POST", "path": "/v2/devices/assets/g/realtime_upload/parts", "t": 1.5}]
    assert contradictions(replace(REFERENCE, capabilities=frozenset({"realtime"})), live, {GROWING}) == []


def test_a_contradicted_declaration_keeps_the_device_from_being_certified() -> None:
    checklist = load_checklist()
    by_name: dict[str, list[str]] = {}
    for item in checklist:
        for ref in item.scenarios:
            by_name.setdefault(ref.name, []).append(item.id)
    results = [{"scenario": n, "items": ids, "verdict": "pass", "reason": "", "measurements": []}
               for n, ids in by_name.items()]
    device = {"name": "dut", "kind": "camera", "firmware": "1", "not_applicable": {}}
    assert build_certificate(results, device, checklist=checklist)["summary"]["status"] == "CERTIFIED"
    run = {"contradictions": [{"declaration": "capabilities: parallel", "evidence": "most 1"}]}
    cert = build_certificate(results, device, checklist=checklist, run=run)
    assert cert["summary"]["status"] == "NOT CERTIFIED" and cert["summary"]["exit_code"] == 1
    assert "1 declaration(s) contradicted" in cert["headline"]


def test_every_exercising_scenario_is_a_checklist_scenario() -> None:
    """A renamed scenario would silently stop the check: the names must stay the checklist's."""
    from harness.bdd.declarations import EXERCISED_BY

    names = {ref.name for item in load_checklist() for ref in item.scenarios}
    assert all(n in names for scenarios in EXERCISED_BY.values() for n in scenarios)

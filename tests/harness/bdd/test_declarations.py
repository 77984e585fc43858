"""A profile's declarations checked against the journal: a false one blocks CERTIFIED."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness.bdd.declarations import contradictions
from harness.certify.certificate import build_certificate
from harness.device.profile import load_profile
from harness.items.checklist import load_checklist

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


def test_not_applicable_while_the_journal_shows_the_behaviour_is_contradicted() -> None:
    """Each item of NOT_APPLICABLE_SHOWN, declared n/a, against a journal that proves its behaviour."""
    claims = replace(REFERENCE, not_applicable={"C2C-OPT-05": "uploads one part at a time",
                                                "C2C-UPL-01": "no real-time upload",
                                                "C2C-SOCK-01": "no status channel"})
    journal = [*({**r, "status": 200} for r in PARALLEL),
               {"method": "POST", "path": "/v2/devices/assets/g/realtime_upload/parts", "status": 200, "t": 1.5},
               {"method": "WS", "path": "/devices/websocket", "status": 101, "t": 2.0},
               {"method": "POST", "path": "/v2/devices/heartbeat", "status": 200, "t": 3.0}]
    found = {c.declaration.split(" ", 2)[1]: c for c in contradictions(claims, journal, set())}
    assert set(found) == {"C2C-OPT-05", "C2C-UPL-01", "C2C-SOCK-01"}
    assert "2 part uploads were in flight at once" in found["C2C-OPT-05"].evidence
    assert "1 real-time part URL request" in found["C2C-UPL-01"].evidence
    assert "1 status websocket(s) accepted and 1 heartbeat(s)" in found["C2C-SOCK-01"].evidence
    assert found["C2C-OPT-05"].declaration == "not_applicable: C2C-OPT-05 (uploads one part at a time)"
    # the journal not showing it says nothing (no scenario may have asked for it): no contradiction
    assert contradictions(claims, SERIAL, set()) == []
    # a socket still open is not in the journal yet: the emulator's socket sessions show it
    [open_socket] = contradictions(claims, [], set(), sockets=[{"device_id": "d", "connected_at": 1.0, "closed_at": None}])
    assert "1 status websocket(s) accepted" in open_socket.evidence
    # a refused real-time request is not the behaviour
    refused = [{"method": "POST", "path": "/v2/devices/assets/g/realtime_upload/parts", "status": 404, "t": 1.0}]
    assert contradictions(claims, refused, set()) == []


def test_every_shown_behaviour_names_a_checklist_item() -> None:
    from harness.bdd.declarations import NOT_APPLICABLE_SHOWN

    assert all(rule.item in load_checklist() for rule in NOT_APPLICABLE_SHOWN)


def test_no_status_api_declared_but_one_served_on_the_status_port_is_contradicted() -> None:
    """The bench probes {status_port} only where it gave the device one and the profile says 'none'."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from harness.bdd.declarations import (
        probe_status_api,
        status_contradiction,
        status_port_to_probe,
    )
    from harness.device.profile import StatusSpec

    class Status(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"schema": "c2c-status/1"}).encode() if self.path == "/status.json" else b"nope"
            self.send_response(200 if self.path == "/status.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        silent = replace(REFERENCE, status=StatusSpec(driver="none"))
        assert status_port_to_probe(REFERENCE, {"status_port"}, port) is None  # it declares a status API: nothing to check
        assert status_port_to_probe(silent, {"api_url"}, port) is None  # never told a port: the bench cannot see one
        assert status_port_to_probe(silent, {"status_port"}, port) == port
        evidence = probe_status_api(port)
        assert evidence is not None and "(schema c2c-status/1)" in evidence and f":{port}/status.json" in evidence
        [found] = status_contradiction(evidence)
        assert found.declaration == "status: driver = none (no status API)"
    finally:
        server.shutdown()
    assert probe_status_api(port, timeout=0.5) is None  # nothing listens any more
    assert status_contradiction(None) == []


def test_a_contradicted_not_applicable_shows_on_its_item_and_blocks_certified() -> None:
    checklist = load_checklist()
    device = {"name": "dut", "kind": "camera", "firmware": "1", "not_applicable": {"C2C-SOCK-01": "no status channel"}}
    run = {"contradictions": [{"declaration": "not_applicable: C2C-SOCK-01 (no status channel)",
                               "evidence": "the journal shows real-time status: 2 status websocket(s) accepted"}]}
    cert = build_certificate([], device, checklist=checklist, run=run)
    entry = cert["items"]["C2C-SOCK-01"]
    assert entry["contradicted"].startswith("the journal shows real-time status")
    assert entry["reason"].startswith("declaration contradicted: ")
    assert entry["verdict"] == "not-run"  # a false excuse excuses nothing: never judged, not n/a
    assert "C2C-SOCK-01" not in cert["summary"]["declared_not_applicable"]
    assert cert["summary"]["status"] == "NOT CERTIFIED"
    from harness.certify.certificate import render_html

    page = render_html(cert)
    assert "declaration contradicted: the journal shows real-time status" in page

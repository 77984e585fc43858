"""Declarations against behaviour, through the real stack: one run of the pytest plugin with the
real emulator, real TLS and the reference device as a real process, under a profile that lies.

The profile says the device has no status API (`[status] driver = "none"`, pairing code read
from the console, no control API) and declares C2C-SOCK-01 (real-time status) not applicable.
The launch gives the reference device no `{status_port}` (port 0: it picks one), but the
device prints its status URL on its console, serves /status.json there and opens its status
websocket once paired. Both declarations must come back contradicted, with
the evidence, on the item and in the run, and keep the device from CERTIFIED. The same profile
leaves out the `tether` capability: the tethered-camera scenario is not applicable by the
checklist's data (`[scenario_applies]`) before any step of it runs, not by a special case in a
step.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from harness.certify.cli import plugin_args
from harness.device.profile import PROFILE_DIR, load_profile
from harness.device.profile_check import review
from harness.device.software import profile_placeholders

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[3]
TETHERED = "Tethered camera -> cloud, with a power cut of the rig mid-transfer and nothing lost"

FEATURE = textwrap.dedent(f'''
    Feature: Declarations against behaviour
      @C2C-QA-03
      Scenario: The paired device keeps its status channel
        Given a paired device
        Then the cloud has seen the device's status websocket

      @C2C-QA-04
      Scenario: {TETHERED}
        Given the device profile
        Then the bench breaks
''')

MODULE = textwrap.dedent('''
    from pytest_bdd import scenarios, then
    from harness.bdd.steps import step_fixtures
    from harness.bdd.steps.common import wait_until
    from harness.errors import CloudError

    globals().update(step_fixtures())

    @then("the cloud has seen the device's status websocket")
    def _socket(bench):
        wait_until(lambda: bench.cloud.websockets() or None, 60, "the device's status websocket")

    @then("the bench breaks")
    def _breaks(bench):
        raise CloudError("a step of a scenario that does not apply ran")

    scenarios("features")
''')


def lying_profile(path: Path) -> Path:
    """The reference profile, saying it has no status or control API and no real-time status, without `tether`."""
    text = (PROFILE_DIR / "reference.toml").read_text(encoding="utf-8")
    caps = re.search(r"^capabilities = \[.*?\]\n", text, flags=re.S | re.M)
    assert caps is not None
    text = text.replace(caps.group(0), 'capabilities = ["url-pairing", "parallel", "realtime"]\n')
    assert "status_port = {status_port}\n" in text
    text = text.replace("status_port = {status_port}\n", "status_port = 0\n")  # a port of its own choosing
    control = '[control]\ndriver = "local-api"\nurl = "http://127.0.0.1:{status_port}/api/"\n'
    assert control in text
    text = text.replace(control, '[control]\ndriver = "none"\n')
    text = text.replace('name = "reference"', 'name = "quiet-reference"', 1)
    text = text.replace("[not_applicable]\n", '[not_applicable]\n"C2C-SOCK-01" = "no real-time status channel"\n', 1)
    status = '[status]\ndriver = "http-json"\nurl = "http://127.0.0.1:{status_port}/status.json"\n'
    assert status in text and '[pairing]\nsource = "status"\n' in text
    text = text.replace(status, '[status]\ndriver = "none"\n')
    text = text.replace('[pairing]\nsource = "status"\n', '[pairing]\nsource = "console"\nregex = "PAIRING CODE (\\\\d{6})"\n')
    path.write_text(text, encoding="utf-8")
    return path


def test_the_lying_profile_passes_the_static_review(tmp_path: Path) -> None:
    """Nothing but behaviour can catch these lies: check-profile only notes the probed port."""
    profile = load_profile(lying_profile(tmp_path / "quiet-reference.toml"))
    assert profile.status.driver == "none" and "C2C-SOCK-01" in profile.not_applicable
    findings = review(profile)
    assert not [f for f in findings if f.refuses], findings
    assert "status_port" not in profile_placeholders(profile)  # the bench gave it no port to probe


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_declarations_the_device_contradicts_block_certified(pytester: pytest.Pytester,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("C2C_SEAL_KEY_FILE", str(pytester.path / "lab.key"))
    profile = lying_profile(pytester.path / "quiet-reference.toml")
    pytester.mkdir("features")
    (pytester.path / "features" / "declarations.feature").write_text(FEATURE, encoding="utf-8")
    pytester.makepyfile(test_declarations=MODULE)
    reports = pytester.path / "reports"
    result = pytester.runpytest_subprocess(*plugin_args(), "--strict-markers", f"--c2c-device={profile}",
                                           f"--c2c-reports={reports}", "-p", "no:allure_pytest_bdd")
    log = result.stdout.str()[-4000:]
    result.assert_outcomes(passed=1, skipped=1)
    run = json.loads((reports / "results.json").read_text())["run"]
    found = {c["declaration"]: c["evidence"] for c in run["contradictions"]}
    assert set(found) == {"status: driver = none (no status API)",
                          "not_applicable: C2C-SOCK-01 (no real-time status channel)"}, (found, log)
    assert re.search(r"the device's console printed (http://127\.0\.0\.1:\d+/status\.json); GET \1 answered 200 "
                     r"with a JSON status", found["status: driver = none (no status API)"])
    assert re.search(r"the journal shows real-time status \(websocket or heartbeats\): [1-9]\d* status websocket",
                     found["not_applicable: C2C-SOCK-01 (no real-time status channel)"])
    cert = json.loads((reports / "certificate.json").read_text())
    assert cert["summary"]["status"] == "NOT CERTIFIED" and cert["summary"]["exit_code"] != 0
    assert "2 declaration(s) contradicted" in cert["headline"]
    sock = cert["items"]["C2C-SOCK-01"]
    assert sock["contradicted"].startswith("the journal shows real-time status")
    assert sock["reason"].startswith("declaration contradicted: the journal shows real-time status")
    assert "C2C-SOCK-01" not in cert["summary"]["declared_not_applicable"]
    # applicability as data: the tethered scenario never started (its step would have broken the bench)
    by_name = {r["scenario"]: r for r in json.loads((reports / "results.json").read_text())["results"]}
    assert by_name[TETHERED]["verdict"] == "not-applicable"
    assert "the scenario applies when has(tether)" in by_name[TETHERED]["reason"]
    assert by_name["The paired device keeps its status channel"]["verdict"] == "pass", log


def test_status_urls_on_the_console_are_probed_on_loopback_only(tmp_path: Path) -> None:
    """The console witness: a JSON status at a printed loopback URL is the evidence; other hosts are never asked."""
    import threading
    from dataclasses import replace
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from harness.bdd.declarations import console_status_evidence, status_urls_in
    from harness.device.profile import StatusSpec

    class Status(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"schema": "c2c-status/1"}' if self.path == "/status.json" else b"[]")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    console = tmp_path / "console.log"
    console.write_text(f"STATUS http://127.0.0.1:1/status.json\nSTATUS http://10.0.0.7:{port}/status.json\n"
                       f"STATUS http://127.0.0.1:{port}/status.json\n", encoding="utf-8")
    assert status_urls_in(console.read_text()) == [f"http://127.0.0.1:{port}/status.json", "http://127.0.0.1:1/status.json"]
    silent = replace(load_profile("reference"), status=StatusSpec(driver="none"))
    try:
        evidence = console_status_evidence(silent, console)
        assert evidence == (f"the device's console printed http://127.0.0.1:{port}/status.json; GET "
                            f"http://127.0.0.1:{port}/status.json answered 200 with a JSON status (schema c2c-status/1)")
        assert console_status_evidence(load_profile("reference"), console) is None  # it declares a status API
        console.write_text(f"STATUS http://10.0.0.7:{port}/status.json\n", encoding="utf-8")
        assert console_status_evidence(silent, console) is None  # not loopback: not asked
    finally:
        server.shutdown()
    assert console_status_evidence(silent, tmp_path / "no-console.log") is None

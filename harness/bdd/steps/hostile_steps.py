"""Steps for a hostile path (issue #23): the bench answers in the cloud's place for a while
(a captive portal's HTML 200 or 403, an empty 200, truncated JSON), then lets the real
answers through. Works for ANY device, console-only too: the path is mitmproxy spliced into
the network link, showing certificates from the bench CA the device already trusts, and the
faults are `http:garble-*` vocabulary faults. The oracle is the cloud's: every file intact,
no new pairing code (`the device requested no new pairing code`, pairing_steps).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from pytest_bdd import given, parsers, then

from harness.bdd.bench import Bench
from harness.bdd.steps.common import wait_until
from harness.bdd.steps.pairing_steps import DEVICE_CODE_PATH
from harness.cloud.paths import ASSET_CREATE_PATH
from harness.errors import ConfigError, DeviceTimeout, FaultInjectionError
from harness.faults.http.garble import GARBLE_KINDS, AnswerGarbler, trusted_path
from harness.faults.vocabulary import ActiveFault, Fault, FaultTargets, inject
from harness.protocols import ReroutableLink

TOKEN_PATH = r"^/v2/auth/token$"
PATHS: dict[str, dict[str, str]] = {
    "asset creations": {"path": ASSET_CREATE_PATH, "method": "POST"},
    # refreshes only: a device-code poll of a device still pairing goes to the same endpoint
    "token refreshes": {"path": TOKEN_PATH, "method": "POST", "body": "refresh_token"},
}
"""What a scenario may garble, by the words it uses -> the rule's path, method, body regexes."""

class GarblingPath(ActiveFault):
    """mitmproxy with an AnswerGarbler in the device's path; `stop` gives the link back its
    real upstream and takes mitmproxy down (the bench's cleanup calls it)."""

    def __init__(self, bench: Bench) -> None:
        link = bench.network
        if not isinstance(link, ReroutableLink):
            raise FaultInjectionError("a garbling path needs a network link whose upstream can be swapped")
        self.garbler = AnswerGarbler()
        stack = contextlib.ExitStack()
        proxy = stack.enter_context(trusted_path(bench.cloud.api_url, Path(bench.cloud.ca_bundle),
                                                 [self.garbler], bench.session.workdir))
        codes_before = self._pairing_codes(bench)

        def stop() -> None:
            try:
                link.reroute(None)
                bench.network.switch_path()
            finally:
                stack.close()
                if self._pairing_codes(bench) > codes_before:
                    bench.session.paired = False  # it asked to pair again: the next scenario pairs it

        super().__init__(Fault("http", "garbling-path"), bench.timeline, stop)
        bench.timeline.record("http", "garbling-path", "start", fault="http:garbling-path", params={})
        try:
            link.reroute(f"127.0.0.1:{proxy.port}")
            bench.network.switch_path()  # the device's open connections end; new ones meet the path
        except BaseException:
            self.stop()  # half-spliced: give the link back and take mitmproxy down
            raise

    @staticmethod
    def _pairing_codes(bench: Bench) -> int:
        return sum(1 for r in bench.journal() if str(r.get("path", "")).endswith(DEVICE_CODE_PATH))


def garbling_path(bench: Bench) -> GarblingPath:
    running = [f for f in bench.faults if isinstance(f, GarblingPath) and not f.stopped]
    if not running:
        raise ConfigError("this step needs 'the device's path can answer in the cloud's place' before it")
    return running[-1]


@given("the device's path can answer in the cloud's place")
def _path(bench: Bench) -> None:
    """Splice the garbling proxy into the link; until a rule is armed it passes everything."""
    path = GarblingPath(bench)
    bench.hold(path)


@given(parsers.re(r'the path answers the next (?P<count>\d+) (?P<what>asset creations|token refreshes) '
                  r'with "(?P<kind>[a-z0-9-]+)"'))
def _garble(bench: Bench, count: str, what: str, kind: str) -> None:
    """Arm `http:garble-KIND xN` on asset creation or the token endpoint (the next N answers)."""
    if kind not in GARBLE_KINDS:
        raise ConfigError(f"unknown garble kind {kind!r}; known: {', '.join(GARBLE_KINDS)}")
    fault = Fault("http", f"garble-{kind}", {"count": int(count), **PATHS[what]})
    targets = FaultTargets(timeline=bench.timeline, http=garbling_path(bench).garbler)
    bench.hold(inject(fault, targets))


@then(parsers.parse("the path gave every garbled answer it was armed with within {seconds:d} seconds"))
def _all_given(bench: Bench, seconds: int) -> None:
    """Every armed answer went out: the device met each one (else the scenario proved nothing),
    then the path lets the real answers through."""
    path = garbling_path(bench)
    armed = [f for f in bench.faults if f.fault.layer == "http" and f.fault.name.startswith("garble-")]
    wanted = sum(int(f.fault.params.get("count", 1)) for f in armed)

    def all_met() -> bool:
        return len(path.garbler.garbled) >= wanted

    try:
        wait_until(all_met, seconds, f"the device to meet all {wanted} garbled answers")
    except DeviceTimeout as exc:
        met = ", ".join(f"{g.kind} on {g.method} {g.path}" for g in path.garbler.garbled) or "none"
        raise DeviceTimeout(f"{exc}; it met {len(path.garbler.garbled)} ({met}) and asked no "
                            f"more (stopped retrying, or waits to be paired again?)") from None
    for fault in armed:
        fault.stop()

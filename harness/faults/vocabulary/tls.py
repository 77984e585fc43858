"""TLS faults: an interceptor on the device's path showing an untrusted or flawed certificate."""

from __future__ import annotations

from functools import partial

from harness.faults.http.flawed_certs import SIGNED_FLAWS
from harness.faults.vocabulary.language import Fault, StartFn, StopFn, register, until_stopped
from harness.faults.vocabulary.targets import FaultTargets


def _interceptor(flaw: str) -> StartFn:
    def start(t: FaultTargets, f: Fault) -> StopFn:
        path = t.tls_for(f)
        return until_stopped(partial(path.start_interceptor, flaw), path.stop_interceptor)

    return start


for _flaw in ("untrusted-ca", *SIGNED_FLAWS):
    register("tls", _flaw)(_interceptor(_flaw))

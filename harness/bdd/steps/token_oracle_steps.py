"""Then-steps on the device's tokens as the cloud saw them: refreshed (also after every clock
jump), revoked on logout, and never sent through a TLS interceptor it should have refused.

The journal's token and revoke calls (and the interceptor's own record) are the evidence;
figures are measured against the checklist limits (harness.bdd.steps.oracle_steps).
"""

from __future__ import annotations

import contextlib
import time

from pytest_bdd import parsers, then

from harness.bdd.bench import Bench
from harness.bdd.steps.cloud_steps import refreshes
from harness.bdd.steps.common import hold_for, wait_until
from harness.bdd.steps.oracle_steps import measure_all, out_of_limits, require
from harness.errors import BenchFailure, DeliveryFailure, DeviceTimeout

# after a connected period of short-lived tokens, a device still at zero refreshes this much later never will
NO_REFRESH_GIVE_UP_S = 15.0


@then(parsers.re(r"the device refreshed its token at least (?P<count>\d+) times?$"))
def _refreshed(bench: Bench, count: str) -> None:
    """Token refreshes the cloud saw during the scenario (measured as `refreshes`)."""
    n = int(count)
    started = time.monotonic()

    def enough() -> bool:
        got = refreshes(bench)
        if n > 1 and got == 0 and time.monotonic() - started > NO_REFRESH_GIVE_UP_S:
            return True  # its tokens expired again and again, it never refreshed: stop waiting
        return got >= n
    try:
        wait_until(enough, 60, f"{n} token refresh(es)")
    except DeviceTimeout:
        pass
    got = refreshes(bench)
    item = "C2C-NET-02" if n > 1 else "C2C-RTY-03"
    bench.measure(item, "refreshes", got)
    assert got >= n, f"the device refreshed its token {got} time(s), expected >= {n}"


def _revoke_calls(bench: Bench) -> int:
    """Revocations the cloud accepted in this scenario (POST /v2/auth/revoke answered 2xx)."""
    return sum(1 for r in bench.journal() if str(r.get("path", "")).split("?", 1)[0].endswith("/v2/auth/revoke")
               and r.get("method") == "POST" and 200 <= int(r.get("status") or 0) < 300)


@then(parsers.parse("the cloud sees the device's tokens revoked within {seconds:d} seconds"))
def _revoked(bench: Bench, seconds: int) -> None:
    """Logout calls /v2/auth/revoke and the cloud accepts it (measured as revoke_calls)."""
    started = time.monotonic()
    try:
        wait_until(lambda: _revoke_calls(bench) > 0, seconds, "a call to /v2/auth/revoke")
    except DeviceTimeout:
        pass
    require(bench, "revoke_calls", _revoke_calls(bench), f"no accepted call to /v2/auth/revoke within {seconds} s",
            waited_s=round(time.monotonic() - started, 1))


@then(parsers.parse("the interceptor saw no completed request from the device within {seconds:d} seconds"))
def _interceptor(bench: Bench, seconds: int) -> None:
    """The device refused the interceptor's certificate: no request completed through it."""
    mitm = bench.state.interceptor
    assert mitm is not None, "no interceptor in place"
    shown = bench.state.interceptor_certificate or "an untrusted certificate"

    def check() -> None:
        assert not mitm.requests_seen and not mitm.established_handshakes, \
            f"the device completed a TLS handshake with an interceptor showing {shown}"
    hold_for(seconds, check, interval=1.0)
    if mitm.verdict() == "no-attempt":
        raise DeviceTimeout("the device made no connection attempt through the interceptor (inconclusive)")


LAST_JUMP_REFRESH_S = 30.0


@then("the device refreshed its token after every clock jump")
def _refreshed_per_jump(bench: Bench) -> None:
    """Each clock jump of the soak outlives the access token: a refresh must follow every jump before the
    next one (or before the end, for the last). Measured: refreshes (>= the jumps) and
    jumps_without_refresh (== 0), from the journal's order (ids), whatever the emulator clock says."""
    jumps = list(bench.state.clock_jumps)
    if not jumps:
        raise BenchFailure("no clock jump happened in this scenario: the shift was not exercised")

    def refreshed() -> tuple[list[int], list[bool]]:
        tokens = [int(r.get("id") or 0) for r in bench.journal() if str(r.get("path", "")).endswith("/v2/auth/token")
                  and r.get("method") == "POST" and r.get("status") == 200]
        bounds = [*jumps[1:], None]
        return tokens, [any(t > a and (b is None or t <= b) for t in tokens) for a, b in zip(jumps, bounds, strict=True)]
    # the earlier jumps are decided (the next jump came); the last may still be followed by one
    if all(refreshed()[1][:-1]):
        with contextlib.suppress(DeviceTimeout):
            wait_until(lambda: refreshed()[1][-1], LAST_JUMP_REFRESH_S, "a token refresh after the last clock jump")
    tokens, per_jump = refreshed()
    tokens = [t for t in tokens if t > jumps[0]]  # the shift's refreshes (not a pairing before it)
    missed = per_jump.count(False)
    mark = len(bench.state.measurements)
    measure_all(bench, "refreshes", len(tokens), clock_jumps=len(jumps))
    require(bench, "jumps_without_refresh", missed, f"{missed} of {len(jumps)} clock jumps were not followed by a "
            "token refresh", clock_jumps=len(jumps))
    bad = out_of_limits(bench, mark)
    if bad:
        raise DeliveryFailure("; ".join(bad))

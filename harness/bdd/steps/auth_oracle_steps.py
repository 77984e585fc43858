"""Then-steps the journal decides about the device's grant: 409s on asset creation and a
cancelled pairing (C2C-RTY-03, C2C-AUTH-03).

Pure functions (`slow_down_backoff`, `invalid_client_recovery`, `grant_uses`) judge journal
rows so they can be tested without a bench; the steps feed them what the emulator recorded.
"""

from __future__ import annotations

import re
from typing import Any

from pytest_bdd import parsers, then

from harness.bdd.bench import Bench
from harness.bdd.state import AssetConflict, Grant
from harness.bdd.steps.common import hold_for, wait_until
from harness.errors import BenchFailure
from harness.protocols import CloudWitness

# --- the spec's other 409s on asset creation: slow_down, invalid_client (C2C-RTY-03) -----
ASSET_CREATE = re.compile(r"^/v2/(devices/)?assets(?:\?|$)")
TOKEN_CALL = re.compile(r"^/v2/auth/token(?:\?|$)")
DEVICE_CODE_CALL = re.compile(r"^/v2/auth/device/code(?:\?|$)")


def _is(row: dict[str, Any], path: re.Pattern[str], method: str = "POST") -> bool:
    return row.get("method") == method and path.match(str(row.get("path", ""))) is not None


def slow_down_backoff(rows: list[dict[str, Any]]) -> tuple[int, float]:
    """(409 answers to asset creation, seconds the device held back across them).

    Held back = from the first 409 answer to the start of the first asset creation after the
    last one: a device retrying in a tight loop keeps this near a few round trips, one that
    backs off accumulates its waits. Rows are journal rows (`t` = answered, `started_at` =
    request began, when the emulator records it).
    """
    creates = [r for r in sorted(rows, key=lambda r: int(r["id"])) if _is(r, ASSET_CREATE)]
    answered = [i for i, r in enumerate(creates) if r.get("status") == 409]
    if not answered:
        return 0, 0.0
    first, last = creates[answered[0]], answered[-1]
    if last + 1 < len(creates):
        after = creates[last + 1]
        end = float(after.get("started_at") or after["t"])
    else:
        end = float(creates[last]["t"])
    return len(answered), max(0.0, end - float(first["t"]))


def invalid_client_recovery(rows: list[dict[str, Any]]) -> str | None:
    """Why the device did not recover from a 409 invalid_client by refresh-and-replay, or None.

    Recovery = after the 409, a successful token call, then a successful asset creation (no
    creation succeeded before the refresh), and no new device code (no re-pairing).
    """
    ordered = sorted(rows, key=lambda r: int(r["id"]))
    codes = [r for r in ordered if _is(r, DEVICE_CODE_CALL)]
    if codes:
        return f"the device requested {len(codes)} new pairing code(s) instead of refreshing its token"
    start = next((i for i, r in enumerate(ordered) if _is(r, ASSET_CREATE) and r.get("status") == 409), None)
    if start is None:
        return "the cloud never answered an asset creation with 409 invalid_client"
    refreshed = False
    for row in ordered[start + 1:]:
        if _is(row, TOKEN_CALL) and row.get("status") == 200:
            refreshed = True
        elif _is(row, ASSET_CREATE) and 200 <= int(row.get("status") or 0) < 300:
            return None if refreshed else "the device created the asset again without refreshing its token first"
    if not refreshed:
        return "the device never refreshed its token after 409 invalid_client"
    return "the device refreshed its token but never replayed the asset creation"


def _since_conflict(bench: Bench) -> tuple[AssetConflict, list[dict[str, Any]]]:
    """The 409 fault the Given armed and the journal rows recorded after it was armed."""
    conflict = bench.state.asset_conflict
    assert conflict, "no 409 fault on asset creation was armed in this scenario"
    return conflict, bench.cloud.journal(since=int(conflict["since"]))


@then(parsers.re(r"the device backed off at least (?P<seconds>\d+(?:\.\d+)?) seconds? across the slow_down answers$"))
def _slow_down_backoff(bench: Bench, seconds: str) -> None:
    """Every 409 slow_down was met and retried, and the retries were spread over `seconds` (not a tight loop)."""
    conflict, rows = _since_conflict(bench)
    answered, held = slow_down_backoff(rows)
    bench.timeline.record("cloud", "slow_down back-off", "mark", answers=answered, seconds=round(held, 3))
    assert answered >= int(conflict["count"]), (
        f"the device met {answered} of {conflict['count']} slow_down answers: it stopped creating the asset")
    assert held >= float(seconds), (
        f"the device retried {answered} slow_down answers within {held:.3f} s (< {seconds} s): no back-off")


@then("the device refreshed its token and replayed the asset creation without pairing again")
def _invalid_client_recovered(bench: Bench) -> None:
    """After 409 invalid_client: a token refresh, then the same creation again; never a new pairing code."""
    _conflict, rows = _since_conflict(bench)
    refreshed = sum(1 for r in rows if _is(r, TOKEN_CALL) and r.get("status") == 200)
    bench.measure("C2C-RTY-03", "refreshes", refreshed)
    problem = invalid_client_recovery(rows)
    assert problem is None, problem


# --- C2C-AUTH-03: pairing cancelled after approval -------------------------------------------
# A request the device sent just before it forgot the grant may still land this long after
# the revoke (two connections, reordered on the way).
GRANT_GRACE_S = 3.0


def _grant(bench: Bench) -> Grant:
    grant = bench.state.grant
    assert grant, "no grant was issued to the device in this scenario (was the code approved?)"
    return grant


def _journal_path(row: dict[str, Any]) -> str:
    return str(row.get("path") or "").split("?", 1)[0]


@then(parsers.parse("the cloud sees the approved grant revoked within {seconds:d} seconds"))
def _grant_revoked(bench: Bench, seconds: int) -> None:
    """The device that cancelled after approval calls /v2/auth/revoke, and the cloud accepts it."""
    grant = _grant(bench)

    def revoked() -> dict[str, Any] | None:
        return next((r for r in bench.cloud.journal(since=grant.issued_id)
                     if _journal_path(r).endswith("/v2/auth/revoke") and r.get("status") == 200), None)
    row = wait_until(revoked, seconds, "the device to revoke the grant it was issued (POST /v2/auth/revoke)")
    grant.revoked_t = float(row["t"])
    bench.measure("C2C-AUTH-03", "revoke_s", round(max(0.0, grant.revoked_t - grant.issued_t), 2))


def _bearer(row: dict[str, Any]) -> bool:
    """The request carried an access token (header, or the socket's query parameter)."""
    return ("authorization" in {str(k).lower() for k in (row.get("headers") or {})}
            or "authorization=" in str(row.get("path") or "").lower())


def grant_uses(journal: list[dict[str, Any]], devices: list[dict[str, Any]], sockets: list[dict[str, Any]],
               device_id: str, revoked_t: float, grace: float = GRANT_GRACE_S) -> list[str]:
    """Every sign that the device still used its grant after revoking it (cloud times).

    A refresh of the grant after the revoke counts at once (a device that forgot its tokens
    has no refresh token left to send). After `grace` (requests already on their way), so do
    any request the cloud tied to the device, any request or socket connect carrying a bearer
    token (the device holds no other grant), the cloud seeing the device (last_seen_at moves
    on socket beats too) and a beat on a status socket.
    """
    after_t = revoked_t + grace
    uses = []
    for r in journal:
        t, mine, path = float(r.get("t") or 0), str(r.get("device_id")) == device_id, _journal_path(r)
        what = f"{r.get('method')} {path} -> {r.get('status')}"
        if t <= revoked_t or path.endswith("/v2/auth/revoke"):
            continue  # before the revoke, or revoking again (the access token after the refresh one)
        if mine and path.endswith("/v2/auth/token"):
            uses.append(f"refresh after the revoke: {what}")
        elif t > after_t and (((mine or _bearer(r)) and r.get("method") != "WS")
                              or (r.get("method") == "WS" and r.get("status") != 101 and _bearer(r))):
            uses.append(what)
    for d in devices:
        if str(d.get("id")) == device_id and float(d.get("last_seen_at") or 0) > after_t:
            uses.append(f"the cloud saw the device at t={float(d['last_seen_at']):.1f}")
    uses += [f"status socket {s.get('id')} beat at t={float(s['last_heartbeat_at']):.1f}" for s in sockets
             if str(s.get("device_id")) == device_id and float(s.get("last_heartbeat_at") or 0) > after_t]
    return uses


@then(parsers.parse("the cloud sees no call with the cancelled grant for {seconds:d} seconds"))
def _grant_unused(bench: Bench, seconds: int) -> None:
    """After the revoke the grant is dead to the device too: no heartbeat, asset call, refresh or
    socket beat with it for the window, and no status socket opened with it left open."""
    from harness.errors import DeviceFailure

    grant = _grant(bench)
    device_id = grant.device_id
    revoked_t = float(grant.revoked_t or grant.issued_t)
    cloud = bench.cloud
    if not isinstance(cloud, CloudWitness):  # without the socket sessions an open socket would go unseen
        raise BenchFailure("this cloud cannot list status socket sessions: the cancelled grant's sockets "
                           "cannot be checked")

    def sockets() -> list[dict[str, Any]]:
        return cloud.websockets()

    def check() -> None:
        uses = grant_uses(bench.cloud.journal(since=grant.issued_id), bench.cloud.devices(), sockets(),
                          device_id, revoked_t)
        if uses:
            bench.measure("C2C-AUTH-03", "grant_uses_after_revoke", len(uses))
            raise DeviceFailure("the device kept using the grant after cancelling the pairing: " + "; ".join(uses[:5]),
                                item="C2C-AUTH-03")
    hold_for(GRANT_GRACE_S)
    hold_for(seconds, check, interval=1.0)
    still_open = [s for s in sockets() if str(s.get("device_id")) == device_id and not s.get("closed_at")]
    bench.measure("C2C-AUTH-03", "grant_uses_after_revoke", len(still_open))
    if still_open:
        raise DeviceFailure(f"{len(still_open)} status socket(s) opened with the cancelled grant still open",
                            item="C2C-AUTH-03")

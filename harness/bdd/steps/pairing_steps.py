"""Pairing steps the emulator decides, not the device (C2C-AUTH-01, -02, -04; the token-poll
and no-re-pairing checks of AUTH-03, NETW-05 and QA-05).

The device shows; the cloud witnesses. A shown code must be one the emulator issued and
still holds pending; a shown link must be the `verification_uri_complete` it issued; pairing
is complete only when the device's OWN token poll is answered with tokens (the bench's
approval alone proves nothing about the device); after `slow_down` the device must poll
less often. Pure functions (`poll_intervals`) judge the emulator's poll records so they can
be tested without a bench.
"""

from __future__ import annotations

import time
from typing import Any

from pytest_bdd import parsers, then

from harness.bdd.bench import Bench
from harness.bdd.steps.common import (
    control_or_operator,
    device_status,
    hold_for,
    issued_code,
    status_or_operator,
    wait_until,
)
from harness.errors import CloudError, DeviceFailure, DeviceTimeout
from harness.protocols import CloudWitness

PAIR_TIMEOUT = 60.0
# How long the device may take to collect its tokens once the code is approved: one poll
# interval after slow_down (5 + 2 x 5 s), a refused early poll, and generous slack.
OWN_POLL_TIMEOUT = 60.0
DEVICE_CODE_PATH = "/v2/auth/device/code"


def witness(bench: Bench) -> CloudWitness:
    """The emulator's witness records; a cloud without them cannot decide these items (bench error)."""
    cloud = bench.cloud
    if not isinstance(cloud, CloudWitness):
        raise CloudError("the cloud emulator keeps no witness records (token polls, issued tokens, status beats)")
    return cloud


# --- C2C-AUTH-01 -----------------------------------------------------------------------------
@then("the device shows a 6-digit pairing code the cloud issued")
def _six_digits(bench: Bench) -> None:
    """The code shown is six digits AND one the emulator issued (still pending), shown in time."""
    code = bench.state.pairing_code or bench.device.pairing_code(PAIR_TIMEOUT)
    shown_s = round(time.time() - bench.state.started_at, 1)  # from the fresh device's start
    digits = len(code) if code.isdigit() else -1
    row = issued_code(bench, code)
    ok_digits = bench.measure("C2C-AUTH-01", "user_code_digits", digits)
    ok_issued = bench.measure("C2C-AUTH-01", "code_issued", 1 if row else 0)
    ok_time = bench.measure("C2C-AUTH-01", "code_shown_s", shown_s)
    assert ok_digits, f"user_code_digits={digits}: the pairing code shown is not six digits (limit == 6)"
    assert ok_issued, ("code_issued=0 (limit >= 1): the code the device shows is not a pending code the cloud "
                       "issued (made up, stale or mistyped)")
    assert ok_time, f"code_shown_s={shown_s} over its limit: the code took too long to appear"
    bench.state.issued_code = row


# --- C2C-AUTH-02 -----------------------------------------------------------------------------
@then("the device offers the complete verification URL the cloud issued")
def _complete_uri(bench: Bench) -> None:
    """The link or QR the device offers is exactly the verification_uri_complete the cloud issued."""
    if not bench.has_status:
        status_or_operator(bench, "Does the device show a link or QR code for pairing?", lambda st: True)
        return
    code = str(bench.state.pairing_code or "")
    row = issued_code(bench, code)
    issued = str((row or {}).get("verification_uri_complete") or "")
    if not issued:
        bench.measure("C2C-AUTH-02", "uri_matches_issued", 0)
        why = ("the device did not ask for URL pairing (no x-client-platypus-enabled: true on its code request)"
               if row else "the code the device shows is not a pending code the cloud issued")
        raise DeviceFailure(f"uri_matches_issued=0: no verification_uri_complete was issued to the device: {why}",
                            item="C2C-AUTH-02")

    def offered() -> str:
        return str((device_status(bench).get("pairing") or {}).get("verification_uri_complete") or "")
    try:
        wait_until(lambda: offered() == issued, 30, "the device to offer the issued verification_uri_complete")
        matches = 1
    except DeviceFailure:
        matches = 0
    ok = bench.measure("C2C-AUTH-02", "uri_matches_issued", matches)
    assert ok, ("uri_matches_issued=0 (limit >= 1): the device offers "
                f"{'no link' if not offered() else 'a link other than'} the verification_uri_complete the cloud issued")


# --- C2C-AUTH-04 -----------------------------------------------------------------------------
@then(parsers.parse("the device shows a pairing code again within {seconds:d} seconds"))
def _code_again(bench: Bench, seconds: int) -> None:
    """After expired_token / access_denied the device requests and shows a new code (after
    slow_down, the same code is fine: the flow goes on)."""
    error = bench.state.poll_error
    first = bench.state.pairing_code
    if first and bench.state.code_client_id is None:
        row = issued_code(bench, first)
        if row:
            bench.state.code_client_id = str(row.get("client_id"))
            bench.state.code_issued_at = float(row.get("created_at") or 0)
    if error == "access_denied" and first:
        bench.cloud.deny(first)
        bench.timeline.record("auth", "access_denied", "mark")
        if bench.has_status:
            wait_until(lambda: (device_status(bench).get("pairing") or {}).get("state") in {"denied", "error", "unpaired"},
                       30, "the device to show the denial")
        if bench.has_status or not _requests_again_by_itself(bench, first):
            # after a denial the user starts pairing again (a new code, never the denied one)
            control_or_operator(bench, "start_pairing", "Start pairing again on the device. Done?")
    _show_new_code(bench, error, first, seconds)


DENIAL_SELF_RETRY_S = 20.0


def _requests_again_by_itself(bench: Bench, denied: str) -> bool:
    """Ask the oracle before a person: did the device (no status to read) request a new code
    on its own after the denial? Only if not does the bench need the user's action."""
    client = bench.state.code_client_id
    if not client:
        return False

    def new_request() -> bool:
        return any(str(c.get("client_id")) == client and str(c.get("user_code")) != denied
                   for c in bench.cloud.pending_codes())
    try:
        wait_until(new_request, DENIAL_SELF_RETRY_S, "the device to request a new code by itself")
    except DeviceTimeout:
        return False
    bench.timeline.record("auth", "code-requested-again", "mark")
    return True


def _show_new_code(bench: Bench, error: str | None, first: str | None, seconds: int) -> None:
    def new_code() -> str | None:
        code = bench.device.pairing_code(seconds)
        return code if (error == "slow_down" or code != first) else None
    code = wait_until(new_code, seconds, "a new pairing code")
    bench.state.pairing_code = code


def own_successful_polls(polls: list[dict[str, Any]], client_id: str) -> list[dict[str, Any]]:
    """The device-code polls of `client_id` the cloud answered with tokens."""
    return [p for p in polls if p.get("client_id") == client_id and p.get("answer") == "ok"]


def poll_intervals(polls: list[dict[str, Any]], issued_at: float | None) -> tuple[float, float] | None:
    """(interval before the first slow_down, interval after it) from one client's poll records.

    Before = from the previous poll's answer (or the code's issue, for a first poll) to the
    poll answered slow_down; after = from that answer to the next poll's arrival. None when
    no poll was answered slow_down; after is -1 when the device never polled again.
    """
    ordered = sorted(polls, key=lambda p: float(p["started_at"]))
    first = next((i for i, p in enumerate(ordered) if p.get("answer") == "slow_down"), None)
    if first is None:
        return None
    if first > 0:
        prev = float(ordered[first - 1]["t"])
    elif issued_at is not None:
        prev = issued_at
    else:
        return None
    before = float(ordered[first]["started_at"]) - prev
    after = (float(ordered[first + 1]["started_at"]) - float(ordered[first]["t"])
             if first + 1 < len(ordered) else -1.0)
    return round(before, 2), round(after, 2)


@then("the device collects its tokens itself once the code is approved")
def _pairs(bench: Bench) -> None:
    """Approve the code shown; the DEVICE must then collect its tokens itself (its own poll
    answered with tokens), and after slow_down it must have polled less often."""
    code = str(bench.state.pairing_code or "")
    row = issued_code(bench, code)
    if row is None:
        raise DeviceFailure("the code the device shows is not a pending code the cloud issued: it cannot be approved",
                            item="C2C-AUTH-04")
    client_id = str(row.get("client_id"))
    cloud = witness(bench)
    before = len(own_successful_polls(cloud.token_polls(client_id), client_id))
    project = bench.session.ensure_project()
    bench.cloud.approve(code, str(project["id"]))
    bench.timeline.record("cloud", "approve", "mark", user_code="******")

    def collected() -> bool:
        return len(own_successful_polls(cloud.token_polls(client_id), client_id)) > before
    try:
        wait_until(collected, OWN_POLL_TIMEOUT, "the device's own token poll to be answered with tokens")
        seen = 1
    except DeviceFailure:
        seen = 0
    ok = bench.measure("C2C-AUTH-04", "own_token_poll_seen", seen)
    if bench.state.poll_error == "slow_down":
        _slow_down_measured(bench, cloud.token_polls(client_id), client_id)
    assert ok, (f"own_token_poll_seen=0 (limit >= 1): within {OWN_POLL_TIMEOUT:.0f} s of the approval no token poll "
                "of the device was answered with tokens: it never collected its grant")
    wait_until(lambda: bench.cloud_device() is not None, PAIR_TIMEOUT, "the device to appear in the cloud project")
    bench.session.paired = True


def _slow_down_measured(bench: Bench, polls: list[dict[str, Any]], client_id: str) -> None:
    """Measure the poll interval before and after the first slow_down answer (RFC 8628: +5 s)."""
    mine = [p for p in polls if p.get("client_id") == client_id]
    issued_at = bench.state.code_issued_at
    intervals = poll_intervals(mine, float(issued_at) if issued_at else None)
    if intervals is None:
        raise CloudError("no poll of the device was answered slow_down: the fault never reached it")
    before, after = intervals
    bench.measure("C2C-AUTH-04", "poll_interval_before_s", before)
    bench.measure("C2C-AUTH-04", "poll_interval_after_s", after)
    grew = bench.measure("C2C-AUTH-04", "poll_interval_growth_s", round(after - before, 2) if after >= 0 else -1)
    assert grew, (f"poll_interval_growth_s={after - before:.1f} s below its limit: the device polled every "
                  f"{before:.1f} s before slow_down and {after:.1f} s after it (RFC 8628: +5 s)")


# --- C2C-AUTH-03 (token polls stop), NETW-05 / QA-05 (no re-pairing) ---------------------------
@then(parsers.parse("the cloud sees no more token polls from the device within {seconds:d} seconds"))
def _no_polls(bench: Bench, seconds: int) -> None:
    """After a cancel the device stops polling /v2/auth/token (after one interval of grace)."""
    interval = 6

    def polls() -> int:
        return sum(1 for r in bench.journal() if str(r.get("path", "")).endswith("/v2/auth/token"))
    hold_for(interval)
    baseline = polls()

    def check() -> None:
        late = polls() - baseline
        if late:
            bench.measure("C2C-AUTH-03", "token_polls_after_cancel", late)
            raise AssertionError(f"token_polls_after_cancel={late} (limit 0): the device kept polling for a token "
                                 "after the pairing was cancelled")
    hold_for(seconds - interval, check, interval=1.0)
    bench.measure("C2C-AUTH-03", "token_polls_after_cancel", 0)


@then("the device requested no new pairing code")
def _no_new_code(bench: Bench) -> None:
    """No POST /v2/auth/device/code during the scenario (no re-pairing), after the pairing its
    Given step may have done."""
    after = bench.state.paired_journal_head
    codes = [r for r in bench.journal()
             if str(r.get("path", "")).endswith(DEVICE_CODE_PATH) and int(r.get("id", 0)) > after]
    assert not codes, f"the device requested {len(codes)} new pairing code(s)"

"""Steps that act on the cloud emulator (Cloud protocol): settings, faults, producer actions."""

from __future__ import annotations

from typing import Any

from pytest_bdd import given, parsers, when

from harness.bdd.steps.common import hold_for, wait_until

# Token-poll answers the AUTH-04 outline asks for -> how the emulator is made to give them.
POLL_ERRORS = ("expired_token", "slow_down", "access_denied")
PAUSE_EDGE_S = 2.0


@given("URL pairing is enabled in the cloud")
def _url_pairing(bench: Any) -> None:
    """URL/QR pairing: the device opts in with x-client-platypus-enabled; the emulator always allows it."""
    bench.state.notes["url_pairing"] = True


@given(parsers.parse('the cloud answers token polls with "{error}"'))
def _poll_error(bench: Any, error: str) -> None:
    """Make the authorization server answer with expired_token, slow_down or access_denied."""
    assert error in POLL_ERRORS, f"unknown poll error {error!r}"
    bench.state.notes["poll_error"] = error
    if error == "expired_token":
        bench.cloud.update_settings(device_code_lifetime=12)
        bench.state.notes["restore_settings"] = {"device_code_lifetime": 120}
    elif error == "slow_down":
        bench.cloud.add_fault({"target": "api", "path": "^/v2/auth/token$", "method": "POST",
                               "count": 2, "kind": "slow_down"})
    bench.timeline.record("auth", error, "start")


@given(parsers.parse('the cloud answers the next {count:d} part uploads with "{kind}"'))
def _s3_faults(bench: Any, count: int, kind: str) -> None:
    """S3-side error injection (SlowDown, RequestTimeout, InternalError, 503, expired URL)."""
    bench.cloud.add_fault({"target": "s3", "count": count, "kind": kind})
    bench.timeline.record("cloud", f"s3 {kind} x{count}", "mark")


@given(parsers.parse('the cloud answers the next {count:d} API calls with "{kind}"'))
def _api_faults(bench: Any, count: int, kind: str) -> None:
    """API-side error injection on asset creation (500, 429, 401)."""
    bench.cloud.add_fault({"target": "api", "path": "/v2/(devices/)?assets$", "method": "POST", "count": count, "kind": kind})
    bench.timeline.record("cloud", f"api {kind} x{count}", "mark")


@given(parsers.parse("the cloud issues access tokens that expire after {seconds:d} seconds"))
def _short_tokens(bench: Any, seconds: int) -> None:
    """Shorten the access-token lifetime so many refreshes happen during the run."""
    bench.cloud.update_settings(access_token_lifetime=seconds)
    bench.state.notes["restore_settings"] = {"access_token_lifetime": 28800}
    bench.cloud.expire_tokens(bench.cloud_device_id())


def refreshes(bench: Any) -> int:
    """Successful token calls since the scenario began: on a paired device these are refreshes."""
    return sum(1 for r in bench.journal() if str(r.get("path", "")).endswith("/v2/auth/token")
               and r.get("method") == "POST" and r.get("status") == 200)


@when(parsers.parse('the cloud renames the project to "{name}"'))
def _rename_project(bench: Any, name: str) -> None:
    """A producer renames the project; the device must keep using the project id."""
    project = bench.session.ensure_project()
    bench.cloud.rename_project(str(project["id"]), name)
    project["name"] = name
    bench.timeline.record("cloud", "rename project", "mark", new_name=name)


@when("the cloud pauses the device")
def _pause(bench: Any) -> None:
    """Pause the device's channel: media captured from now on must be withheld (409)."""
    bench.cloud.pause_device(bench.cloud_device_id())
    bench.timeline.record("cloud", "pause", "start")
    bench.state.notes["paused_now"] = True
    # offsets are whole seconds: keep captures clear of the window edge so none is ambiguous
    hold_for(PAUSE_EDGE_S)


@when("the cloud resumes the device")
def _resume(bench: Any) -> None:
    """Resume the channel; media captured from now on is uploaded again."""
    hold_for(PAUSE_EDGE_S)
    bench.cloud.resume_device(bench.cloud_device_id())
    bench.timeline.record("cloud", "pause", "stop")
    bench.state.notes["paused_now"] = False
    hold_for(PAUSE_EDGE_S)


@when("the cloud expires the device's access tokens")
def _expire(bench: Any) -> None:
    """Access tokens expire now: the next call gets 401 and the device must refresh."""
    bench.cloud.expire_tokens(bench.cloud_device_id())
    bench.timeline.record("auth", "tokens expired", "mark")


@when(parsers.parse('the cloud renames the device to "{name}"'))
def _rename_device(bench: Any, name: str) -> None:
    """Device management: rename in the cloud (through the control API's device PATCH)."""
    bench.state.notes["device_name"] = name
    rename = getattr(bench.cloud, "rename_device", None)
    if callable(rename):
        rename(bench.cloud_device_id(), name)
    bench.timeline.record("cloud", "rename device", "mark", new_name=name)


@when("the cloud removes the device")
def _remove(bench: Any) -> None:
    """Remove (revoke) the device in the cloud; it must notice and ask to pair again."""
    bench.cloud.revoke_device(bench.cloud_device_id())
    bench.timeline.record("cloud", "revoke", "mark")
    bench.session.paired = False


@when(parsers.parse("the device is idle for {minutes:d} minutes of cloud time"))
def _idle(bench: Any, minutes: int) -> None:
    """Advance the emulator clock in 30 s steps while the device stays idle."""
    bench.state.notes["idle_from"] = len(bench.journal())
    steps = minutes * 2
    for _ in range(steps):
        before = len(bench.cloud.journal(since=bench.state.journal_since))
        bench.cloud.advance_clock(30)
        # give the device a moment of real time to react to each clock step
        wait_until(lambda b=before: len(bench.cloud.journal(since=bench.state.journal_since)) >= b, 5, "the journal")
    bench.timeline.record("cloud", "idle", "mark", minutes=minutes)


@when("the cloud has received part of the upload")
def _partial(bench: Any) -> None:
    """Wait until at least one part PUT of the current scenario has arrived."""
    wait_until(lambda: any(r.get("method") == "PUT" and r.get("status") == 200 for r in bench.journal()),
               120, "the first uploaded part")


# The spec's other 409 answers on asset creation (c2c-api.md §3.8, §11.7) -> fault kind.
ASSET_CONFLICTS = {"slow_down": "conflict_slow_down", "invalid_client": "conflict_invalid_client"}
ASSET_CREATE_PATH = r"^/v2/(devices/)?assets$"


@given(parsers.re(r'the cloud answers the next (?P<count>\d+) asset creations? with 409 "(?P<message>[a-z_]+)"$'))
def _asset_conflicts(bench: Any, count: str, message: str) -> None:
    """Asset creation answers 409 with `message` slow_down or invalid_client (detailed error shape).

    Remembers where the journal stood, so the oracle judges only what followed the fault
    (not the pairing the Given before may have done).
    """
    assert message in ASSET_CONFLICTS, f"unknown 409 message {message!r}; known: {sorted(ASSET_CONFLICTS)}"
    bench.state.notes["asset_conflict"] = {"message": message, "count": int(count),
                                           "since": bench.session.journal_head()}
    bench.cloud.add_fault({"target": "api", "path": ASSET_CREATE_PATH, "method": "POST",
                           "count": int(count), "kind": ASSET_CONFLICTS[message]})
    bench.timeline.record("cloud", f"api 409 {message} x{count}", "mark")

"""Steps that act on the cloud emulator (Cloud protocol): settings, faults, producer actions.

Every fault here is a `harness.faults.vocabulary.Fault` injected by `inject_fault`, which
records it on the timeline and hands its `ActiveFault` to the bench, so it is undone at
scenario end whatever happens. No step writes an emulator rule (that format is private to
`harness.faults.cloud`).
"""

from __future__ import annotations

import time
from typing import Any

from pytest_bdd import given, parsers, when

from harness.bdd.bench import Bench
from harness.bdd.steps.common import hold_for, wait_until
from harness.bdd.steps.pairing_steps import witness
from harness.cloud.paths import ASSET_CREATE_PATH
from harness.errors import CloudError, ConfigError
from harness.faults.cloud import CONFLICT_MESSAGES, kind_name
from harness.faults.vocabulary import ActiveFault, Fault, FaultTargets, inject

# Token-poll answers the AUTH-04 outline asks for -> how the emulator is made to give them.
POLL_ERRORS = ("expired_token", "slow_down", "access_denied")
PAUSE_EDGE_S = 2.0
# C2C-SOCK-01: how far past the gap limit a silence must run to be conclusive, and the
# margin of the window's hard cap (twice the limit: two beats of a 300 s heartbeater).
IDLE_SLACK_S = 5.0
PAUSE = Fault("cloud", "pause")


def inject_fault(bench: Bench, fault: Fault | str, *, on_device: bool = False,
                 project_id: str | None = None) -> ActiveFault:
    """Inject `fault` against the bench's cloud (on our device's id when `on_device`), recorded
    on the bench's timeline; the bench holds the handle and stops it at scenario end."""
    device_id = bench.cloud_device_id() if on_device else None
    targets = FaultTargets(timeline=bench.timeline, cloud=bench.cloud, device_id=device_id,
                           project_id=project_id)
    return bench.hold(inject(fault, targets))


@given("URL pairing is enabled in the cloud")
def _url_pairing(bench: Bench) -> None:
    """URL/QR pairing on: a device that opts in (x-client-platypus-enabled) is issued a
    verification_uri_complete (the emulator's `url_pairing` setting; restored afterwards)."""
    inject_fault(bench, Fault("cloud", "settings", {"url_pairing": True}))
    if bench.cloud.update_settings().get("url_pairing") is not True:
        raise CloudError("the cloud did not switch URL pairing on")
    bench.state.url_pairing = True


@given(parsers.parse('the cloud answers token polls with "{error}"'))
def _poll_error(bench: Bench, error: str) -> None:
    """Make the authorization server answer with expired_token (device codes live 12 s),
    slow_down (the next 2 token calls) or access_denied (the pairing step denies the code)."""
    assert error in POLL_ERRORS, f"unknown poll error {error!r}"
    bench.state.poll_error = error
    if error == "expired_token":
        inject_fault(bench, "cloud:settings device_code_lifetime=12")
    elif error == "slow_down":
        inject_fault(bench, "auth:poll-slow-down x2")


@given(parsers.parse('the cloud answers the next {count:d} part uploads with "{kind}"'))
def _s3_faults(bench: Bench, count: int, kind: str) -> None:
    """S3-side error injection (SlowDown, RequestTimeout, InternalError, 503, expired URL)."""
    inject_fault(bench, f"s3:{kind_name(kind)} x{count}")


@given(parsers.parse('the cloud answers the next {count:d} API calls with "{kind}"'))
def _api_faults(bench: Bench, count: int, kind: str) -> None:
    """API-side error injection on asset creation (500, 429, 401)."""
    inject_fault(bench, Fault("cloud", f"api-{kind_name(kind)}",
                              {"count": count, "path": ASSET_CREATE_PATH, "method": "POST"}))


@given(parsers.parse("the cloud issues access tokens that expire after {seconds:d} seconds"))
def _short_tokens(bench: Bench, seconds: int) -> None:
    """Shorten the access-token lifetime so many refreshes happen during the run."""
    inject_fault(bench, f"cloud:settings access_token_lifetime={seconds}")
    inject_fault(bench, "auth:expire-tokens", on_device=True)


def refreshes(bench: Bench) -> int:
    """Successful token calls since the scenario began: on a paired device these are refreshes."""
    return sum(1 for r in bench.journal() if str(r.get("path", "")).endswith("/v2/auth/token")
               and r.get("method") == "POST" and r.get("status") == 200)


@when(parsers.parse('the cloud renames the project to "{name}"'))
def _rename_project(bench: Bench, name: str) -> None:
    """A producer renames the project; the device must keep using the project id."""
    project = bench.session.ensure_project()
    inject_fault(bench, Fault("cloud", "rename-project", {"name": name}), project_id=str(project["id"]))
    project["name"] = name


@when("the cloud pauses the device")
def _pause(bench: Bench) -> None:
    """Pause the device's channel: media captured from now on must be withheld (409).
    The pause window on the timeline is what the ledger judges captures against."""
    inject_fault(bench, PAUSE, on_device=True)
    bench.state.paused_now = True
    # offsets are whole seconds: keep captures clear of the window edge so none is ambiguous
    hold_for(PAUSE_EDGE_S)


@when("the cloud resumes the device")
def _resume(bench: Bench) -> None:
    """Resume the channel (stop the pause fault); media captured from now on is uploaded again."""
    paused = [f for f in bench.faults if f.fault == PAUSE and not f.stopped]
    if not paused:
        raise ConfigError("'the cloud resumes the device' needs 'the cloud pauses the device' before it")
    hold_for(PAUSE_EDGE_S)
    paused[-1].stop()
    bench.state.paused_now = False
    hold_for(PAUSE_EDGE_S)


@when("the cloud expires the device's access tokens")
def _expire(bench: Bench) -> None:
    """Access tokens expire now: the next call gets 401 and the device must refresh."""
    inject_fault(bench, "auth:expire-tokens", on_device=True)


@when(parsers.parse('the cloud renames the device to "{name}"'))
def _rename_device(bench: Bench, name: str) -> None:
    """Device management: rename in the cloud (through the control API's device PATCH)."""
    bench.state.device_name = name
    bench.cloud.rename_device(bench.cloud_device_id(), name)
    bench.timeline.record("cloud", "rename device", "mark", new_name=name)


@when("the cloud removes the device")
def _remove(bench: Bench) -> None:
    """Remove (revoke) the device in the cloud; it must notice and ask to pair again."""
    inject_fault(bench, "auth:revoke", on_device=True)
    bench.session.paired = False


@when(parsers.parse("the device stays idle for at least {seconds:d} seconds of real time"))
def _idle(bench: Bench, seconds: int) -> None:
    """Watch the device's status beats while it does nothing, in real time (its beats run on
    its own clock, which the bench cannot drive): at least `seconds`, and on until the cloud
    saw two beats of this device or a silence longer than C2C-SOCK-01's gap limit (a device
    beating every 300 s is watched up to ~10 min; one that never beats, just past the limit).
    The window [start, end] and the beats in it (cloud time) go to the Then-step."""
    device_id = bench.cloud_device_id()
    cloud = witness(bench)
    limit = float(bench.session.checklist["C2C-SOCK-01"].measurement("heartbeat_gap_s").high or 300)
    cap = 2 * limit + IDLE_SLACK_S
    start = float(cloud.status_beats(device_id)["now"])
    began = time.monotonic()
    bench.timeline.record("cloud", "idle", "start", at_least_s=seconds)

    def conclusive() -> dict[str, Any] | None:
        seen = cloud.status_beats(device_id, since=start)
        beats = [float(b["t"]) for b in seen["beats"] if float(b["t"]) >= start]
        silence = float(seen["now"]) - (beats[-1] if beats else start)
        elapsed = time.monotonic() - began
        if silence > limit + IDLE_SLACK_S or elapsed >= cap or (elapsed >= seconds and len(beats) >= 2):
            return seen
        return None
    seen = wait_until(conclusive, cap + 2 * IDLE_SLACK_S, "the idle window to end", interval=1.0)
    end = float(seen["now"])
    bench.timeline.record("cloud", "idle", "stop")
    bench.state.idle_window = {"start": start, "end": end, "beats": seen["beats"]}
    kinds = sorted({str(b.get("kind")) for b in seen["beats"]})
    bench.exercised(f"idle {end - start:.0f} s of real time, not 8 minutes: the device's own status beats "
                    f"({', '.join(kinds) or 'none'}) within that window, gap limit {limit:.0f} s")


@when("the cloud has received part of the upload")
def _partial(bench: Bench) -> None:
    """Wait until at least one part PUT of the current scenario has arrived."""
    wait_until(lambda: any(r.get("method") == "PUT" and r.get("status") == 200 for r in bench.journal()),
               120, "the first uploaded part")


@given(parsers.re(r'the cloud answers the next (?P<count>\d+) asset creations? with 409 "(?P<message>[a-z_]+)"$'))
def _asset_conflicts(bench: Bench, count: str, message: str) -> None:
    """Asset creation answers 409 with `message` slow_down or invalid_client (detailed error
    shape): the vocabulary's api:conflict-<message>, aimed at asset creation (c2c-api.md §3.8).

    Remembers where the journal stood, so the oracle judges only what followed the fault
    (not the pairing the Given before may have done).
    """
    assert message in CONFLICT_MESSAGES, f"unknown 409 message {message!r}; known: {CONFLICT_MESSAGES}"
    bench.state.asset_conflict = {"message": message, "count": int(count),
                                  "since": bench.session.journal_head()}
    inject_fault(bench, f"api:conflict-{kind_name(message)} x{count}")

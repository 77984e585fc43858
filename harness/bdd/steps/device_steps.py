"""Steps about the device under test: pairing, user actions, declarations.

Everything goes through the Device protocol (status(), pairing_code(), control()) and the
operator prompt when the device has no automatic way. What the device shows is checked in
device_display_steps.py.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from pytest_bdd import given, parsers, then, when

from harness.bdd.bench import Bench
from harness.bdd.state import Grant
from harness.bdd.steps.common import (
    control_or_operator,
    device_status,
    hold_for,
    issued_code,
    wait_until,
)
from harness.certify.lost_grant import RefreshAnswers, refresh_lost_in_cut, refresh_rows
from harness.cloud.paths import TOKEN_PATH
from harness.errors import DeviceFailure, DeviceTimeout
from harness.items.manual import Question
from harness.items.verdicts import PASS
from harness.protocols import ClientIdentity, CloudWitness

PAIR_TIMEOUT = 60.0


def _running(bench: Bench) -> bool:
    on = bench.device.power().is_on()
    return True if on is None else bool(on)


def ensure_running(bench: Bench) -> None:
    if not _running(bench):
        bench.device.start()


def pair(bench: Bench) -> None:
    """Run the pairing flow end to end: code shown on the device, approved in the cloud."""
    ensure_running(bench)
    st = device_status(bench)
    state = (st.get("pairing") or {}).get("state") if st else None
    if state == "paired":
        if bench.cloud_device() is not None:
            # left paired to the bench project by an earlier scenario (one whose cancel or
            # logout the device ignored): it cannot show a code, and needs none
            bench.session.paired = True
            return
        with contextlib.suppress(DeviceFailure):  # paired to a grant the cloud dropped
            bench.device.control("logout")
        st = device_status(bench)
        state = (st.get("pairing") or {}).get("state") if st else None
    if st and state not in {"showing_code", "requesting_code", "paired"}:
        try:  # after a logout, removal or cancel the user starts pairing again
            bench.device.control("start_pairing")
        except DeviceFailure:
            pass  # refused (e.g. still paired): the code wait below decides
    project = bench.session.ensure_project()
    for attempt in (1, 2):
        code = _pending_code_shown(bench)
        bench.state.pairing_code = code
        row = issued_code(bench, code)
        client_id = str(row["client_id"]) if row and row.get("client_id") else None
        interval = float(row.get("interval") or 0.0) if row else 0.0
        before = bench.session.journal_head()
        bench.cloud.approve(code, str(project["id"]))
        bench.timeline.record("cloud", "approve", "mark", user_code="******")
        wait_until(lambda: bench.cloud_device() is not None, PAIR_TIMEOUT, "the device to appear in the cloud project")
        if bench.has_status:
            wait_until(lambda: (device_status(bench).get("pairing") or {}).get("state") == "paired",
                       PAIR_TIMEOUT, "the device to show itself paired")
            break
        if _grant_taken(bench, client_id, before, interval):
            break
        if attempt == 2:
            raise DeviceFailure("twice the device polled again with a device code whose tokens the cloud "
                                "had already issued (answered invalid_grant): it did not take the tokens "
                                "its approval gave it")
        bench.timeline.record("device", "pairing again", "mark",
                              why="the device polled again with its used device code after the tokens were issued")
    bench.session.paired = True
    bench.state.paired_journal_head = bench.session.journal_head()  # later checks start here


GRANT_SILENCE_S = 10.0
"""How long, at least, after its tokens were issued a device that neither uses them nor polls
again is taken to hold them: one that missed the answer polls again within its interval (twice
the code's interval is waited when that is longer; 5 s by default)."""


def _grant_taken(bench: Bench, client_id: str | None, since: int, interval: float) -> bool:
    """Whether a device without a status API took the tokens its approval issued.

    The cloud listing the device says only that the code was approved; the token answer may
    still be on its way. A bench step that changes the network path right then (a TLS
    interceptor put in, say) can cut it, and the device pairs again with a code nobody approves:
    a full matrix lost a correct device's files that way. So the bench waits for the oracle's
    word: a request the device authenticated with its grant (it holds the tokens), a poll with
    the used code (it missed them: False), or silence past `GRANT_SILENCE_S` or two poll
    intervals (it holds them and has nothing to ask yet).
    """
    cloud = bench.cloud
    row = _await_issued(bench, since)
    device_id, issued_id, issued_t = str(row["device_id"]), int(row["id"]), float(row["t"])
    silence = max(GRANT_SILENCE_S, 2 * interval)
    silent_after = time.monotonic() + silence

    def settled() -> str | None:
        if any(r.get("device_id") == device_id and not _path(r).startswith("/v2/auth/")
               and r.get("status") != 401 for r in cloud.journal(since=issued_id)):
            return "used"
        if client_id and isinstance(cloud, CloudWitness) and any(
                float(p.get("t") or 0.0) > issued_t and p.get("answer") == "invalid_grant"
                for p in cloud.token_polls(client_id)):
            return "missed"
        return "silent" if time.monotonic() >= silent_after else None
    outcome = wait_until(settled, silence + 30, "the device to use or miss the tokens it was issued")
    bench.timeline.record("cloud", "grant taken" if outcome != "missed" else "grant missed", "mark", evidence=outcome)
    return outcome != "missed"


def _pending_code_shown(bench: Bench) -> str:
    """The code the device shows, once the cloud holds it as pending.

    A code the cloud does not hold is stale (printed before a denial, an expiry or a power cut)
    or made up; approving it would be the bench's error in every later scenario. A device that
    shows none within half the pairing time is relaunched once (a known state, whatever the
    previous scenario left), then a device that still shows no issued code has failed.
    """
    if bench.profile.pairing.source == "operator":
        return str(bench.device.pairing_code(PAIR_TIMEOUT))  # a person reads it off the screen
    shown: set[str] = set()

    def issued() -> str | None:
        try:
            code = str(bench.device.pairing_code(1.0))
        except DeviceTimeout:
            return None
        shown.add(code)
        return code if issued_code(bench, code) else None

    for attempt in (1, 2):
        try:
            return str(wait_until(issued, PAIR_TIMEOUT / 2, "the device to show a pairing code the cloud issued"))
        except DeviceTimeout:
            own = _code_issued_to_device(bench) if shown else None
            if own is not None:
                return _through_the_oracle(bench, own, len(shown))
            if attempt == 2:
                raise DeviceFailure(f"no pairing code the cloud holds pending shown within {PAIR_TIMEOUT:.0f} s, "
                                    f"even after a relaunch (shown: {len(shown)} other code(s))") from None
            bench.timeline.record("device", "relaunch", "mark", why="no issued pairing code shown")
            bench.device.stop()
            bench.device.start()
    raise AssertionError("unreachable")


def _through_the_oracle(bench: Bench, own: str, shown: int) -> str:
    """The oracle before a person: the device asked for a code and shows another one. The step
    pairs it with what the cloud issued to its client id, says so on the timeline and in the
    scenario's notes, and leaves the display to the pairing scenarios (C2C-AUTH-01/02)."""
    bench.timeline.record("cloud", "pair through the oracle", "mark",
                          why=f"the device showed {shown} code(s) the cloud never issued")
    bench.exercised(f"the device showed {shown} pairing code(s) the cloud never issued; this "
                    "scenario's device was paired with the code the cloud issued to its client id")
    return own


def approvable_code(bench: Bench, shown: str) -> str:
    """The code to approve for a device that showed `shown`: that code when the cloud holds it
    pending; else the code the cloud issued to the device's client id (`_through_the_oracle`).
    A device the cloud issued no code to, in half the pairing time, has failed to ask for one."""
    timeout = PAIR_TIMEOUT / 2

    def pending() -> str | None:
        return shown if issued_code(bench, shown) else _code_issued_to_device(bench)
    try:
        code = str(wait_until(pending, timeout, "the cloud to hold a pairing code for the device"))
    except DeviceTimeout:
        raise DeviceFailure(f"the cloud holds no pending pairing code the device asked for within {timeout:.0f} s "
                            "(the code it shows was never issued)") from None
    return code if code == shown else _through_the_oracle(bench, code, 1)


def _code_issued_to_device(bench: Bench) -> str | None:
    """The newest code the cloud holds pending for this device's client id (None when the bench
    does not know the client id, or the cloud holds none)."""
    device = bench.device
    if not isinstance(device, ClientIdentity):
        return None
    mine = [c for c in bench.cloud.pending_codes() if str(c.get("client_id")) == device.client_id]
    return str(mine[-1]["user_code"]) if mine else None


def pair_again_if_grant_lost(bench: Bench) -> None:
    """Pair the device again, once per scenario, when a power cut took a refresh answer with it
    (harness/certify/lost_grant.py): what its user would do; the timeline and the scenario's notes
    say so. Anything else that cost the device its pair is left for the verdict."""
    if bench.state.paired_again is not None:
        return
    kills = [e.at for e in bench.timeline.events if e.layer == "power" and e.action == "flip"
             and e.details.get("state") == "off" and e.at >= bench.state.started_at]
    if not kills:
        return
    answers = bench.state.refresh_answers
    if answers is None:
        answers = bench.state.refresh_answers = RefreshAnswers(bench.state.journal_since)
    refreshes = answers.update(bench.cloud.journal)
    if not refresh_rows(refreshes, 400):
        return
    why = refresh_lost_in_cut(refreshes, kills, bench.cloud.now() - time.time())
    if why is None:
        return
    bench.state.paired_again = why
    bench.timeline.record("device", "pair again", "mark", why="grant lost in a power cut")
    bench.exercised(f"{why}: single-use refresh tokens make pairing again the contract's answer "
                    "(c2c-api.md §3.3), so the bench paired the device again as its user would")
    pair(bench)


@given("a fresh unpaired device")
def _fresh_device(bench: Bench) -> None:
    """Factory-reset the device (new state, new client id) and power it on, unpaired."""
    bench.session.fresh_device()
    bench.device.start()


@given("a paired device")
def _paired_device(bench: Bench) -> None:
    """A running device paired to the bench project; pairs it (device code flow) if needed.
    A device whose own status says it has lost its pairing (an earlier scenario's fault left it
    waiting for the user to pair again) is paired again: each scenario starts from a known state."""
    if bench.session.paired and _running(bench) and bench.cloud_device() is not None and not _lost_pairing(bench):
        return
    pair(bench)


def _lost_pairing(bench: Bench) -> bool:
    """The device's status says it waits to be paired again (repair_needed); without a status
    API there is nothing to read (False). Transitional states (booting, refreshing) do not count."""
    st = device_status(bench) if bench.has_status else None
    if not st:
        return False
    return "repair_needed" in ((st.get("pairing") or {}).get("state"), (st.get("token") or {}).get("state"))


@given("a paired device that makes proxies")
def _proxy_device(bench: Bench) -> None:
    """A paired device that makes proxies. A device without the `proxies` capability never gets
    here: the checklist's `[scenario_applies]` skips these scenarios as not applicable first."""
    _paired_device(bench)


@given("the device profile")
def _profile(bench: Bench) -> None:
    """Nothing to run: the scenario checks what the profile declares."""


@when("the device requests a pairing code")
def _request_code(bench: Bench) -> None:
    """Wait until the device shows (status, console or operator) a pairing code."""
    ensure_running(bench)
    code = bench.device.pairing_code(PAIR_TIMEOUT)
    bench.state.pairing_code = code
    bench.state.codes_seen.append(code)


@when(parsers.parse("the pairing is cancelled {moment}"))
def _cancel_pairing(bench: Bench, moment: str) -> None:
    """Cancel the authorization flow at the given moment (code shown / polling / after approval)."""
    question = "Cancel the pairing on the device. Done?"
    if moment == "while polling":
        code = bench.state.pairing_code
        wait_until(lambda: any(r.get("path", "").endswith("/v2/auth/token") for r in bench.journal()),
                   30, "the device to poll for a token")
        assert code
    elif moment == "after approval":
        approve_and_await_tokens(bench)
        question = ("The code was approved and the device has its tokens. Cancel the pairing on the "
                    "device now, before it finishes setting up. Done?")
    control_or_operator(bench, "cancel_pairing", question)
    bench.timeline.record("device", "cancel_pairing", "mark", moment=moment)
    bench.state.cancelled_at = bench.timeline.events[-1].at


def _path(row: dict[str, Any]) -> str:
    return str(row.get("path") or "").split("?", 1)[0]


def _await_issued(bench: Bench, since: int) -> dict[str, Any]:
    """The journal row of the token answer that carried the device its tokens, after row `since`."""
    def issued() -> dict[str, Any] | None:
        return next((r for r in bench.cloud.journal(since=since)
                     if _path(r).endswith(TOKEN_PATH) and r.get("status") == 200 and r.get("device_id")), None)
    return wait_until(issued, PAIR_TIMEOUT, "the device to collect its tokens after the approval")


def approve_and_await_tokens(bench: Bench) -> Grant:
    """Approve the shown code and wait until the cloud has issued the device its tokens.

    The grant (the device it belongs to, when and at which journal row it was issued) is
    kept in `state.grant` for the oracle steps that follow the cancel.
    """
    shown = bench.state.pairing_code
    assert shown, "the device showed no pairing code to approve"
    code = approvable_code(bench, shown)
    before = bench.session.journal_head()
    project = bench.session.ensure_project()
    bench.cloud.approve(code, str(project["id"]))
    bench.timeline.record("cloud", "approve", "mark", user_code="******")
    row = _await_issued(bench, before)
    grant = Grant(device_id=str(row["device_id"]), issued_id=int(row["id"]), issued_t=float(row["t"]))
    bench.state.grant = grant
    # the device holds a live grant now: a scenario that ends here (at an operator question, say)
    # leaves it paired, and the next "a paired device" must not wait for a code it will not show
    bench.session.paired = True
    return grant


@given(parsers.parse('the device is in "{mode}" upload mode'))
@when(parsers.parse('the user sets upload mode to "{mode}"'))
def _set_mode(bench: Bench, mode: str) -> None:
    """Switch automatic/manual upload mode as the user would: the device's control, or the operator."""
    control_or_operator(bench, "mode", f"Set the device to {mode} upload mode. Done?", mode=mode)
    bench.state.restore_mode = "auto"


@when("the user uploads all files")
def _upload_all(bench: Bench) -> None:
    """Select every queued file for upload (bulk selection), as a user does: once the device lists
    what was captured. A capture the device has not picked up yet (a watch folder waits out its
    quiet period: seconds on a loaded bench) would stay unselected in manual mode and read as
    lost: a full matrix failed OPT-01 that way, on the bench's timing, not the device's."""
    if bench.has_status:
        _await_listed(bench, [c.name for c in bench.state.captures])
    control_or_operator(bench, "upload", "Select all files for upload on the device. Done?", all=True)


def _await_listed(bench: Bench, names: list[str]) -> None:
    """Wait until the device lists each of `names`, or the cloud holds it already (a device may
    drop finished files from its list)."""
    def listed() -> bool:
        missing = set(names) - {f.get("name") for f in device_status(bench).get("files", [])}
        if missing:
            missing -= {r.get("name") for r in bench.cloud.ledger(bench.cloud_device_id())}
        return not missing
    wait_until(listed, 30, f"the device to list every captured file ({', '.join(names)})")


def _file_id(bench: Bench, name: str) -> str:
    def find() -> str | None:
        for f in device_status(bench).get("files", []):
            if f.get("name") == name and f.get("id"):
                return str(f["id"])
        return None
    return wait_until(find, 30, f"the device to list {name}")


@when("the user uploads the first captured file")
def _upload_first(bench: Bench) -> None:
    """Select one file (the first captured) for upload."""
    first = bench.state.captures[0].name
    if bench.has_status:
        control_or_operator(bench, "upload", f"Upload only {first}. Done?", ids=[_file_id(bench, first)])
    else:
        control_or_operator(bench, "upload", f"Upload only {first}. Done?")


@when(parsers.parse('the user gives "{ext}" files priority'))
def _priority_type(bench: Bench, ext: str) -> None:
    """Prioritise a file type (optional feature)."""
    control_or_operator(bench, "priority", f"Give {ext} files priority. Done?", filetype=ext, priority=100)


@when("the user gives the last captured file top priority")
def _priority_file(bench: Bench) -> None:
    """Move the last captured file to the front of the queue (optional feature)."""
    last = bench.state.captures[-1].name
    if bench.has_status:
        control_or_operator(bench, "priority", f"Move {last} to the front. Done?", id=_file_id(bench, last), priority=1000)
    else:
        control_or_operator(bench, "priority", f"Move {last} to the front. Done?")


@when("the device shows the file uploading")
def _uploading(bench: Bench) -> None:
    """The last captured file is being uploaded: shown as uploading on the device, or (no status)
    its asset exists in the cloud."""
    name = bench.state.captures[-1].name
    if bench.has_status:
        def shown() -> bool:
            st = device_status(bench)
            return (st.get("current") or {}).get("name") == name or any(
                f.get("name") == name and f.get("state") == "uploading" for f in st.get("files", []))
        wait_until(shown, 60, f"the device to show {name} uploading")
        return
    wait_until(lambda: any(r.get("name") == name for r in bench.cloud.ledger()), 60, f"the cloud to see {name} start")


@when("the user cancels all uploads")
def _cancel_all(bench: Bench) -> None:
    """Cancel every upload (bulk cancel)."""
    control_or_operator(bench, "cancel", "Cancel all uploads on the device. Done?", all=True)
    bench.state.cancelled_at = bench.timeline.events[-1].at if bench.timeline.events else None
    bench.state.cancelled_cloud_t = bench.cloud.now()  # on the journal's clock: which parts started before


@when("the user logs out")
def _logout(bench: Bench) -> None:
    """Log out on the device (must revoke its tokens in the cloud)."""
    control_or_operator(bench, "logout", "Log out on the device. Done?")
    bench.session.paired = False


# --- declared and operator items ----------------------------------------------------------------
@then(parsers.parse('the profile declares "{item}" with evidence'))
def _declared(bench: Bench, item: str) -> None:
    """A declared item rests on the profile's evidence (verdict "declared"); otherwise a person confirms."""
    evidence = bench.profile.declared.get(item)
    if evidence:
        bench.state.declared[item] = evidence  # the verdict is "declared", never "pass"
        return
    entry = bench.session.checklist[item]
    asked = entry.question or Question(f"{item}: {entry.title}. Does the device meet it?")
    if bench.prompt.answer(asked).verdict != PASS:
        raise DeviceFailure(f"{item}: operator says the device does not meet it")


@then(parsers.parse('the operator confirms "{question}"'))
def _operator_confirms(bench: Bench, question: str) -> None:
    """An operator-verified requirement: "operator-confirmed" on a yes, "operator" when nobody answers.
    Where the scenario's checklist item has a question of its own (a value or a choice the bench
    judges, harness/items/manual.py), the person is asked that instead of a yes/no."""
    checklist = bench.session.checklist
    asked = next((q for q in (checklist[i].question for i in bench.state.items if i in checklist) if q), None)
    judged = bench.prompt.answer(asked or Question(question))
    if judged.verdict != PASS:
        said = judged.choice or (f"{judged.value:g} {asked.unit}" if asked and judged.value is not None else "no")
        raise DeviceFailure(f"operator says {said}: {(asked.text if asked else question)}")


__all__ = ["hold_for", "pair"]

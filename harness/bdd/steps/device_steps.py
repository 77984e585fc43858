"""Steps about the device under test: pairing, what it shows, user actions, secrets, declarations.

Everything goes through the Device protocol (status(), pairing_code(), control()) and the
operator prompt when the device has no automatic way.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from harness.bdd.steps.common import (
    control_or_operator,
    device_status,
    hold_for,
    status_or_operator,
    wait_until,
)
from harness.certify.verdicts import NOT_APPLICABLE_SKIP
from harness.errors import DeviceFailure

PAIR_TIMEOUT = 60.0


def _running(bench: Any) -> bool:
    on = bench.device.power().is_on()
    return True if on is None else bool(on)


def ensure_running(bench: Any) -> None:
    if not _running(bench):
        bench.device.start()


def pair(bench: Any) -> None:
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
    code = bench.device.pairing_code(PAIR_TIMEOUT)
    bench.state.pairing_code = code
    bench.cloud.approve(code, str(project["id"]))
    bench.timeline.record("cloud", "approve", "mark", user_code="******")
    wait_until(lambda: bench.cloud_device() is not None, PAIR_TIMEOUT, "the device to appear in the cloud project")
    if bench.has_status:
        wait_until(lambda: (device_status(bench).get("pairing") or {}).get("state") == "paired",
                   PAIR_TIMEOUT, "the device to show itself paired")
    bench.session.paired = True


@given("a fresh unpaired device")
def _fresh_device(bench: Any) -> None:
    """Factory-reset the device (new state, new client id) and power it on, unpaired."""
    bench.session.fresh_device()
    bench.device.start()


@given("a paired device")
def _paired_device(bench: Any) -> None:
    """A running device paired to the bench project; pairs it (device code flow) if needed."""
    if bench.session.paired and _running(bench) and bench.cloud_device() is not None:
        return
    pair(bench)


@given("a paired device that makes proxies")
def _proxy_device(bench: Any) -> None:
    """A paired device with the `proxies` capability; without it the proxy items are not applicable."""
    if "proxies" not in bench.profile.capabilities:
        items = [*bench.state.notes.get("items", []), "C2C-WF-04"]
        reason = next((bench.profile.not_applicable[i] for i in items if i in bench.profile.not_applicable),
                      "the profile declares no 'proxies' capability")
        pytest.skip(f"{NOT_APPLICABLE_SKIP}{reason}")
    _paired_device(bench)


@given(parsers.parse('the device is in "{mode}" upload mode'))
def _mode_given(bench: Any, mode: str) -> None:
    """Switch automatic/manual upload through the device's control, or by the operator."""
    control_or_operator(bench, "mode", f"Set the device to {mode} upload mode. Done?", mode=mode)
    bench.state.notes["restore_mode"] = "auto"


@given("the device profile")
def _profile(bench: Any) -> None:
    """Nothing to run: the scenario checks what the profile declares."""


@when("the device requests a pairing code")
def _request_code(bench: Any) -> None:
    """Wait until the device shows (status, console or operator) a pairing code."""
    ensure_running(bench)
    code = bench.device.pairing_code(PAIR_TIMEOUT)
    bench.state.pairing_code = code
    bench.state.codes_seen.append(code)


@when(parsers.parse("the pairing is cancelled {moment}"))
def _cancel_pairing(bench: Any, moment: str) -> None:
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
    bench.state.notes["cancelled_at"] = bench.timeline.events[-1].at


def _path(row: dict[str, Any]) -> str:
    return str(row.get("path") or "").split("?", 1)[0]


def approve_and_await_tokens(bench: Any) -> dict[str, Any]:
    """Approve the shown code and wait until the cloud has issued the device its tokens.

    The grant (the device it belongs to, when and at which journal row it was issued) is
    kept in `notes["grant"]` for the oracle steps that follow the cancel.
    """
    code = bench.state.pairing_code
    assert code, "the device showed no pairing code to approve"
    before = bench.session.journal_head()
    project = bench.session.ensure_project()
    bench.cloud.approve(code, str(project["id"]))
    bench.timeline.record("cloud", "approve", "mark", user_code="******")

    def issued() -> dict[str, Any] | None:
        return next((r for r in bench.cloud.journal(since=before)
                     if _path(r).endswith("/v2/auth/token") and r.get("status") == 200 and r.get("device_id")), None)
    row = wait_until(issued, PAIR_TIMEOUT, "the device to collect its tokens after the approval")
    grant = {"device_id": str(row["device_id"]), "issued_id": int(row["id"]), "issued_t": float(row["t"])}
    bench.state.notes["grant"] = grant
    return grant


@when(parsers.parse('the user sets upload mode to "{mode}"'))
def _set_mode(bench: Any, mode: str) -> None:
    """Switch automatic/manual upload mode as the user would."""
    control_or_operator(bench, "mode", f"Set the device to {mode} upload mode. Done?", mode=mode)
    bench.state.notes["restore_mode"] = "auto"


@when("the user uploads all files")
def _upload_all(bench: Any) -> None:
    """Select every queued file for upload (bulk selection)."""
    control_or_operator(bench, "upload", "Select all files for upload on the device. Done?", all=True)


def _file_id(bench: Any, name: str) -> str:
    def find() -> str | None:
        for f in device_status(bench).get("files", []):
            if f.get("name") == name and f.get("id"):
                return str(f["id"])
        return None
    return wait_until(find, 30, f"the device to list {name}")


@when("the user uploads the first captured file")
def _upload_first(bench: Any) -> None:
    """Select one file (the first captured) for upload."""
    first = bench.state.captures[0].name
    if bench.has_status:
        control_or_operator(bench, "upload", f"Upload only {first}. Done?", ids=[_file_id(bench, first)])
    else:
        control_or_operator(bench, "upload", f"Upload only {first}. Done?")


@when(parsers.parse('the user gives "{ext}" files priority'))
def _priority_type(bench: Any, ext: str) -> None:
    """Prioritise a file type (optional feature)."""
    control_or_operator(bench, "priority", f"Give {ext} files priority. Done?", filetype=ext, priority=100)


@when("the user gives the last captured file top priority")
def _priority_file(bench: Any) -> None:
    """Move the last captured file to the front of the queue (optional feature)."""
    last = bench.state.captures[-1].name
    if bench.has_status:
        control_or_operator(bench, "priority", f"Move {last} to the front. Done?", id=_file_id(bench, last), priority=1000)
    else:
        control_or_operator(bench, "priority", f"Move {last} to the front. Done?")


@when("the device shows the file uploading")
def _uploading(bench: Any) -> None:
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
def _cancel_all(bench: Any) -> None:
    """Cancel every upload (bulk cancel)."""
    control_or_operator(bench, "cancel", "Cancel all uploads on the device. Done?", all=True)
    bench.state.notes["cancelled_at"] = bench.timeline.events[-1].at if bench.timeline.events else None


@when("the user logs out")
def _logout(bench: Any) -> None:
    """Log out on the device (must revoke its tokens in the cloud)."""
    control_or_operator(bench, "logout", "Log out on the device. Done?")
    bench.session.paired = False


# --- what the device shows -------------------------------------------------------------------
@then("the device does not show itself as paired")
def _not_paired(bench: Any) -> None:
    """After a cancel the device is not paired."""
    status_or_operator(bench, "Does the device show itself as NOT paired?",
                       lambda st: (st.get("pairing") or {}).get("state") not in {"paired", "approved"})


@then("the device shows itself as not paired and holding no token")
def _unpaired_no_token(bench: Any) -> None:
    """After a cancel that followed the approval: not paired, and no token kept (token state none)."""
    def dropped(st: dict[str, Any]) -> bool:
        token = (st.get("token") or {}).get("state", "none")
        return (st.get("pairing") or {}).get("state") not in {"paired", "approved"} and token not in {"valid", "refreshing"}
    status_or_operator(bench, "Does the device show itself as NOT paired (no project, asking to pair again)?", dropped)
    bench.session.paired = False


@then("the device shows the project name")
def _project_name(bench: Any) -> None:
    """The connected project's name is shown."""
    name = str(bench.session.ensure_project()["name"])
    status_or_operator(bench, f"Does the device show the project name {name!r}?",
                       lambda st: (st.get("project") or {}).get("name") == name)


@then(parsers.parse('the device shows the project name "{name}" within {seconds:d} seconds'))
def _project_renamed(bench: Any, name: str, seconds: int) -> None:
    """A project renamed in the cloud is shown under its new name."""
    status_or_operator(bench, f"Does the device show the project name {name!r}?",
                       lambda st: (st.get("project") or {}).get("name") == name, timeout=seconds)


@then(parsers.parse("the device shows {count:d} files remaining"))
def _remaining(bench: Any, count: int) -> None:
    """Remaining file count in the queue."""
    status_or_operator(bench, f"Does the device show {count} files remaining?",
                       lambda st: (st.get("queue") or {}).get("remaining_count") == count, timeout=60)


@then("the device shows the total remaining size of the captured files")
def _remaining_size(bench: Any) -> None:
    """Remaining bytes equal the sum of the captured files' sizes."""
    total = sum(c.size for c in bench.state.captures)
    status_or_operator(bench, f"Does the device show {total / 1e6:.1f} MB remaining?",
                       lambda st: (st.get("queue") or {}).get("remaining_bytes") == total)


@then("the device shows the current file's upload progress")
def _progress(bench: Any) -> None:
    """The file being uploaded is shown with its size and a progress above zero."""
    name = bench.state.captures[-1].name

    def moving(st: dict[str, Any]) -> bool:
        cur = st.get("current") or {}
        if cur.get("name") == name and bool(cur.get("size")) and int(cur.get("bytes_done") or 0) > 0:
            return True
        if any(r.get("completed_at") for r in bench.cloud.ledger() if r.get("name") == name):
            # the upload is over: no later status can show its progress any more
            raise DeviceFailure(f"{name} finished uploading and the device never showed its progress")
        return False
    status_or_operator(bench, "Does the device show the current file's upload progress?", moving, timeout=120)


@then("the device shows the completed, queued and failed uploads")
def _results(bench: Any) -> None:
    """Completed and failed (or quarantined) uploads are listed with their states."""
    def shown(st: dict[str, Any]) -> bool:
        q = st.get("queue") or {}
        return "completed" in q and "queued" in q and (int(q.get("failed") or 0) + int(q.get("quarantined") or 0)) >= 1
    status_or_operator(bench, "Does the device list completed, queued and failed uploads?", shown, timeout=60)


@then(parsers.parse('the device shows the network as "{state}" within {seconds:d} seconds'))
def _network_state(bench: Any, state: str, seconds: int) -> None:
    """Network status: "down" = offline/health down, "up" = online."""
    def shown(st: dict[str, Any]) -> bool:
        net = st.get("network") or {}
        if state == "down":
            return net.get("online") is False or net.get("health") == "down"
        return net.get("online") is True and net.get("health") != "down"
    status_or_operator(bench, f"Does the device show its network as {state}?", shown, timeout=seconds)


@then("the device shows its connection type, speed and health")
def _network_details(bench: Any) -> None:
    """Connection type, throughput and health are present."""
    def shown(st: dict[str, Any]) -> bool:
        net = st.get("network") or {}
        return bool(net.get("type")) and "throughput_bps" in net and net.get("health") in {"good", "degraded", "down"}
    status_or_operator(bench, "Does the device show connection type, speed and health?", shown)


@then(parsers.parse('the device shows the cloud status "{state}" within {seconds:d} seconds'))
def _cloud_status(bench: Any, state: str, seconds: int) -> None:
    """The device reflects a cloud-side state (paused, online)."""
    status_or_operator(bench, f"Does the device show the cloud status {state!r}?",
                       lambda st: st.get("cloud_status") == state, timeout=seconds)


@then(parsers.parse("the device shows itself as unpaired within {seconds:d} seconds"))
def _unpaired(bench: Any, seconds: int) -> None:
    """After logout or removal the device goes back to pairing."""
    status_or_operator(
        bench, "Does the device show itself as unpaired (asking to pair again)?",
        lambda st: (st.get("pairing") or {}).get("state") in
        {"unpaired", "requesting_code", "showing_code", "repair_needed", "expired"}
        or (st.get("token") or {}).get("state") in {"none", "repair_needed"}, timeout=seconds)
    bench.session.paired = False


@then("the device showed no user alert about authorization")
def _no_alert(bench: Any) -> None:
    """Token refreshes were silent: never repair_needed, never an auth error (user_alerts == 0)."""
    st = device_status(bench)
    if not bench.has_status:
        if not bench.prompt.confirm("Did the device run without any sign-in/authorization alert?"):
            raise DeviceFailure("operator saw an authorization alert")
        return
    alerts = int(bench.state.notes.get("auth_alerts", 0))
    if (st.get("token") or {}).get("state") == "repair_needed" or (st.get("pairing") or {}).get("state") == "repair_needed":
        alerts += 1
    assert bench.measure("C2C-NET-02", "user_alerts", alerts), f"{alerts} authorization alert(s) shown to the user"


@then("the captured files are still in the device's local storage")
def _local_storage(bench: Any) -> None:
    """Uploaded files remain in user-accessible storage."""
    missing = [c.name for c in bench.state.captures if not Path(c.path).exists()]
    if missing and not bench.has_status:
        if not bench.prompt.confirm("Are the recorded files still on the device's local storage?"):
            raise DeviceFailure("operator: files not kept in local storage")
        return
    assert not missing, f"files removed from local storage after upload: {missing}"



# --- declared and operator items ----------------------------------------------------------------
@then(parsers.parse('the profile declares "{item}" with evidence'))
def _declared(bench: Any, item: str) -> None:
    """A declared item passes on the profile's evidence; otherwise an operator must confirm."""
    evidence = bench.profile.declared.get(item)
    if evidence:
        bench.state.notes.setdefault("declared", {})[item] = evidence
        return
    title = bench.session.checklist[item].title
    if not bench.prompt.confirm(f"{item}: {title}. Does the device meet it?"):
        raise DeviceFailure(f"{item}: operator says the device does not meet it")


@then(parsers.parse('the operator confirms "{question}"'))
def _operator_confirms(bench: Any, question: str) -> None:
    """An operator-verified requirement: asked when interactive, verdict "operator" otherwise."""
    if not bench.prompt.confirm(question):
        raise DeviceFailure(f"operator says no: {question}")


__all__ = ["hold_for", "pair"]

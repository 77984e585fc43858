"""Steps about what the device shows, each checked against the cloud emulator (the oracle).

Pairing state, project name, remaining files and bytes, progress, upload results, network and
cloud status, authorization alerts, local storage: read through the Device protocol's status(),
or asked of the operator when the device has no status.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from pytest_bdd import given, parsers, then

from harness.bdd.bench import Bench
from harness.bdd.state import AlertWatch
from harness.bdd.steps.common import device_status, operator_judges, status_or_operator, wait_until
from harness.bdd.steps.status_oracle import (
    Remaining,
    RemainingSampler,
    counter_mismatches,
    one_part,
    remaining,
    state_mismatches,
)
from harness.certify.throughput import part_upload_rate
from harness.errors import BenchFailure, DeviceFailure
from harness.items.manual import Question

NETWORK_STATES = ("online", "offline", "online but degraded", "nothing shown")
"""What a person may report of the device's network indicator (the bench accepts online or offline)."""


@then("the device does not show itself as paired")
def _not_paired(bench: Bench) -> None:
    """After a cancel the device is not paired."""
    status_or_operator(bench, "Does the device show itself as NOT paired?",
                       lambda st: (st.get("pairing") or {}).get("state") not in {"paired", "approved"})


@then("the device shows itself as not paired and holding no token")
def _unpaired_no_token(bench: Bench) -> None:
    """After a cancel that followed the approval: not paired, and no token kept (token state none)."""
    def dropped(st: dict[str, Any]) -> bool:
        token = (st.get("token") or {}).get("state", "none")
        return (st.get("pairing") or {}).get("state") not in {"paired", "approved"} and token not in {"valid", "refreshing"}
    status_or_operator(bench, "Does the device show itself as NOT paired (no project, asking to pair again)?", dropped)
    bench.session.paired = False


@then("the device shows the project name")
def _project_name(bench: Bench) -> None:
    """The shown project name is the one the emulator holds now (measured: time to show it)."""
    _show_project(bench, 60)


@then(parsers.parse('the device shows the project name "{name}" within {seconds:d} seconds'))
def _project_renamed(bench: Bench, name: str, seconds: int) -> None:
    """After a rename in the cloud the device shows the emulator's new name within the limit."""
    shown = _show_project(bench, seconds)
    assert shown == name, f"the emulator holds {shown!r}, the scenario renamed the project to {name!r}"


def _show_project(bench: Bench, seconds: int) -> str:
    """Wait until the device shows the emulator's current project name; measure how long it took."""
    from harness.bdd.steps.workflow_oracle_steps import emulator_project

    project_id = str(bench.session.ensure_project()["id"])
    name = str(emulator_project(bench, project_id)["name"])
    if not bench.has_status:
        status_or_operator(bench, f"Does the device show the project name {name!r}?", lambda st: False)
        return name
    start = time.monotonic()

    def shown() -> bool:
        current = str(emulator_project(bench, project_id)["name"])  # the oracle at this moment
        return (device_status(bench).get("project") or {}).get("name") == current
    try:
        wait_until(shown, seconds, f"the device to show the project name {name!r}")
    finally:
        for item in ("C2C-PROJ-01", "C2C-QA-03"):
            bench.measure(item, "project_name_show_s", round(time.monotonic() - start, 2))
    return name


@then(parsers.parse("the device shows {count:d} files remaining"))
def _remaining(bench: Bench, count: int) -> None:
    """Remaining file count against the cloud's (captures not complete there), each device
    sample bracketed by oracle reads; measured: time to agree, and the worst disagreement."""
    if not bench.has_status:
        operator_judges(bench, Question("How many files does the device show as remaining?", kind="value",
                                        unit="files", low=count, high=count))
        return
    sampler = _remaining_sampler(bench)
    oracle = sampler.read_oracle()
    assert oracle.count == count, f"the cloud says {oracle.count} captured file(s) remain, the scenario expects {count}"
    start = time.monotonic()
    try:
        wait_until(lambda: sampler.sample(record=False)[0] == 0, 60, f"the device to show {oracle.count} files remaining")
    finally:
        waited = round(time.monotonic() - start, 2)
        shown_in_time = all([bench.measure(item, "remaining_count_show_s", waited) for item in ("C2C-STAT-01", "C2C-UPL-02")])
    assert shown_in_time, f"the device took {waited} s to show the {oracle.count} files the cloud has not got"
    sampler.sample()
    _measure_remaining(bench, sampler)


@then("the device shows the total remaining size of the captured files")
def _remaining_size(bench: Bench) -> None:
    """Remaining bytes against the cloud's unstored bytes of the captures (bracketed samples)."""
    total = sum(c.size for c in bench.state.captures)
    if not bench.has_status:
        megabytes = total / 1e6  # a display rounds: within 5 % or 0.1 MB
        operator_judges(bench, Question("How many MB does the device show as remaining?", kind="value", unit="MB",
                                        low=max(0.0, min(megabytes * 0.95, megabytes - 0.1)),
                                        high=max(megabytes * 1.05, megabytes + 0.1)))
        return
    sampler = _remaining_sampler(bench)
    wait_until(lambda: sampler.sample(record=False)[1] == 0, 60, "the device to show the remaining size the cloud expects")
    sampler.sample()
    _measure_remaining(bench, sampler)


@then("the device's remaining files and size follow the cloud until the files arrive")
def _remaining_follows(bench: Bench) -> None:
    """While the files upload, every status sample agrees with the cloud (a stale or lying
    counter shows files or bytes the cloud already has); sampled until the cloud has them all."""
    if not bench.has_status:
        status_or_operator(bench, "Did the remaining count and size go down as files uploaded?", lambda st: False)
        return
    sampler = _remaining_sampler(bench)
    deadline = time.monotonic() + 120
    done_at: float | None = None
    while time.monotonic() < deadline:
        sampler.sample()
        if done_at is None and sampler.read_oracle().count == 0:
            done_at = time.monotonic()
        if done_at is not None and time.monotonic() - done_at >= FOLLOW_AFTER_S:
            break  # a device that still shows files the cloud has had for seconds is stale
    _measure_remaining(bench, sampler)


FOLLOW_AFTER_S = 3.0  # samples after the cloud has every file: beyond the 1 s lag a device may have


def _remaining_sampler(bench: Bench) -> RemainingSampler:
    """One sampler per scenario (its oracle history spans the scenario's status steps)."""
    sampler = bench.state.remaining_sampler
    if sampler is None:
        def oracle() -> Remaining:
            return remaining(bench.state.captures, bench.cloud.ledger(bench.cloud_device_id()))
        sampler = RemainingSampler(oracle, lambda: device_status(bench))
        bench.state.remaining_sampler = sampler
    return sampler


def _measure_remaining(bench: Bench, sampler: RemainingSampler) -> None:
    part = one_part(bench.state.captures, bench.cloud.ledger(bench.cloud_device_id()))
    ok = all([bench.measure(item, "remaining_count_error", sampler.count_error, samples=sampler.samples)
              for item in ("C2C-STAT-01", "C2C-UPL-02")])
    ok = bench.measure("C2C-STAT-02", "remaining_bytes_error", sampler.bytes_error, part_size=part,
                       samples=sampler.samples) and ok
    assert ok, f"the device's remaining count/size disagree with the cloud: {sampler.worst}"


@then("the device shows the current file's upload progress")
def _progress(bench: Bench) -> None:
    """The file being uploaded is shown with its size and a progress above zero, and the bytes
    shown done are not behind what the cloud had already stored (read just before the sample)
    by more than one part (measured: progress_behind_bytes, progress_size_error)."""
    cap = bench.state.captures[-1]
    name = cap.name
    if not bench.has_status:
        status_or_operator(bench, "Does the device show the current file's upload progress?", lambda st: False)
        return
    seen: dict[str, Any] = {}

    def stored() -> tuple[int, dict[str, Any] | None]:
        rows = [r for r in bench.cloud.ledger(bench.cloud_device_id()) if r.get("name") == name]
        row = rows[-1] if rows else None
        return (int(row.get("bytes_stored") or 0) if row else 0), row

    def moving() -> bool:
        before, row = stored()
        cur = device_status(bench).get("current") or {}
        if cur.get("name") == name and bool(cur.get("size")) and int(cur.get("bytes_done") or 0) > 0:
            seen.update(cur=cur, stored=before, row=row)
            return True
        if row is not None and row.get("completed_at"):
            # the upload is over: no later status can show its progress any more
            raise DeviceFailure(f"{name} finished uploading and the device never showed its progress")
        return False
    wait_until(moving, 120, "the device to show the current file's upload progress")
    cur, row = seen["cur"], seen["row"] or {}
    part = math.ceil(cap.size / max(1, int(row.get("parts_expected") or 1)))
    behind = max(0, int(seen["stored"]) - int(cur.get("bytes_done") or 0))
    ok = bench.measure("C2C-STAT-03", "progress_behind_bytes", behind, part_size=part,
                       device_bytes=int(cur.get("bytes_done") or 0), cloud_stored=int(seen["stored"]))
    ok = bench.measure("C2C-STAT-03", "progress_size_error", abs(int(cur.get("size") or 0) - cap.size)) and ok
    assert ok, f"progress shown {cur} against {seen['stored']} bytes stored in the cloud of {cap.size}"


@then("the device shows the completed, queued and failed uploads")
def _results(bench: Bench) -> None:
    """Every capture is listed with the state the cloud implies (delivered = done, refused
    damaged media = failed/quarantined) and the counters cover them (measured)."""
    if not bench.has_status:
        status_or_operator(bench, "Does the device list completed, queued and failed uploads?", lambda st: False)
        return
    found: dict[str, list[str]] = {}

    def agree() -> bool:
        st = device_status(bench)
        q = st.get("queue") or {}
        outcomes = {f.name: f.outcome for f in bench.ledger(drained=True).files}
        found["states"] = state_mismatches(outcomes, st.get("files") or [])
        found["counters"] = counter_mismatches(q, outcomes) + [f"no {k!r} counter" for k in ("completed", "queued", "failed")
                                                               if k not in q]
        return not found["states"] and not found["counters"]
    with contextlib.suppress(DeviceFailure):
        wait_until(agree, 60, "the device to list each upload as the cloud saw it")
    ok = all([bench.measure(item, "states_wrong", len(found.get("states", [])))
              for item in ("C2C-STAT-04", "C2C-UPL-02")])
    ok = bench.measure("C2C-STAT-04", "counters_wrong", len(found.get("counters", []))) and ok
    assert ok, f"the device's upload list disagrees with the cloud: {found}"


@then(parsers.parse('the device shows the network as "{state}" within {seconds:d} seconds'))
def _network_state(bench: Bench, state: str, seconds: int) -> None:
    """Network status: "down" = offline/health down, "up" = online (measured: time to show)."""
    def shown(st: dict[str, Any]) -> bool:
        net = st.get("network") or {}
        if state == "down":
            return net.get("online") is False or net.get("health") == "down"
        return net.get("online") is True and net.get("health") != "down"
    if not bench.has_status:
        operator_judges(bench, Question("What does the device show as its network state?", kind="choice",
                                        choices=NETWORK_STATES, accept=("offline",) if state == "down" else ("online",)))
        return
    start = time.monotonic()
    try:
        status_or_operator(bench, f"Does the device show its network as {state}?", shown, timeout=seconds)
    finally:
        bench.measure("C2C-NET-01", f"link_{'down' if state == 'down' else 'up'}_show_s",
                      round(time.monotonic() - start, 2), deadline_s=seconds)


NETWORK_TYPES = frozenset({"ethernet", "wifi", "cellular", "unknown"})


@then("the device shows its connection type, speed and health")
def _network_details(bench: Bench) -> None:
    """Type from the contract's set, health not "down" on a working link, and the speed shown
    while a capture uploads (median of the samples) within a factor of the rate the cloud
    measured over the upload's span (NETW-04)."""
    def present(st: dict[str, Any]) -> bool:
        net = st.get("network") or {}
        return bool(net.get("type")) and "throughput_bps" in net and net.get("health") in {"good", "degraded", "down"}
    if not bench.has_status:
        status_or_operator(bench, "Does the device show connection type, speed and health?", present)
        return
    assert bench.state.captures, "the scenario captured nothing: no upload whose speed could be compared"
    names = {c.name for c in bench.state.captures}
    shown: list[float] = []
    wrong: list[str] = []

    def progress() -> tuple[bool, bool]:
        rows = [r for r in bench.cloud.ledger(bench.cloud_device_id()) if r.get("name") in names]
        started = any(int(r.get("put_attempts") or 0) > 0 for r in rows)
        return started, len(rows) >= len(names) and all(r.get("completed_at") for r in rows)
    deadline = time.monotonic() + 300
    done = False
    while time.monotonic() < deadline and not done:
        started, done = progress()
        net = device_status(bench).get("network") or {}
        if not present({"network": net}) or net.get("type") not in NETWORK_TYPES or net.get("health") == "down":
            wrong.append(f"type={net.get('type')!r} health={net.get('health')!r}")
        if started and not done:
            shown.append(float(net.get("throughput_bps") or 0))
        time.sleep(0.2)
    assert done, "the capture never completed: no upload speed to compare"
    if len(shown) < 5:
        raise BenchFailure(f"only {len(shown)} status sample(s) while the file uploaded: the upload was too short to judge")
    assets = {str(r["asset_id"]) for r in bench.cloud.ledger(bench.cloud_device_id()) if r.get("name") in names}
    rate = part_upload_rate([r for r in bench.journal() if any(a in str(r.get("path")) for a in assets)])
    # bytes over the upload's whole span (first part begun .. last part done): what a device
    # averaging over a window sees; the busy-time rate overstates a link that delivers in bursts
    cloud_bps = rate.nbytes * 8 / rate.span_s if rate.span_s > 0 else 0.0
    assert cloud_bps > 0, "the cloud measured no part upload"
    device_bps = statistics.median(shown)
    ratio = round(device_bps / cloud_bps, 3)
    # measured, not asserted: a wrong speed or field fails NETW-04 only, not NET-01 beside it
    bench.measure("C2C-NETW-04", "throughput_ratio", ratio, device_bps=round(device_bps),
                  cloud_bps=round(cloud_bps), samples=len(shown))
    bench.measure("C2C-NETW-04", "fields_wrong", len(wrong))


@then(parsers.parse('the device shows the cloud status "{state}" within {seconds:d} seconds'))
def _cloud_status(bench: Bench, state: str, seconds: int) -> None:
    """The device reflects a cloud-side state (paused, online)."""
    status_or_operator(bench, f"Does the device show the cloud status {state!r}?",
                       lambda st: st.get("cloud_status") == state, timeout=seconds)


@then(parsers.parse("the device shows itself as unpaired within {seconds:d} seconds"))
def _unpaired(bench: Bench, seconds: int) -> None:
    """After logout or removal the device goes back to pairing."""
    status_or_operator(
        bench, "Does the device show itself as unpaired (asking to pair again)?",
        lambda st: (st.get("pairing") or {}).get("state") in
        {"unpaired", "requesting_code", "showing_code", "repair_needed", "expired"}
        or (st.get("token") or {}).get("state") in {"none", "repair_needed"}, timeout=seconds)
    bench.session.paired = False


ALERT_WATCH_MAX_S = 900.0


@given("the device's status is watched for user alerts")
def _watch_alerts(bench: Bench) -> None:
    """Sample the device's status for the whole scenario (not one snapshot at the end): every
    token/pairing state that asks the user to act is an alert."""
    if not bench.has_status:
        return
    watch = AlertWatch(stop=threading.Event())

    def sample() -> None:
        deadline = time.monotonic() + ALERT_WATCH_MAX_S  # a scenario that failed early never stops it
        while not watch.stop.wait(0.25) and time.monotonic() < deadline:
            st = bench.device.status() or {}
            if not st:
                continue
            watch.samples += 1
            token = (st.get("token") or {}).get("state")
            pairing = (st.get("pairing") or {}).get("state")
            if token == "repair_needed" or pairing in {"repair_needed", "error", "expired"}:
                watch.alerts.append({"token": token, "pairing": pairing, "at": time.time()})
    watch.thread = threading.Thread(target=sample, name="alert-watch", daemon=True)
    watch.thread.start()
    bench.state.alert_watch = watch


@then("the device showed no user alert about authorization")
def _no_alert(bench: Bench) -> None:
    """Token refreshes were silent: never repair_needed, never an auth error, over every status
    sample of the scenario (user_alerts == 0)."""
    if not bench.has_status and bench.profile.pairing.source == "console":
        _no_alert_on_console(bench)
        return
    if not bench.has_status:
        if not bench.prompt.confirm("Did the device run without any sign-in/authorization alert?"):
            raise DeviceFailure("operator saw an authorization alert")
        return
    watch = bench.state.alert_watch
    if watch is None:
        raise BenchFailure("the device's status was not watched during the scenario")
    watch.stop.set()
    if watch.thread is not None:
        watch.thread.join(timeout=5)
    if watch.samples < 10:
        raise BenchFailure(f"only {watch.samples} status sample(s) taken: the scenario was not watched")
    alerts = len(watch.alerts)
    ok = bench.measure("C2C-NET-02", "user_alerts", alerts, samples=watch.samples)
    assert ok, f"{alerts} status sample(s) showed an authorization alert: {watch.alerts[:3]}"


def _no_alert_on_console(bench: Bench) -> None:
    """A device whose only screen is its console can ask the user to act on its authorization in
    one way only: a new pairing code, which it must request from the cloud. The journal tells,
    no person needed: every POST /v2/auth/device/code after the pairing is an alert."""
    after = bench.state.paired_journal_head
    codes = sum(1 for r in bench.journal() if str(r.get("path") or "").split("?", 1)[0].endswith("/v2/auth/device/code")
                and int(r.get("id") or 0) > after)
    ok = bench.measure("C2C-NET-02", "user_alerts", codes, samples=0)
    assert ok, f"user_alerts={codes} (limit 0): the device asked for {codes} new pairing code(s) while refreshing"


@then("the captured files are still in the device's local storage")
def _local_storage(bench: Bench) -> None:
    """Uploaded files remain in user-accessible storage."""
    missing = [c.name for c in bench.state.captures if not Path(c.path).exists()]
    if missing and not bench.has_status:
        if not bench.prompt.confirm("Are the recorded files still on the device's local storage?"):
            raise DeviceFailure("operator: files not kept in local storage")
        return
    assert not missing, f"files removed from local storage after upload: {missing}"

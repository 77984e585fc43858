"""Then-steps the cloud decides: the delivery ledger, the request journal, measurements.

The oracle is what the emulator saw (Cloud.journal/ledger/plain_http_attempts), checked
against the capture manifest: never the device's own claims.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_bdd import parsers, then

from harness.bdd.steps.cloud_steps import refreshes
from harness.bdd.steps.common import control_or_operator, device_status, hold_for, wait_until
from harness.certify.ledger import Ledger
from harness.certify.throughput import part_upload_rate
from harness.errors import DeliveryFailure, DeviceTimeout, ProtocolViolation

SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


GAVE_UP_GRACE_S = 10.0
# Outcomes no later upload can undo.
FINAL_FAILURES = frozenset({"corrupt", "duplicated", "leaked"})


def _settle(bench: Any, seconds: int, done: Callable[[Ledger], bool], what: str) -> Ledger:
    """Poll the ledger until `done`, then classify with the deadline reached (drained).

    Stops early when the device has shown an undelivered capture as "failed" (it gave up:
    only an operator retry moves it) for GAVE_UP_GRACE_S, instead of waiting out the deadline.
    """
    gave_up_since: list[float] = []

    def settled() -> bool:
        lg = bench.ledger(drained=False)
        if done(lg) or any(f.outcome in FINAL_FAILURES for f in lg.files):
            return True  # a corrupt, duplicated or leaked file stays so: same verdict, no wait
        if any(f.device_state in {"failed", "cancelled"} and f.outcome not in {"intact", "withheld"} for f in lg.files):
            gave_up_since[:] = gave_up_since or [time.monotonic()]
            return time.monotonic() - gave_up_since[0] >= GAVE_UP_GRACE_S
        gave_up_since.clear()
        return False
    try:
        wait_until(settled, seconds, what, interval=0.5)
    except DeviceTimeout:
        pass
    return bench.ledger(drained=True)


def _assert_delivered(ledger: Ledger, names: set[str] | None = None) -> None:
    problems = [p for p in ledger.problems() if names is None or p.split(":", 1)[0] in names]
    if problems:
        raise DeliveryFailure("delivery ledger: " + "; ".join(problems))


@then(parsers.parse("every captured file arrives intact within {seconds:d} seconds"))
def _all_intact(bench: Any, seconds: int) -> None:
    """Every captured file is in the cloud exactly once with its SHA-256 (none lost, duplicated, corrupt)."""
    ledger = _settle(bench, seconds, lambda lg: all(f.outcome in {"intact", "withheld"} for f in lg.files),
                     "every captured file to arrive")
    _assert_delivered(ledger)
    not_intact = [f.name for f in ledger.files if f.outcome not in {"intact", "withheld"}]
    if not_intact:
        raise DeliveryFailure(f"not delivered intact: {not_intact}")


@then(parsers.parse("every intact captured file arrives within {seconds:d} seconds"))
def _intact_ones(bench: Any, seconds: int) -> None:
    """Every undamaged capture arrives intact; intentionally damaged ones may be rejected."""
    good = {c.name for c in bench.state.captures if not c.corruption}
    ledger = _settle(bench, seconds, lambda lg: all(f.outcome == "intact" for f in lg.files if f.name in good),
                     "every intact file to arrive")
    _assert_delivered(ledger, good)


@then(parsers.parse("the files captured after the pause arrive intact within {seconds:d} seconds"))
def _after_pause(bench: Any, seconds: int) -> None:
    """Files captured after resume are delivered."""
    after = {c.name for c in bench.state.captures if c.paused is False}
    ledger = _settle(bench, seconds, lambda lg: all(f.outcome == "intact" for f in lg.files if f.name in after),
                     "the files captured after the pause")
    _assert_delivered(ledger, after)


@then("the files captured while paused are withheld")
def _withheld(bench: Any) -> None:
    """Media captured inside the pause window never reaches the cloud (none leaked)."""
    ledger = bench.ledger(drained=True)
    leaked = [f.name for f in ledger.files if f.outcome == "leaked"]
    if leaked:
        raise DeliveryFailure(f"captured while paused but uploaded: {leaked}")
    assert ledger.by_outcome("withheld"), "no file was captured inside the pause window"


@then(parsers.parse("only the first captured file arrives within {seconds:d} seconds"))
def _only_first(bench: Any, seconds: int) -> None:
    """Manual mode: the selected file arrives, the others stay on the device."""
    first = bench.state.captures[0].name
    ledger = _settle(bench, seconds, lambda lg: lg.files[0].outcome == "intact", f"{first} to arrive")
    assert ledger.files[0].outcome == "intact", f"{first}: {ledger.files[0].outcome}"
    others = [f.name for f in ledger.files[1:] if f.assets]
    assert not others, f"manual mode uploaded unselected files: {others}"


@then("every HTTPS request carried a semver x-client-version header")
def _version_header(bench: Any) -> None:
    """x-client-version on every API call, a semantic version (S3 part PUTs excluded)."""
    rows = [r for r in bench.journal() if r.get("scheme", "https") == "https" and r.get("method") != "PUT"]
    assert rows, "the cloud saw no API request in this scenario"
    bad = [f"{r.get('method')} {r.get('path')}: {r.get('client_version')!r}" for r in rows
           if not SEMVER.match(str(r.get("client_version") or ""))]
    if bad:
        raise ProtocolViolation(f"{len(bad)} request(s) without a semver x-client-version: {bad[:5]}")


@then("no request was made over plain HTTP")
def _no_plain_http(bench: Any) -> None:
    """The plain-HTTP listener recorded no attempt from the device."""
    attempts = bench.cloud.plain_http_attempts()
    mine = attempts[int(bench.state.notes.get("plain_http_baseline", 0)):]
    if mine:
        raise ProtocolViolation(f"{len(mine)} request(s) over plain HTTP, e.g. {mine[0].get('method')} {mine[0].get('path')}")


@then("the corrupted file did not block the queue")
def _not_blocked(bench: Any) -> None:
    """Files captured after the damaged one were delivered (checked by the ledger)."""
    ledger = bench.ledger(drained=True)
    bad = next((i for i, c in enumerate(bench.state.captures) if c.corruption), None)
    assert bad is not None, "no corrupted file in this scenario"
    after = [f for f in ledger.files[bad + 1:] if not f.corruption]
    blocked = [f.name for f in after if f.outcome != "intact"]
    assert not blocked, f"queue blocked behind the corrupted file: {blocked}"


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """Largest number of [start, end] intervals open at the same instant."""
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], -e[1]))
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


@then("the cloud saw part uploads in parallel")
def _parallel(bench: Any) -> None:
    """Concurrent uploads: most files in flight at once, from each asset's create-to-complete span in the cloud."""
    names = {c.name for c in bench.state.captures}
    rows = [r for r in bench.cloud.ledger() if r.get("name") in names and r.get("created_at") and r.get("completed_at")]
    n = max_overlap([(float(r["created_at"]), float(r["completed_at"])) for r in rows])
    # measured per item: OPT-05 (optional) fails on its own without failing QUE-01
    bench.measure("C2C-QUE-01", "max_parallel_puts", n)
    bench.measure("C2C-OPT-05", "max_parallel_puts", n)


S3_PART = re.compile(r"/s3/parts/([^/?]+)/(\d+)/")


def _await_device_idle(bench: Any, seconds: float = 60) -> None:
    """Until the device reports nothing uploading (a device without status counts as idle)."""
    def idle() -> bool:
        queue = device_status(bench).get("queue") or {}
        return not queue.get("uploading") and not queue.get("remaining_count")
    try:
        wait_until(idle, seconds, "the device to stop sending", interval=0.5)
    except DeviceTimeout:
        pass


def _bytes_to_stored_parts(bench: Any, assets: set[str]) -> int:
    """Bytes the cloud received, this scenario, for parts of `assets` it had already stored."""
    stored: set[tuple[str, str]] = set()
    total = 0
    for r in sorted(bench.journal(), key=lambda r: int(r.get("id") or 0)):
        m = S3_PART.search(str(r.get("path") or ""))
        if r.get("method") != "PUT" or not m or m.group(1) not in assets:
            continue
        key = (m.group(1), m.group(2))
        if key in stored:
            total += int(r.get("bytes_in") or 0)
        elif r.get("status") == 200:
            stored.add(key)
    return total


@then("the bytes re-sent per power cut are at most one part")
def _resent(bench: Any) -> None:
    """Resume from the last part: duplicate bytes per power cut <= one part (measured)."""
    ledger = bench.ledger(drained=True)
    cuts = max(1, sum(1 for w in bench.timeline.windows() if w["layer"] == "power" and w["start"] >= bench.state.started_at))
    names = {c.name for c in bench.state.captures}
    rows = [r for r in bench.cloud.ledger() if r.get("name") in names]
    part = max((int(r.get("filesize") or 0) / max(1, int(r.get("parts_expected") or 1)) for r in rows), default=0)
    # re-sent = bytes sent again to a part the cloud had already stored (complete or cut short:
    # the asset may complete while a device that restarted from zero is still re-sending)
    # + bytes of assets abandoned and created again
    _await_device_idle(bench)
    resent = _bytes_to_stored_parts(bench, {str(r.get("asset_id")) for r in rows})
    rows = [r for r in bench.cloud.ledger() if r.get("name") in names]
    for name in names:
        mine = [r for r in rows if r.get("name") == name]
        if any(r.get("completed_at") for r in mine):
            resent += sum(int(r.get("bytes_received") or 0) for r in mine if not r.get("completed_at"))
    resent = resent / cuts
    assert ledger.files, "nothing captured"
    # measured, not asserted: a full re-upload fails C2C-CTL-01 only, the queue items still pass
    bench.measure("C2C-CTL-01", "resent_bytes_per_cut", resent, part_size=math.ceil(part))


@then(parsers.parse("the measured upload throughput is at least {mbps:d} Mbps"))
def _throughput(bench: Any, mbps: int) -> None:
    """Accepted part-PUT bytes over the time a part PUT was in flight (harness/certify/throughput.py)."""
    rate = part_upload_rate(bench.journal())
    assert rate.parts, "no accepted part upload seen"
    value = round(rate.mbps, 2)
    passed = bench.measure("C2C-NETW-01", "upload_Mbps", value, part_bytes=rate.nbytes,
                           busy_s=round(rate.busy_s, 3), span_s=round(rate.span_s, 3), accepted_parts=rate.parts)
    assert passed, f"{value:.1f} Mbit/s < {mbps} Mbit/s: {rate.describe()}"


def _first_put_order(bench: Any) -> list[str]:
    """Capture names in the order their first part reached the cloud."""
    rows = bench.cloud.ledger()
    names = {c.name for c in bench.state.captures}
    mine = [r for r in rows if r.get("name") in names]
    return [str(r["name"]) for r in sorted(mine, key=lambda r: float(r.get("created_at") or 0))]


@then(parsers.parse('the "{ext}" files were uploaded before the other files'))
def _type_first(bench: Any, ext: str) -> None:
    """File-type prioritisation: every file of the type started before any other."""
    order = _first_put_order(bench)
    kinds = [n.lower().endswith(ext.lower()) for n in order]
    assert kinds == sorted(kinds, reverse=True), f"upload order {order} does not put {ext} first"


@then("the last captured file was uploaded first")
def _last_first(bench: Any) -> None:
    """Queue prioritisation: the reprioritised file started first."""
    order = _first_put_order(bench)
    assert order and order[0] == bench.state.captures[-1].name, f"upload order {order}"


CANCEL_SETTLE_S = 10.0


def _parts_received(bench: Any) -> int:
    """Part PUTs the cloud accepted (aborted or refused bodies are not received parts)."""
    return sum(1 for r in bench.journal() if r.get("method") == "PUT" and 200 <= int(r.get("status") or 0) < 300)


def _in_flight_drain_s(bench: Any, names: set[str]) -> float:
    """How long parts already on the wire at the cancel may take to land.

    A part body the device wrote before the cancel sits in the network's buffers and still
    reaches the cloud (it cannot be recalled); on a rate-limited link that is one part's
    transfer time. Parts the device starts after the cancel are what the check forbids.
    """
    mbps = bench.state.notes.get("upload_rate_mbps")
    if not mbps:
        return 2.0
    rows = [r for r in bench.cloud.ledger() if r.get("name") in names]
    part = max((int(r.get("filesize") or 0) / max(1, int(r.get("parts_expected") or 1)) for r in rows), default=0)
    return 2.0 + 1.3 * part * 8 / (float(mbps) * 1e6)


@then(parsers.parse("the cloud receives no more parts for the cancelled files within {seconds:d} seconds"))
def _no_more_parts(bench: Any, seconds: int) -> None:
    """After cancel, parts in flight may land until the device shows the uploads stopped;
    from then on no part is received for the rest of the window, and the file is not complete."""
    names = {c.name for c in bench.state.captures}
    started = time.monotonic()
    if bench.has_status:
        def stopped() -> bool:
            st = device_status(bench)
            mine = [f for f in st.get("files", []) if f.get("name") in names]
            return bool(mine) and all(f.get("state") != "uploading" for f in mine) \
                and (st.get("current") or {}).get("name") not in names
        wait_until(stopped, CANCEL_SETTLE_S, "the device to show the cancelled uploads stopped")
    hold_for(_in_flight_drain_s(bench, names))
    baseline = _parts_received(bench)

    def check() -> None:
        now = _parts_received(bench)
        assert now == baseline, f"{now - baseline} part(s) received after the cancel settled"
    hold_for(max(1.0, seconds - (time.monotonic() - started)), check, interval=1.0)
    ledger = bench.ledger(drained=False)
    assert any(f.outcome != "intact" for f in ledger.files), "the cancelled file completed anyway"


@then(parsers.parse("the cloud sees no more token polls from the device within {seconds:d} seconds"))
def _no_polls(bench: Any, seconds: int) -> None:
    """After a cancel the device stops polling /v2/auth/token (after one interval of grace)."""
    interval = 6

    def polls() -> int:
        return sum(1 for r in bench.journal() if str(r.get("path", "")).endswith("/v2/auth/token"))
    hold_for(interval)
    baseline = polls()

    def check() -> None:
        assert polls() == baseline, "the device kept polling for a token after the pairing was cancelled"
    hold_for(seconds - interval, check, interval=1.0)


@then(parsers.parse("the device shows a pairing code again within {seconds:d} seconds"))
def _code_again(bench: Any, seconds: int) -> None:
    """After expired_token / access_denied the device requests and shows a new code."""
    error = bench.state.notes.get("poll_error")
    first = bench.state.pairing_code
    if error == "access_denied" and first:
        bench.cloud.deny(first)
        bench.timeline.record("auth", "access_denied", "mark")
        if bench.has_status:
            wait_until(lambda: (device_status(bench).get("pairing") or {}).get("state") in {"denied", "error", "unpaired"},
                       30, "the device to show the denial")
        # after a denial the user starts pairing again (a new code, never the denied one)
        control_or_operator(bench, "start_pairing", "Start pairing again on the device. Done?")

    def new_code() -> str | None:
        code = bench.device.pairing_code(seconds)
        return code if (error == "slow_down" or code != first) else None
    code = wait_until(new_code, seconds, "a new pairing code")
    bench.state.pairing_code = code


@then("the device pairs once the code is approved")
def _pairs(bench: Any) -> None:
    """Approve the current code; the device gets tokens and appears in the project."""
    project = bench.session.ensure_project()
    bench.cloud.approve(str(bench.state.pairing_code), str(project["id"]))
    wait_until(lambda: bench.cloud_device() is not None, 60, "the device to pair")
    bench.session.paired = True


@then("the device requested no new pairing code")
def _no_new_code(bench: Any) -> None:
    """No POST /v2/auth/device/code during the scenario (no re-pairing)."""
    codes = [r for r in bench.journal() if str(r.get("path", "")).endswith("/v2/auth/device/code")]
    assert not codes, f"the device requested {len(codes)} new pairing code(s)"


# after a connected period of short-lived tokens, a device still at zero refreshes this much later never will
NO_REFRESH_GIVE_UP_S = 15.0


@then(parsers.re(r"the device refreshed its token at least (?P<count>\d+) times?$"))
def _refreshed(bench: Any, count: str) -> None:
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


@then(parsers.parse("the device kept real-time status with no gap over {limit:d} seconds"))
def _heartbeats(bench: Any, limit: int) -> None:
    """Heartbeats or socket beats with no gap over the limit, in cloud time (measured)."""
    beats = sorted(float(r["t"]) for r in bench.journal() if str(r.get("path", "")).endswith("/heartbeat")
                   or "websocket" in str(r.get("path", "")))
    sessions = bench.cloud.plain_http_attempts and getattr(bench.cloud, "websockets", None)
    if callable(sessions):
        for s in sessions():
            if s.get("last_heartbeat_at"):
                beats.append(float(s["last_heartbeat_at"]))
    assert beats, "no heartbeat or socket activity seen"
    gaps = [b - a for a, b in itertools.pairwise(beats)] or [0.0]
    assert bench.measure("C2C-SOCK-01", "heartbeat_gap_s", round(max(gaps), 1)), f"status gap {max(gaps):.0f} s"


@then(parsers.parse("the cloud sees the device's tokens revoked within {seconds:d} seconds"))
def _revoked(bench: Any, seconds: int) -> None:
    """Logout calls /v2/auth/revoke."""
    wait_until(lambda: any(str(r.get("path", "")).endswith("/v2/auth/revoke") for r in bench.journal()),
               seconds, "a call to /v2/auth/revoke")


@then("every uploaded name matches its captured name")
def _names(bench: Any) -> None:
    """Names with spaces/unicode/case arrive unchanged and distinct."""
    ledger = bench.ledger(drained=True)
    missing = [f.name for f in ledger.files if f.outcome != "intact"]
    assert not missing, f"names not found in the cloud as captured: {missing}"


@then("every file was uploaded to the paired project")
def _project(bench: Any) -> None:
    """After a rename, assets still land in the same project (device uses project_id)."""
    project_id = str(bench.session.ensure_project()["id"])
    names = {c.name for c in bench.state.captures}
    rows = [r for r in bench.cloud.assets(bench.cloud_device_id()) if r.get("name") in names]
    wrong = [r.get("name") for r in rows if r.get("project_id") not in (None, project_id)]
    assert rows and not wrong, f"assets outside project {project_id}: {wrong}"


def _probe(bench: Any, capture: Any) -> dict[str, Any]:
    """Probe the media the cloud stored: byte-identical to the capture when the ledger says intact.

    Returns {codecs, timecode, time_reference, bit_rate} from a full decode
    (harness.faults.media.validate) plus the container bit rate (PyAV).
    """
    from harness.errors import MediaError
    from harness.faults.media.validate import validate as validate_media

    result = validate_media(capture.path)
    if not result.ok:
        raise MediaError(f"{capture.name}: cannot probe: {result.error}")
    details = dict(result.details)
    codecs = [s.split(":", 1)[1] for s in details.get("streams", [])]
    if details.get("bits"):
        codecs.append(f"pcm_s{details['bits']}le")
    info: dict[str, Any] = {"codecs": codecs, "timecode": details.get("timecode"),
                            "time_reference": details.get("time_reference")}
    try:
        import av

        with av.open(str(capture.path)) as container:
            info["bit_rate"] = container.bit_rate or 0
    except Exception:
        info["bit_rate"] = 0
    return info


@then("the uploaded files keep the timecode they were recorded with")
def _timecode(bench: Any) -> None:
    """Delivered intact means the timecode in the file is the recorded one; checked by probe."""
    ledger = bench.ledger(drained=True)
    assert all(f.outcome == "intact" for f in ledger.files), "files not delivered intact"
    for cap in bench.state.captures:
        info = _probe(bench, cap)
        assert info.get("timecode") or info.get("time_reference") is not None, f"{cap.name}: no timecode"


@then(parsers.parse("the device uploads a proxy of it within {seconds:d} seconds"))
def _proxy_uploaded(bench: Any, seconds: int) -> None:
    """A second asset named after the hero file (its proxy) completes in the cloud."""
    hero = bench.state.captures[-1]
    stem = hero.name.rsplit(".", 1)[0]

    def proxy() -> dict[str, Any] | None:
        rows = [r for r in bench.cloud.ledger(bench.cloud_device_id())
                if str(r.get("name", "")).startswith(stem) and r.get("name") != hero.name and r.get("completed_at")]
        return rows[0] if rows else None
    bench.state.notes["proxy_row"] = wait_until(proxy, seconds, f"a proxy of {hero.name} in the cloud")


def _asset_bytes(bench: Any, row: dict[str, Any], scratch: Any) -> Any:
    """Download an asset the device made (needs the emulator's asset-content control call)."""
    from harness.errors import CloudError

    fetch = getattr(bench.cloud, "asset_content", None)
    if not callable(fetch):
        raise CloudError("the emulator offers no asset download; proxies made by the device cannot be probed")
    # the device chose the name: never let it pick a path (``../x``), keep only a tame extension
    suffix = "".join(c for c in Path(str(row["name"])).suffix if c.isalnum() or c == ".")[:10]
    return fetch(str(row["asset_id"]), scratch / f"{row['asset_id']}{suffix}")


@then("the uploaded proxy matches its hero file in filename, timecode and metadata")
def _proxy_match(bench: Any) -> None:
    """Proxy and hero share base name and timecode."""
    hero = bench.state.captures[-1]
    row = bench.state.notes["proxy_row"]
    proxy_path = _asset_bytes(bench, row, bench.scratch("proxy"))
    assert str(row["name"]).startswith(hero.name.rsplit(".", 1)[0]), "proxy name does not match the hero"
    proxy = type("P", (), {"path": proxy_path, "name": row["name"]})()
    assert _probe(bench, hero).get("timecode") == _probe(bench, proxy).get("timecode"), "timecodes differ"


@then("the uploaded proxy bitrate is between 1 and 12 Mbps")
def _proxy_bitrate(bench: Any) -> None:
    """LTE-optimised proxy: measured bitrate within 1..12 Mbit/s."""
    row = bench.state.notes["proxy_row"]
    proxy = type("P", (), {"path": _asset_bytes(bench, row, bench.scratch("proxy")), "name": row["name"]})()
    mbps = float(_probe(bench, proxy).get("bit_rate", 0)) / 1e6
    assert bench.measure("C2C-WF-05", "proxy_Mbps", round(mbps, 2)), f"proxy bitrate {mbps:.1f} Mbit/s"


@then("the uploaded media uses standard video and audio codecs")
def _codecs(bench: Any) -> None:
    """Codecs in the delivered files are standard (H.264/HEVC/ProRes, AAC/PCM)."""
    standard = {"h264", "hevc", "prores", "aac", "pcm_s16le", "pcm_s24le", "pcm_s32le"}
    for cap in bench.state.captures:
        codecs = set(_probe(bench, cap).get("codecs", []))
        assert codecs and codecs <= standard, f"{cap.name}: codecs {sorted(codecs)}"


@then(parsers.parse("the interceptor saw no completed request from the device within {seconds:d} seconds"))
def _interceptor(bench: Any, seconds: int) -> None:
    """The device refused the untrusted certificate: no request completed through the interceptor."""
    mitm = bench.state.notes.get("interceptor")
    assert mitm is not None, "no interceptor in place"

    def check() -> None:
        assert not mitm.requests_seen and not mitm.established_handshakes, \
            "the device completed a TLS handshake with an untrusted interceptor"
    hold_for(seconds, check, interval=1.0)
    if mitm.verdict() == "no-attempt":
        raise DeviceTimeout("the device made no connection attempt through the interceptor (inconclusive)")


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


def _since_conflict(bench: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The 409 fault the Given armed and the journal rows recorded after it was armed."""
    conflict = bench.state.notes.get("asset_conflict")
    assert conflict, "no 409 fault on asset creation was armed in this scenario"
    return conflict, bench.cloud.journal(since=int(conflict["since"]))


@then(parsers.re(r"the device backed off at least (?P<seconds>\d+(?:\.\d+)?) seconds? across the slow_down answers$"))
def _slow_down_backoff(bench: Any, seconds: str) -> None:
    """Every 409 slow_down was met and retried, and the retries were spread over `seconds` (not a tight loop)."""
    conflict, rows = _since_conflict(bench)
    answered, held = slow_down_backoff(rows)
    bench.timeline.record("cloud", "slow_down back-off", "mark", answers=answered, seconds=round(held, 3))
    assert answered >= int(conflict["count"]), (
        f"the device met {answered} of {conflict['count']} slow_down answers: it stopped creating the asset")
    assert held >= float(seconds), (
        f"the device retried {answered} slow_down answers within {held:.3f} s (< {seconds} s): no back-off")


@then("the device refreshed its token and replayed the asset creation without pairing again")
def _invalid_client_recovered(bench: Any) -> None:
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


def _grant(bench: Any) -> dict[str, Any]:
    grant = bench.state.notes.get("grant")
    assert grant, "no grant was issued to the device in this scenario (was the code approved?)"
    return grant


def _journal_path(row: dict[str, Any]) -> str:
    return str(row.get("path") or "").split("?", 1)[0]


@then(parsers.parse("the cloud sees the approved grant revoked within {seconds:d} seconds"))
def _grant_revoked(bench: Any, seconds: int) -> None:
    """The device that cancelled after approval calls /v2/auth/revoke, and the cloud accepts it."""
    grant = _grant(bench)

    def revoked() -> dict[str, Any] | None:
        return next((r for r in bench.cloud.journal(since=grant["issued_id"])
                     if _journal_path(r).endswith("/v2/auth/revoke") and r.get("status") == 200), None)
    row = wait_until(revoked, seconds, "the device to revoke the grant it was issued (POST /v2/auth/revoke)")
    grant["revoked_t"] = float(row["t"])


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
        t, mine = float(r.get("t") or 0), str(r.get("device_id")) == device_id
        what = f"{r.get('method')} {_journal_path(r)} -> {r.get('status')}"
        if t <= revoked_t:
            continue
        if mine and _journal_path(r).endswith("/v2/auth/token"):
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
def _grant_unused(bench: Any, seconds: int) -> None:
    """After the revoke the grant is dead to the device too: no heartbeat, asset call, refresh or
    socket beat with it for the window, and no status socket opened with it left open."""
    from harness.errors import DeviceFailure

    grant = _grant(bench)
    device_id = grant["device_id"]
    revoked_t = float(grant.get("revoked_t") or grant["issued_t"])
    sockets_of = getattr(bench.cloud, "websockets", None)

    def sockets() -> list[dict[str, Any]]:
        return sockets_of() if callable(sockets_of) else []

    def check() -> None:
        uses = grant_uses(bench.cloud.journal(since=grant["issued_id"]), bench.cloud.devices(), sockets(),
                          device_id, revoked_t)
        if uses:
            raise DeviceFailure("the device kept using the grant after cancelling the pairing: " + "; ".join(uses[:5]),
                                item="C2C-AUTH-03")
    hold_for(GRANT_GRACE_S)
    hold_for(seconds, check, interval=1.0)
    still_open = [s for s in sockets() if str(s.get("device_id")) == device_id and not s.get("closed_at")]
    if still_open:
        raise DeviceFailure(f"{len(still_open)} status socket(s) opened with the cancelled grant still open",
                            item="C2C-AUTH-03")

"""Steps that make media and have the device capture it (Media + Device.capture).

Every captured file becomes a manifest row in the scenario state (name, SHA-256, size,
capture time, intended corruption): the ground truth of the delivery ledger.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd import parsers, then, when

from harness.bdd.bench import Bench, Capture
from harness.bdd.steps.common import device_status, wait_until
from harness.certify.ledger import FileVerdict
from harness.errors import BenchFailure, DeviceFailure, MediaError
from harness.faults.media.fswatch import FolderWatch
from harness.faults.media.objects import (
    NO_CONTENT,
    OBJECTS,
    WATCH_FOLDER_ONLY,
    BadObject,
    Vanish,
    not_applicable,
    place,
)
from harness.items.verdicts import NOT_APPLICABLE_SKIP
from harness.protocols import GrowingMedia, LargeMedia, NamedMedia, WatchFolder

MB = 1024 * 1024
# Corruptions applied before capture (the file is damaged on the card) vs after (it vanishes
# or becomes unreadable once the device has seen it).
AFTER_CAPTURE = {"vanish", "unreadable", "permission_denied"}
HOW_ALIASES = {"unreadable": "permission_denied", "zero-length": "zero_length"}
# how long the bench waits for the device to open a bad file before it captures the good ones
# (it may skip a FIFO or a dangling symlink without opening it: then it had this long to list it)
TAKE_IN_S = 5.0
# a clip vanishes when the device opens it; a device that never opens it was not tested
VANISH_OPEN_S = 60.0
# device states that say "this file will not be uploaded" (with a reason: reported clearly)
GAVE_UP = frozenset({"quarantined", "failed", "cancelled", "rejected", "error", "skipped"})
CLAIMS_DONE = frozenset({"done", "completed", "uploaded"})


def _record(bench: Bench, entry: dict[str, Any], dest: Path, *, corruption: str | None = None) -> Capture:
    cap = Capture(
        name=dest.name, path=dest, sha256=entry.get("sha256"), size=int(entry.get("size") or 0),
        captured_at=time.time(), corruption=corruption, kind=str(entry.get("kind") or ""),
    )
    paused = bench.state.paused_now
    cap.paused = bool(paused) if paused is not None else None
    bench.state.captures.append(cap)
    return cap


def capture_entries(bench: Bench, entries: list[dict[str, Any]], *, corruption: str | None = None) -> list[Capture]:
    """Have the device record generated files; returns the manifest rows."""
    dests = bench.device.capture([Path(e["path"]) for e in entries])
    return [_record(bench, e, Path(d), corruption=corruption) for e, d in zip(entries, dests, strict=True)]


def capture_kind(bench: Bench, kind: str, count: int) -> list[Capture]:
    entries = bench.media.generate([kind], bench.scratch(), count=count)
    return capture_entries(bench, entries)


@when(parsers.re(r'(?P<count>\d+) "(?P<kind>[^"]+)" files? (?:is|are) captured$'))
def _capture_n(bench: Bench, count: str, kind: str) -> None:
    """Generate `count` media files of a kind (jpg, mov, wav, ...) and capture them one by one."""
    for _ in range(int(count)):
        capture_kind(bench, kind, 1)


def _elapsed(start: float, seconds: float) -> Callable[[], bool]:
    """A predicate for wait_until: `seconds` have passed since `start` (monotonic)."""
    return lambda: time.monotonic() - start >= seconds


@when(parsers.parse('{count:d} "{kind}" files are captured over {seconds:d} seconds'))
def _capture_spread(bench: Bench, count: int, kind: str, seconds: int) -> None:
    """Captures spread evenly over a period (the first at once), so uploads meet a link that changes
    during it (a roaming cut); 0 seconds captures them one after another."""
    start = time.monotonic()
    for n in range(count):
        at = n * seconds / max(count - 1, 1)
        wait_until(_elapsed(start, at), at + 5, "the next capture time")
        capture_kind(bench, kind, 1)


@when(parsers.parse('{count:d} "{kind}" files are captured at once'))
def _capture_burst(bench: Bench, count: int, kind: str) -> None:
    """A burst: all files land in the device's storage together."""
    capture_kind(bench, kind, count)


@when(parsers.parse("a large file of {mb:d} MB is captured"))
def _capture_large(bench: Bench, mb: int) -> None:
    """One large data file (several upload parts), for resume, progress and throughput."""
    entry = _large_media(bench).large(bench.scratch(), mb * MB)
    capture_entries(bench, [entry])


@when(parsers.parse('a "{how}" corrupted "{kind}" file is captured'))
def _capture_corrupt(bench: Bench, request: pytest.FixtureRequest, how: str, kind: str) -> None:
    """A damaged or unreadable file: damaged before capture, or vanishing/unreadable right after.

    The bad objects of the watch folder (dangling-symlink, directory, fifo, and vanish /
    unreadable when the device has one) are made as in "captured first", without the order."""
    if how in WATCH_FOLDER_ONLY and _watch_folder(bench) is not None:
        capture_bad(bench, request, how, kind)
        return
    how_norm = HOW_ALIASES.get(how, how)
    entry = bench.media.generate([kind], bench.scratch(), count=1)[0]
    if how not in AFTER_CAPTURE:
        entry = {**entry, **bench.media.corrupt(Path(entry["path"]), how_norm)}
        capture_entries(bench, [entry], corruption=how)
        return
    cap = capture_entries(bench, [entry], corruption=how)[0]
    bench.media.corrupt(Path(cap.path), how_norm)


def _large_media(bench: Bench) -> LargeMedia:
    """The media kit as a maker of exact-size files; a kit that is not one is a bench error."""
    kit = bench.media
    if not isinstance(kit, LargeMedia):
        raise BenchFailure("the media kit cannot make a large file of a given size")
    return kit


CONTENT = ("zero-length", "truncate")


def _watch_folder(bench: Bench) -> Path | None:
    """The device's capture folder when the bench puts files there itself (else None)."""
    device = bench.device
    if bench.profile.capture.driver != "watch-folder" or not isinstance(device, WatchFolder):
        return None
    return Path(device.watch_folder())


def capture_bad(bench: Bench, request: pytest.FixtureRequest, how: str, kind: str) -> Capture:
    """Capture one bad `kind` file made `how`; returns its manifest row (corruption = how).

    zero-length / truncate: the damaged clip is captured (any capture driver). The others are
    real filesystem objects in the device's watch folder (harness/faults/media/objects.py);
    vanish deletes the clip the moment the device opens it. Where the bench can watch the
    folder it waits until the device has opened the bad file (or TAKE_IN_S passed, or its
    status lists it), so whatever is captured next comes after the device met the bad one.
    Objects left in the folder are removed when the scenario ends (a FIFO's blocked reader is
    released first).
    """
    if how not in (*CONTENT, *WATCH_FOLDER_ONLY):
        raise MediaError(f"unknown bad media {how!r}; known: {', '.join((*CONTENT, *WATCH_FOLDER_ONLY))}")
    folder = _watch_folder(bench)
    if how in WATCH_FOLDER_ONLY and folder is None:
        pytest.skip(f"{NOT_APPLICABLE_SKIP}a {how} can only be made in a watch folder the bench writes to; "
                    f"{bench.profile.name} captures with {bench.profile.capture.driver!r}")
    reason = not_applicable(how)
    if reason:
        pytest.skip(f"{NOT_APPLICABLE_SKIP}{how}: {reason}")
    entry = bench.media.generate([kind], bench.scratch(), count=1)[0]
    if how in CONTENT:
        entry = {**entry, **bench.media.corrupt(Path(entry["path"]), HOW_ALIASES.get(how, how))}
    if folder is None:
        return capture_entries(bench, [entry], corruption=how)[0]
    folder.mkdir(parents=True, exist_ok=True)
    name = Path(entry["path"]).name
    with FolderWatch(folder) as watch:
        placed = time.monotonic()
        if how in OBJECTS:
            device = bench.device
            staging = Path(device.incoming_dir if isinstance(device, WatchFolder) else folder.parent)
            obj = place(how, folder, name, staging=staging, original=Path(entry["path"]))
            request.addfinalizer(lambda: _remove(bench, obj))
            bench.timeline.record("media", how, "mark", file=name)
            cap = _record(bench, {**entry, "sha256": None, "size": 0}, obj.path, corruption=how)
        elif how == "vanish":
            vanish = Vanish(folder / name)
            watch.on_open(name, vanish.fire)
            cap = capture_entries(bench, [entry], corruption=how)[0]
            request.addfinalizer(lambda: _remove(bench, BadObject("vanish", cap.path)))
            if not watch.wait_for(lambda _ev: vanish.fired_at is not None, VANISH_OPEN_S):
                raise BenchFailure(f"the device did not open {name} within {VANISH_OPEN_S:.0f} s of its capture: "
                                   "a file vanishing after the device saw it was not exercised")
            bench.timeline.record("media", "vanish", "mark", file=name,
                                  after_capture_s=round(vanish.fired_at - placed, 3) if vanish.fired_at else None)
            bench.exercised(f"{name} was deleted the moment the device opened it, "
                            f"{(vanish.fired_at or placed) - placed:.1f} s after its capture")
            return cap
        else:  # content damage: captured like any clip
            cap = capture_entries(bench, [entry], corruption=how)[0]
        _await_take_in(bench, watch, name, how, placed)
    return cap


def _await_take_in(bench: Bench, watch: FolderWatch, name: str, how: str, placed: float) -> None:
    """Until the device opened `name`, listed it in its status, or TAKE_IN_S passed."""
    deadline = placed + TAKE_IN_S
    while time.monotonic() < deadline:
        if watch.wait_for(lambda ev: any(e.opened(name) for e in ev), min(0.5, max(0.0, deadline - time.monotonic()))):
            bench.exercised(f"the device opened the {how} {name} {time.monotonic() - placed:.1f} s after it was "
                            "captured, before any other file of the scenario")
            return
        if bench.has_status and any(f.get("name") == name for f in (device_status(bench).get("files") or [])):
            bench.exercised(f"the device listed the {how} {name} in its status before any other file of the "
                            "scenario was captured")
            return
    listed = watch.listings(since=placed)
    bench.exercised(f"the device did not open the {how} {name} within {TAKE_IN_S:.0f} s (it listed the folder "
                    f"{listed} time(s) meanwhile); the other files were captured after that")


def _remove(bench: Bench, obj: BadObject) -> None:
    """Scenario end: take the bad object out of the device's folder (it must not haunt later scenarios)."""
    for note in obj.remove():
        bench.timeline.record("media", obj.how, "mark", file=obj.name, note=note)


@when(parsers.parse('a "{how}" bad "{kind}" file is captured first'))
def _capture_bad_first(bench: Bench, request: pytest.FixtureRequest, how: str, kind: str) -> None:
    """A bad file before any good one (zero-length, truncate, vanish, dangling-symlink, directory,
    fifo, unreadable): a device that stalls behind it cannot deliver what comes after."""
    if bench.state.captures:
        raise BenchFailure(f"the {how} file must be the scenario's first capture; "
                           f"{len(bench.state.captures)} file(s) were captured before it")
    capture_bad(bench, request, how, kind)


def bad_media_problems(files: list[FileVerdict], claims: list[dict[str, Any]]) -> list[str]:
    """What a device did wrong with the bad files (ledger verdicts, its status `files`).

    - an object with no readable bytes (dangling symlink, directory, FIFO, unreadable) has
      no complete asset in the cloud: one would be made of nothing
    - a clip that vanished or was damaged is in the cloud only as the bytes the bench made
      (ledger `corrupt` otherwise), once
    - a device that lists a bad file in its status shows it as given up on, with a reason,
      and never as uploaded when the cloud has no complete asset for it
    """
    problems: list[str] = []
    by_name: dict[str, list[dict[str, Any]]] = {}
    for c in claims:
        by_name.setdefault(str(c.get("name")), []).append(c)
    for f in files:
        if not f.corruption:
            continue
        delivered = bool(f.cloud_sha256)
        if f.corruption in NO_CONTENT and delivered:
            problems.append(f"{f.name} ({f.corruption}) was uploaded as if good: the cloud has a complete asset "
                            f"{f.assets} for something with no readable bytes")
        elif f.outcome in ("corrupt", "duplicated"):
            problems.append(f"{f.name} ({f.corruption}) was uploaded as if good: {f.outcome} ({f.note})")
        for claim in by_name.get(f.name, []):
            state, reason = str(claim.get("state") or ""), claim.get("reason")
            if state in CLAIMS_DONE and (not delivered or f.corruption in NO_CONTENT):
                problems.append(f"the device shows {f.name} ({f.corruption}) as {state!r}, but it was not uploaded")
            elif not delivered and state not in GAVE_UP:
                problems.append(f"the device still shows {f.name} ({f.corruption}) as {state!r}: the bad file is "
                                "not reported as given up on")
            elif not delivered and not reason:
                problems.append(f"the device shows {f.name} ({f.corruption}) as {state!r} without a reason")
    return problems


@then("nothing bad was uploaded as if good")
def _nothing_bad_as_good(bench: Bench) -> None:
    """The bad file is not in the cloud as a good one; a device with status reports it as given up
    on, with a reason (one that skipped it without listing it is only noted: the oracle judges)."""
    ledger = bench.ledger(drained=True)
    bad = [f for f in ledger.files if f.corruption]
    if not bad:
        raise BenchFailure("no bad file in this scenario: nothing to judge")
    claims: list[dict[str, Any]] = []
    if bench.has_status:
        def settled() -> bool:
            claims[:] = device_status(bench).get("files") or []
            return not bad_media_problems(bad, claims)
        try:
            wait_until(settled, 30, "the device to report the bad file as given up on")
        except DeviceFailure:
            pass  # judged below with the last status seen
        listed = {str(c.get("name")) for c in claims}
        for f in bad:
            if f.name not in listed:
                bench.exercised(f"the device did not list the {f.corruption} {f.name} in its status (it skipped it)")
    problems = bad_media_problems(bad, claims)
    assert not problems, "; ".join(problems)


@when(parsers.parse("a growing file of {mb:d} MB is recorded over {seconds:d} seconds"))
def _capture_growing(bench: Bench, mb: int, seconds: int) -> None:
    """A file still being written while the device sees it (real-time upload or upload on completion)."""
    kit = bench.media
    if not isinstance(kit, GrowingMedia):
        raise BenchFailure("the media kit cannot grow a file while the device sees it")
    entry = _large_media(bench).large(bench.scratch(), MB)
    cap = capture_entries(bench, [entry])[0]
    chunk = 256 * 1024
    interval = seconds / max(1, (mb - 1) * MB // chunk)
    kit.corrupt(Path(cap.path), "grow", chunk=chunk, interval=interval, max_bytes=(mb - 1) * MB)
    wait_until(lambda: Path(cap.path).stat().st_size >= mb * MB, seconds * 3 + 10, "the growing file to finish")
    kit.stop_growing(Path(cap.path))
    from harness.faults.media.generate import sha256_file

    cap.sha256 = sha256_file(Path(cap.path))
    cap.size = Path(cap.path).stat().st_size


@when(parsers.re(r"files named (?P<names>.+) are captured$"))
def _capture_named(bench: Bench, names: str) -> None:
    """Files with hostile names (spaces, unicode, a duplicate name in another folder)."""
    wanted = re.findall(r'"([^"]+)"', names)
    if not wanted:
        raise MediaError(f"no quoted file names in {names!r}")
    for name in wanted:
        kind = Path(name).suffix.lstrip(".").lower() or "jpg"
        kit = bench.media
        if not isinstance(kit, NamedMedia):
            raise BenchFailure("the media kit cannot make a file under a chosen name")
        entry = kit.generate_named(kind, bench.scratch("named"), name)
        if any(c.name == name for c in bench.state.captures):
            # same name again: the device must keep both (e.g. as separate assets)
            pass
        capture_entries(bench, [entry])


@when(parsers.parse('a "{kind}" hero file is recorded'))
def _capture_hero(bench: Bench, kind: str) -> None:
    """A hero/OCF recording; a proxy-making device derives and uploads its proxy."""
    hero = bench.media.generate([kind], bench.scratch("hero"), count=1)[0]
    capture_entries(bench, [hero])
    bench.state.hero = hero


@when(parsers.parse('one file of each format "{formats}" is captured'))
def _capture_formats(bench: Bench, formats: str) -> None:
    """One file of each listed format (Proxy, OCF, LUT, WAV, RAW, JPG, HEIF, TIFF)."""
    for kind in (f.strip() for f in formats.split(",")):
        capture_kind(bench, kind, 1)


@when(parsers.parse('the device stays connected for {seconds:d} seconds while {count:d} "{kind}" files are captured'))
def _connected_window(bench: Bench, seconds: int, count: int, kind: str) -> None:
    """Keep the device running for a while (token lifetimes elapse), capturing files spread over it.

    A device that drops its pairing meanwhile (repair_needed, unpaired ...) fails at once:
    staying connected is what the period is for.
    """
    start = time.monotonic()

    def reached(moment: float) -> bool:
        state = ((device_status(bench).get("pairing") or {}).get("state") if bench.has_status else None)
        if state is not None and state != "paired":
            raise DeviceFailure(f"the device left its pairing (state {state!r}) "
                                f"{time.monotonic() - start:.0f} s into the connected period")
        return time.monotonic() - start >= moment
    for n in range(count):
        wait_until(functools.partial(reached, n * seconds / max(count, 1)), seconds + 5, "the next capture time")
        capture_kind(bench, kind, 1)
    wait_until(lambda: reached(seconds), seconds + 5, "the end of the connected period")


@when(parsers.parse("8 hours of cloud time pass in {seconds:d} seconds while files are captured every {every:d} seconds"))
def _soak(bench: Bench, seconds: int, every: int) -> None:
    """Time-accelerated shift: the emulator clock advances 8 h in steps while files keep coming.

    Each jump's journal position is noted (`clock_jumps`) so the oracle can tell which
    refreshes followed which jump; the certificate says how compressed the shift was.
    """
    steps = max(1, seconds // every)
    jump = 8 * 3600 / steps
    start = time.monotonic()
    jumps = bench.state.clock_jumps
    for n in range(steps):
        jumps.append(bench.session.journal_head())
        bench.cloud.advance_clock(jump)
        bench.timeline.record("cloud", "clock", "mark", advanced=jump)
        capture_kind(bench, "jpg", 1)
        wait_until(_elapsed(start, (n + 1) * every), every + 5, "the next soak step")
    real = time.monotonic() - start
    bench.exercised(f"8 h shift compressed into {real:.0f} s of real time: the emulator clock jumped {steps} times "
                    f"by {jump / 3600:.1f} h ({8 * 3600 / real:.0f}x), one file captured after each jump; the device "
                    "ran for those seconds only (its own clock and timers were not accelerated)")

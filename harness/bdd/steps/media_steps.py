"""Steps that make media and have the device capture it (Media + Device.capture).

Every captured file becomes a manifest row in the scenario state (name, SHA-256, size,
capture time, intended corruption): the ground truth of the delivery ledger.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from pytest_bdd import parsers, when

from harness.bdd.bench import Capture
from harness.bdd.steps.common import device_status, wait_until
from harness.errors import DeviceFailure, MediaError

MB = 1024 * 1024
# Corruptions applied before capture (the file is damaged on the card) vs after (it vanishes
# or becomes unreadable once the device has seen it).
AFTER_CAPTURE = {"vanish", "unreadable", "permission_denied"}
HOW_ALIASES = {"unreadable": "permission_denied", "zero-length": "zero_length"}


def _record(bench: Any, entry: dict[str, Any], dest: Path, *, corruption: str | None = None) -> Capture:
    cap = Capture(
        name=dest.name, path=dest, sha256=entry.get("sha256"), size=int(entry.get("size") or 0),
        captured_at=time.time(), corruption=corruption, kind=str(entry.get("kind") or ""),
    )
    paused = bench.state.notes.get("paused_now")
    cap.paused = bool(paused) if paused is not None else None
    bench.state.captures.append(cap)
    return cap


def capture_entries(bench: Any, entries: list[dict[str, Any]], *, corruption: str | None = None) -> list[Capture]:
    """Have the device record generated files; returns the manifest rows."""
    dests = bench.device.capture([Path(e["path"]) for e in entries])
    return [_record(bench, e, Path(d), corruption=corruption) for e, d in zip(entries, dests, strict=True)]


def capture_kind(bench: Any, kind: str, count: int) -> list[Capture]:
    entries = bench.media.generate([kind], bench.scratch(), count=count)
    return capture_entries(bench, entries)


@when(parsers.re(r'(?P<count>\d+) "(?P<kind>[^"]+)" files? (?:is|are) captured$'))
def _capture_n(bench: Any, count: str, kind: str) -> None:
    """Generate `count` media files of a kind (jpg, mov, wav, ...) and capture them one by one."""
    for _ in range(int(count)):
        capture_kind(bench, kind, 1)


@when(parsers.parse('{count:d} "{kind}" files are captured over {seconds:d} seconds'))
def _capture_spread(bench: Any, count: int, kind: str, seconds: int) -> None:
    """Captures spread evenly over a period (the first at once), so uploads meet a link that changes
    during it (a roaming cut); 0 seconds captures them one after another."""
    start = time.monotonic()
    for n in range(count):
        at = n * seconds / max(count - 1, 1)
        wait_until(lambda at=at: time.monotonic() - start >= at, at + 5, "the next capture time")
        capture_kind(bench, kind, 1)


@when(parsers.parse('{count:d} "{kind}" files are captured at once'))
def _capture_burst(bench: Any, count: int, kind: str) -> None:
    """A burst: all files land in the device's storage together."""
    capture_kind(bench, kind, count)


@when(parsers.parse("a large file of {mb:d} MB is captured"))
def _capture_large(bench: Any, mb: int) -> None:
    """One large data file (several upload parts), for resume, progress and throughput."""
    kit = bench.media
    entry = kit.large(bench.scratch(), mb * MB) if hasattr(kit, "large") else kit.generate(["bin"], bench.scratch())[0]
    capture_entries(bench, [entry])


@when(parsers.parse('a "{how}" corrupted "{kind}" file is captured'))
def _capture_corrupt(bench: Any, how: str, kind: str) -> None:
    """A damaged or unreadable file: damaged before capture, or vanishing/unreadable right after."""
    how_norm = HOW_ALIASES.get(how, how)
    entry = bench.media.generate([kind], bench.scratch(), count=1)[0]
    if how not in AFTER_CAPTURE:
        entry = {**entry, **bench.media.corrupt(Path(entry["path"]), how_norm)}
        capture_entries(bench, [entry], corruption=how)
        return
    cap = capture_entries(bench, [entry], corruption=how)[0]
    bench.media.corrupt(Path(cap.path), how_norm)


@when(parsers.parse("a growing file of {mb:d} MB is recorded over {seconds:d} seconds"))
def _capture_growing(bench: Any, mb: int, seconds: int) -> None:
    """A file still being written while the device sees it (real-time upload or upload on completion)."""
    kit = bench.media
    entry = kit.large(bench.scratch(), MB)
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
def _capture_named(bench: Any, names: str) -> None:
    """Files with hostile names (spaces, unicode, a duplicate name in another folder)."""
    wanted = re.findall(r'"([^"]+)"', names)
    if not wanted:
        raise MediaError(f"no quoted file names in {names!r}")
    for name in wanted:
        kind = Path(name).suffix.lstrip(".").lower() or "jpg"
        entry = bench.media.generate_named(kind, bench.scratch("named"), name)
        if any(c.name == name for c in bench.state.captures):
            # same name again: the device must keep both (e.g. as separate assets)
            pass
        capture_entries(bench, [entry])


@when(parsers.parse('a "{kind}" hero file is recorded'))
def _capture_hero(bench: Any, kind: str) -> None:
    """A hero/OCF recording; a proxy-making device derives and uploads its proxy."""
    hero = bench.media.generate([kind], bench.scratch("hero"), count=1)[0]
    capture_entries(bench, [hero])
    bench.state.notes["hero"] = hero


@when(parsers.parse('one file of each format "{formats}" is captured'))
def _capture_formats(bench: Any, formats: str) -> None:
    """One file of each listed format (Proxy, OCF, LUT, WAV, RAW, JPG, HEIF, TIFF)."""
    for kind in (f.strip() for f in formats.split(",")):
        capture_kind(bench, kind, 1)


@when(parsers.parse('the device stays connected for {seconds:d} seconds while {count:d} "{kind}" files are captured'))
def _connected_window(bench: Any, seconds: int, count: int, kind: str) -> None:
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
        wait_until(lambda n=n: reached(n * seconds / max(count, 1)), seconds + 5, "the next capture time")
        capture_kind(bench, kind, 1)
    wait_until(lambda: reached(seconds), seconds + 5, "the end of the connected period")


@when(parsers.parse("8 hours of cloud time pass in {seconds:d} seconds while files are captured every {every:d} seconds"))
def _soak(bench: Any, seconds: int, every: int) -> None:
    """Time-accelerated shift: the emulator clock advances 8 h in steps while files keep coming.

    Each jump's journal position is noted (`clock_jumps`) so the oracle can tell which
    refreshes followed which jump; the certificate says how compressed the shift was.
    """
    steps = max(1, seconds // every)
    jump = 8 * 3600 / steps
    start = time.monotonic()
    jumps: list[int] = bench.state.notes.setdefault("clock_jumps", [])
    for n in range(steps):
        jumps.append(bench.session.journal_head())
        bench.cloud.advance_clock(jump)
        bench.timeline.record("cloud", "clock", "mark", advanced=jump)
        capture_kind(bench, "jpg", 1)
        wait_until(lambda n=n: time.monotonic() - start >= (n + 1) * every, every + 5, "the next soak step")
    real = time.monotonic() - start
    bench.exercised(f"8 h shift compressed into {real:.0f} s of real time: the emulator clock jumped {steps} times "
                    f"by {jump / 3600:.1f} h ({8 * 3600 / real:.0f}x), one file captured after each jump; the device "
                    "ran for those seconds only (its own clock and timers were not accelerated)")

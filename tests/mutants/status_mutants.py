"""Seeded defects for the status, workflow, queue-order and tethered checks (issue #19, 11-15).

Each one passed the bench before the check it targets compared the device with the oracle:
- stale-remaining-count: the status counts from a cache refreshed every 20 s; right at the two
  moments the old check looked (within 60 s each), wrong while files upload.
- remaining-bytes-until-idle: remaining bytes only drop when the queue empties.
- failures-listed-as-done: counters right, but the file list shows refused media as done.
- fake-throughput: the speed field is present and always 100 Mbit/s.
- serial-part-puts: two files in flight (their create-to-complete spans overlap) but one part
  PUT on the wire at a time across the device.
- fifo-parts: assets created in priority order, parts uploaded in capture order (first in,
  first out); the old check ordered by asset creation.
- ascii-copy: a file with a non-ASCII name is also uploaded under an ASCII name (an
  unexpected asset the old ledger never looked at).
- queue-drops-overflow: a fixed queue of 8 drops what arrives while it is full; the old QUE-01
  burst was exactly 8 files, and its limit (>= 1 upload in flight) could not fail. A burst of
  8 beside the large file was not enough either: on a loaded bench the device finished a few
  small files while the burst was still arriving, never held 8, and passed; the burst is 16.
- flashes-repair-alert: shows repair_needed for a few seconds after every token refresh; the
  old check looked at one snapshot at the end.
- tether-corrupt-copy: the frame downloaded from the tethered camera is damaged on the rig's
  storage and that copy is uploaded; the old check hashed the device's copy.

Why each `also`: STAT-01, STAT-02 and UPL-02 share one scenario, and a status check that fails
there fails the scenario (the delivery step after it re-raises every measurement out of
limits); UPL-02 also shares STAT-04's scenario; OPT-03 and OPT-04 are both orderings of one
queue (the same FIFO defect); OPT-05 shares QUE-01's scenario, which a lost file fails;
QUE-03 and RES-01 share the tethered scenario with UPL-01. Found by the first full matrix:
failures-listed-as-done also fails CTL-04 and RES-04, whose bad-media scenario reads the same file
list (the refused file must not show as done); serial-part-puts may fail OPT-04, since with one part
slot shared by the two files it claims, the prioritised file's first part can wait behind the
other's (the single slot makes that a race; the priority itself is honoured when claiming).
Found by the full matrix at 704076c: queue-drops-overflow also fails OPT-03 and OPT-04, which
since 0efc137 capture 14 and 12 files at once (enough to judge the order of a device that works
up to 7 files at a time); a queue of 8 loses files there too, and a lost file fails an item.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.mutants.patching import Mutant, replace

STALE_S = 20.0


def _stale_remaining_count() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def build(self: Any) -> dict[str, Any]:
            snap = orig(self)
            now = time.monotonic()
            cache = getattr(self, "_mutant_remaining", None)
            if cache is None or now - cache[0] >= STALE_S:
                cache = (now, snap["queue"]["remaining_count"])
                self._mutant_remaining = cache
            snap["queue"] = {**snap["queue"], "remaining_count": cache[1]}
            return snap
        return build
    replace("reference_device.engine:Engine._build_snapshot", wrap)


def _remaining_bytes_until_idle() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def build(self: Any) -> dict[str, Any]:
            snap = orig(self)
            q = snap["queue"]
            held = 0 if not q["remaining_count"] else max(getattr(self, "_mutant_bytes", 0), q["remaining_bytes"])
            self._mutant_bytes = held
            snap["queue"] = {**q, "remaining_bytes": held}
            return snap
        return build
    replace("reference_device.engine:Engine._build_snapshot", wrap)


def _failures_listed_as_done() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def build(self: Any) -> dict[str, Any]:
            snap = orig(self)
            snap["files"] = [{**f, "state": "done", "reason": None} if f.get("state") in {"failed", "quarantined"} else f
                             for f in snap["files"]]
            return snap
        return build
    replace("reference_device.engine:Engine._build_snapshot", wrap)


def _fake_throughput() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def snapshot(self: Any) -> dict[str, Any]:
            return {**orig(self), "throughput_bps": 100_000_000}
        return snapshot
    replace("reference_device.netstats:NetworkStats.snapshot", wrap)


_CLAIM_LOCK = threading.Lock()
FIFO_WAIT_S = 60.0


def _fifo_parts() -> None:
    """Files are claimed in priority order and each asset is created at its claim (so asset
    creation follows the priorities); a file's parts then wait until every file captured
    before it has left the queue (first in, first out on the wire). Eight file workers (env)
    so the older files are claimed and nothing deadlocks."""
    def claim(orig: Callable[..., Any]) -> Callable[..., Any]:
        def create_at_claim(self: Any) -> Any:
            with _CLAIM_LOCK:
                claimed = orig(self)
                if claimed is None:
                    return None
                rec, cancel = claimed
                if rec.realtime or rec.asset_id:
                    return claimed
                try:
                    return self.uploader._create_basic(rec, cancel), cancel
                except Exception:
                    return claimed  # the worker's own create reports it
        return create_at_claim

    def run_parts(orig: Callable[..., Any]) -> Callable[..., Any]:
        def fifo(self: Any, rec: Any, parts: list[Any], cancel: Any) -> None:
            deadline = time.monotonic() + FIFO_WAIT_S
            while time.monotonic() < deadline and not cancel.is_set():
                older = [r for r in self.queue.all() if r.id != rec.id and r.state in ("queued", "uploading")
                         and r.captured_at < rec.captured_at and (r.selected or r.state == "uploading")]
                if not older:
                    break
                time.sleep(0.05)
            orig(self, rec, parts, cancel)
        return fifo
    replace("reference_device.engine:Engine._claim", claim)
    replace("reference_device.uploader:Uploader._run_parts", run_parts)


def _ascii_copy() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def upload(self: Any, rec: Any, cancel: Any) -> None:
            orig(self, rec, cancel)
            if rec.name.isascii():
                return
            alias = unicodedata.normalize("NFKD", rec.name).encode("ascii", "ignore").decode() or "copy.jpg"
            data = Path(rec.path).read_bytes()
            body = {"name": alias, "filetype": rec.filetype, "filesize": len(data), "parts": 1}
            asset = self._create(rec, body, cancel, f"create asset {alias}")
            self.api.put_part(str(asset["upload_urls"][0]), [data], len(data), rec.filetype)
        return upload
    replace("reference_device.uploader:Uploader.upload", wrap)


def _tether_corrupt_copy() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def atomic_write(path: Path, data: bytes, mtime: int) -> None:
            damaged = bytearray(data)
            damaged[len(damaged) // 2] ^= 0xFF  # one flipped byte in the rig's copy
            orig(path, bytes(damaged), mtime)
        return atomic_write
    replace("reference_device.sources.tether_files:atomic_write", wrap)


QUEUE_CAPACITY = 8


def _queue_drops_overflow() -> None:
    """A fixed-size queue: a capture that finds 8 files queued or uploading is dropped."""
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def on_file(self: Any, captured: Any) -> None:
            counts = self.queue.counts()
            if counts["queued"] + counts["uploading"] >= QUEUE_CAPACITY:
                return  # silently: the overflow never reaches the queue
            orig(self, captured)
        return on_file
    replace("reference_device.engine:Engine.on_file", wrap)


ALERT_FLASH_S = 3.0


def _flashes_repair_alert() -> None:
    """After every token refresh the status asks the user to re-pair for a few seconds, then
    recovers: the old check read one snapshot at the end (and a note nobody set)."""
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def snapshot(self: Any) -> dict[str, Any]:
            snap = orig(self)
            seen = getattr(self, "_mutant_seen", None)
            if seen is None or snap["refresh_count"] != seen[0]:
                seen = (snap["refresh_count"], time.monotonic() if seen is not None else 0.0)
                self._mutant_seen = seen
            if seen[1] and time.monotonic() - seen[1] < ALERT_FLASH_S:
                snap = {**snap, "state": "repair_needed"}
            return snap
        return snapshot
    replace("reference_device.tokens:TokenManager.snapshot", wrap)


SERIAL_PUTS = {"C2C_DEVICE_PARALLELISM": "1", "C2C_DEVICE_PARALLEL_FILES": "2"}

STATUS_MUTANTS: tuple[Mutant, ...] = (
    Mutant("stale-remaining-count", "C2C-STAT-01", "remaining count from a cache refreshed every 20 s",
           "reference_device.engine:Engine._build_snapshot", _stale_remaining_count, also=("C2C-UPL-02", "C2C-STAT-02")),
    Mutant("remaining-bytes-until-idle", "C2C-STAT-02", "remaining bytes only drop when the queue is empty",
           "reference_device.engine:Engine._build_snapshot", _remaining_bytes_until_idle,
           also=("C2C-STAT-01", "C2C-UPL-02")),
    Mutant("failures-listed-as-done", "C2C-STAT-04", "counters right, refused media listed as done",
           "reference_device.engine:Engine._build_snapshot", _failures_listed_as_done,
           also=("C2C-UPL-02", "C2C-CTL-04", "C2C-RES-04")),
    Mutant("fake-throughput", "C2C-NETW-04", "shows a constant 100 Mbit/s throughput",
           "reference_device.netstats:NetworkStats.snapshot", _fake_throughput),
    Mutant("serial-part-puts", "C2C-OPT-05", "two files at once but one part PUT at a time across the device",
           "reference_device.config:DeviceConfig.parallelism", lambda: None, env=SERIAL_PUTS,
           also=("C2C-NETW-01", "C2C-OPT-04")),  # one part at a time: Mathis bound on lossy cellular
    Mutant("fifo-parts", "C2C-OPT-04", "assets created in priority order, parts uploaded first in first out",
           "reference_device.engine:Engine._claim", _fifo_parts, also=("C2C-OPT-03",),
           env={"C2C_DEVICE_PARALLEL_FILES": "8"}),
    Mutant("ascii-copy", "C2C-WF-03", "also uploads a non-ASCII-named file under an ASCII name",
           "reference_device.uploader:Uploader.upload", _ascii_copy),
    Mutant("queue-drops-overflow", "C2C-QUE-01", "a queue of 8: a capture arriving while 8 are pending is dropped",
           "reference_device.engine:Engine.on_file", _queue_drops_overflow,
           also=("C2C-OPT-05", "C2C-OPT-03", "C2C-OPT-04")),
    Mutant("flashes-repair-alert", "C2C-NET-02", "shows repair_needed for 3 s after every token refresh",
           "reference_device.tokens:TokenManager.snapshot", _flashes_repair_alert),
    Mutant("tether-corrupt-copy", "C2C-UPL-01", "damages the frame it downloads from the tethered camera",
           "reference_device.sources.tether_files:atomic_write", _tether_corrupt_copy,
           also=("C2C-QUE-03", "C2C-RES-01")),
)

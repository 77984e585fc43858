"""One pool of part slots shared by every file in flight: no slot idles while a file has parts left.

Why: with a part pool per file, the device sent a file's parts, waited for the slowest of
its last wave, then claimed and created the next file; on a long-RTT link every file ended
with idle slots. Here `parallelism` long-lived slot threads take the next part from the
highest-priority file that still has one (files rank in the order they were handed over,
which is the queue's priority order), so a slot freed by one file's last part goes straight
to the next file's first. Per-file part order is not kept (not needed: parts carry their
number); a file completes when its last part lands.

A file whose parts are all on the wire is "draining": the engine may claim another file
then (`on_drained` wakes it), so the next file's asset create overlaps the last parts.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable

from reference_device.errors import Cancelled
from reference_device.queue import Part

IDLE_WAIT = 1.0
"""Seconds an idle slot sleeps between looks at a closed pool (work wakes it at once)."""


class StopSignal:
    """Set when the file is cancelled or one of its parts failed for good: siblings stop.

    Looks like a threading.Event to the part readers (is_set / wait).
    """

    def __init__(self, cancel: threading.Event, failed: threading.Event) -> None:
        self.cancel = cancel
        self.failed = failed

    def is_set(self) -> bool:
        return self.cancel.is_set() or self.failed.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self.cancel.wait(0.05 if left is None else min(0.05, left))
        return True


PutPart = Callable[[Part, StopSignal], None]


class _FileJob:
    """One file's parts in the pool; finished when nothing is pending or running."""

    def __init__(self, file_id: str, rank: int, parts: list[Part], put: PutPart,
                 cancel: threading.Event) -> None:
        self.file_id = file_id
        self.rank = rank
        self.pending: deque[Part] = deque(parts)
        self.running = 0
        self.put = put
        self.failed = threading.Event()
        self.stop = StopSignal(cancel, self.failed)
        self.error: BaseException | None = None
        self.finished = threading.Event()


class PartPool:
    """`slots` threads sending parts of every submitted file, highest rank first."""

    def __init__(self, slots: int, on_drained: Callable[[], None] | None = None) -> None:
        self.slots = slots
        self.on_drained = on_drained
        self._cond = threading.Condition()
        self._jobs: list[_FileJob] = []  # by rank
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._order = itertools.count()
        self.busy_slots = 0

    def rank(self) -> int:
        """A rank for a file handed over now: earlier hand-overs go first."""
        return next(self._order)

    def draining(self, file_id: str) -> bool:
        """Every part of `file_id` is on the wire or done (none waits for a slot)."""
        with self._cond:
            return any(job.file_id == file_id and not job.pending for job in self._jobs)

    def run(self, file_id: str, rank: int, parts: list[Part], put: PutPart,
            cancel: threading.Event) -> None:
        """Send `parts` through the slots; return when all landed, else raise the first error.

        When a part fails for good its siblings are stopped (their StopSignal is set) and
        waited for, and the error is raised here, in the file's own thread.
        """
        if not parts:
            return
        job = _FileJob(file_id, rank, parts, put, cancel)
        with self._cond:
            if self._closed:
                raise Cancelled("the part pool is closed")
            self._start_slots()
            index = next((i for i, other in enumerate(self._jobs) if other.rank > rank), len(self._jobs))
            self._jobs.insert(index, job)
            self._cond.notify_all()
        while not job.finished.wait(0.1):
            if job.stop.is_set():  # cancelled with parts still waiting for a slot
                with self._cond:
                    self._drop_pending(job, Cancelled("cancelled") if job.error is None else None)
        if job.error is not None:
            raise job.error

    def close(self, timeout: float = 10.0) -> None:
        """Stop the slot threads once their parts end (engine stop); waits `timeout` s in all
        (a PUT stuck on a dead link ends with its request timeout, the threads are daemons)."""
        with self._cond:
            self._closed = True
            for job in list(self._jobs):
                self._drop_pending(job, Cancelled("the part pool is closed"))
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    # --- slot threads (hold self._cond for every job change) -------------------------------
    def _start_slots(self) -> None:
        while len(self._threads) < self.slots:
            thread = threading.Thread(target=self._slot, name=f"part-{len(self._threads)}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _next(self) -> tuple[_FileJob, Part] | None:
        for job in list(self._jobs):  # a stopped job may leave the list below
            if job.stop.is_set():
                self._drop_pending(job, Cancelled("cancelled") if job.error is None else None)
                continue
            if job.pending:
                part = job.pending.popleft()
                job.running += 1
                return job, part
        return None

    def _drop_pending(self, job: _FileJob, error: BaseException | None) -> None:
        if job.pending and job.error is None and error is not None:
            job.error = error
        job.pending.clear()
        self._settle(job)

    def _settle(self, job: _FileJob) -> None:
        if job.running == 0 and not job.pending and not job.finished.is_set():
            if job in self._jobs:
                self._jobs.remove(job)
            job.finished.set()
            self._cond.notify_all()

    def _slot(self) -> None:
        while True:
            drained = False
            with self._cond:
                picked = self._next()
                while picked is None:
                    if self._closed:
                        return
                    self._cond.wait(IDLE_WAIT)
                    picked = self._next()
                job, part = picked
                drained = not job.pending
                self.busy_slots += 1
            if drained and self.on_drained is not None:
                self.on_drained()
            error: BaseException | None = None
            try:
                job.put(part, job.stop)
            except BaseException as exc:  # handed to the file's thread, which raises it
                error = exc
            with self._cond:
                self.busy_slots -= 1
                job.running -= 1
                if error is not None:
                    if job.error is None or isinstance(job.error, Cancelled):
                        job.error = error
                    job.failed.set()
                    job.pending.clear()
                self._settle(job)

"""Group commit off the event loop: the WAL is fsync'd by a thread, checkpoints by another.

The store's connection runs with `synchronous=NORMAL` and `wal_autocheckpoint=0`: a COMMIT
only writes its frames into the WAL (page cache, tens of microseconds) and never waits for
the disk, so the event loop never blocks on an fsync. Durability comes back here: every
COMMIT gets a sequence number, and nobody answers before `wait(seq)` returns, which is
after an `fdatasync` of the WAL that started after that COMMIT. One fsync covers every
commit made before it started (group commit that grows with load, no fixed window).

Checkpoints (copying WAL frames into the database file) run in a second thread on their
own connection with `synchronous=FULL`: SQLite syncs the WAL before it copies and the
database file after, which is what keeps NORMAL mode consistent across a power cut.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

CHECKPOINT_EVERY = 1.0  # seconds between checks of the WAL size
CHECKPOINT_BYTES = 4 * 1024 * 1024  # checkpoint once the WAL is bigger than this


class WalSync:
    """Sequence numbers for commits, and fsyncs of the WAL batched behind whoever waits."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self.wal_path = self.db_path.with_name(self.db_path.name + "-wal")
        self.committed = 0  # last COMMIT's sequence number
        self.synced = 0  # every commit <= this is on disk
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self._in_flight = False
        self._dir_synced = False
        self._after: list[Callable[[], None]] = []
        # One thread, one fsync at a time: the loop only hands it work and hears back.
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="c2c-wal-sync")
        self._stop_checkpoints = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_forever,
                                              name="c2c-wal-checkpoint", daemon=True)
        self._checkpointer.start()

    def note_commit(self) -> int:
        """Called right after a COMMIT; returns its sequence number."""
        self.committed += 1
        return self.committed

    @property
    def busy(self) -> bool:
        """An fsync is in flight (loop thread)."""
        return self._in_flight

    def after_sync(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the loop when the fsync in flight ends, before the next starts."""
        self._after.append(callback)

    async def wait(self, seq: int) -> None:
        """Return once commit `seq` (and all before it) is on disk; raises if the fsync failed."""
        if self.synced >= seq:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, future))
        if not self._in_flight:
            self._start_sync()
        await asyncio.shield(future)

    def _start_sync(self) -> None:
        """fdatasync in the thread, covering every commit made so far (loop thread)."""
        self._in_flight = True
        target = self.committed
        done = asyncio.get_running_loop().run_in_executor(self._pool, self._fdatasync)
        done.add_done_callback(lambda f: self._synced(target, f))

    def _synced(self, target: int, done: asyncio.Future[None]) -> None:
        self._in_flight = False
        error = done.exception() if not done.cancelled() else OSError("fsync cancelled")
        if error is None:
            self.synced = max(self.synced, target)
        while self._waiters:
            seq, future = self._waiters[0]
            if seq > target:
                break
            self._waiters.popleft()
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(OSError(f"fsync of the state WAL failed: {error}"))
        callbacks, self._after = self._after, []
        for callback in callbacks:  # the store commits what was written meanwhile
            callback()
        if self._waiters or self.committed > self.synced:  # one more fsync covers them all
            self._start_sync()

    def sync_now(self) -> None:
        """Make every commit so far durable from the calling thread (startup, control, close)."""
        target = self.committed
        if self.synced >= target:
            return
        self._fdatasync()
        self.synced = max(self.synced, target)

    def close(self) -> None:
        """Stop the threads; commits made so far are synced first."""
        self._stop_checkpoints.set()
        self._checkpointer.join(timeout=30)
        self._pool.shutdown(wait=True)
        self.sync_now()

    def _fdatasync(self) -> None:
        fd = os.open(self.wal_path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if not self._dir_synced:  # the database and WAL files' own names, once per process
            dir_fd = os.open(self.db_path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            self._dir_synced = True

    def _checkpoint_forever(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            while not self._stop_checkpoints.wait(CHECKPOINT_EVERY):
                try:
                    if os.stat(self.wal_path).st_size < CHECKPOINT_BYTES:
                        continue
                    if db is None:
                        db = sqlite3.connect(self.db_path, isolation_level=None,
                                             check_same_thread=False)
                        db.execute("PRAGMA synchronous=FULL")
                        db.execute("PRAGMA busy_timeout=0")
                    # PASSIVE never waits for the writer: the event loop is never held up.
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except (OSError, sqlite3.Error):
                    continue  # retried next round; the WAL only grows meanwhile
        finally:
            if db is not None:
                db.close()

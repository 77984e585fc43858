"""Group commit with the WAL fsync off the event loop: nothing is durable-acknowledged early.

The fsync is observed by wrapping `WalSync._fdatasync` (the real fdatasync still runs);
the database is real SQLite in WAL mode on disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cloud import walsync
from harness.cloud.store import Store
from tests.waiting import wait_until


class GatedSync:
    """Wraps the real fdatasync: counts calls and can hold them until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_next = False
        real = walsync.WalSync._fdatasync

        def gated(sync: walsync.WalSync) -> None:
            self.calls += 1
            self.entered.set()
            if not self.gate.wait(10):
                raise AssertionError("test never released the fsync gate")
            if self.fail_next:
                self.fail_next = False
                raise OSError(5, "Input/output error")
            real(sync)

        monkeypatch.setattr(walsync.WalSync, "_fdatasync", gated)


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> GatedSync:
    return GatedSync(monkeypatch)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "state.sqlite3")
    yield s
    s.close()


async def settle() -> None:
    """Let every ready callback run; the held fsync is the only thing that could finish."""
    for _ in range(50):
        await asyncio.sleep(0)


async def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def test_durable_waits_for_the_fsync_that_covers_the_commit(store: Store, gated: GatedSync) -> None:
    async def scenario() -> None:
        gated.gate.clear()
        store.set_meta("k", "v1")
        waiter = asyncio.create_task(store.durable())
        await wait_for(gated.entered.is_set)
        await settle()  # the fsync is held: the answer must still be waiting
        assert not waiter.done()
        assert store.wal.synced < store.wal.committed
        gated.gate.set()
        await asyncio.wait_for(waiter, 5)
        assert store.wal.synced >= store.wal.committed >= 1

    asyncio.run(scenario())


def test_commits_during_an_fsync_share_the_next_one(store: Store, gated: GatedSync) -> None:
    async def scenario() -> None:
        gated.gate.clear()
        store.set_meta("first", "1")
        first = asyncio.create_task(store.durable())
        await wait_for(gated.entered.is_set)
        # Eight requests write while the first fsync is in flight.
        later = []
        for i in range(8):
            store.set_meta(f"later{i}", str(i))
            later.append(asyncio.create_task(store.durable()))
        await settle()
        assert gated.calls == 1 and not any(t.done() for t in later)
        committed = store.wal.committed
        assert store.db.in_transaction  # their COMMIT waits for the fsync in flight: one for all
        gated.gate.set()
        await asyncio.wait_for(asyncio.gather(first, *later), 5)
        assert store.wal.committed == committed + 1
        assert gated.calls == 2  # one more fsync covered all eight
        assert store.wal.synced == store.wal.committed

    asyncio.run(scenario())


def test_a_failed_fsync_fails_its_waiters_and_the_next_commit_recovers(
    store: Store, gated: GatedSync
) -> None:
    async def scenario() -> None:
        gated.fail_next = True
        store.set_meta("k", "lost?")
        with pytest.raises(OSError, match="fsync of the state WAL failed"):
            await asyncio.wait_for(store.durable(), 5)
        store.set_meta("k", "kept")
        await asyncio.wait_for(store.durable(), 5)
        assert store.wal.synced == store.wal.committed

    asyncio.run(scenario())


def test_read_only_answer_waits_for_earlier_unsynced_commits(store: Store, gated: GatedSync) -> None:
    """A request that wrote nothing still must not reveal another's not-yet-durable write."""

    async def scenario() -> None:
        gated.gate.clear()
        store.set_meta("k", "v")
        writer = asyncio.create_task(store.durable())
        await wait_for(gated.entered.is_set)
        reader = asyncio.create_task(store.durable())  # no open transaction of its own
        await settle()
        assert not reader.done()
        gated.gate.set()
        await asyncio.wait_for(asyncio.gather(writer, reader), 5)

    asyncio.run(scenario())


def test_durable_without_any_write_returns_at_once(store: Store, gated: GatedSync) -> None:
    store.flush()
    calls = gated.calls
    asyncio.run(asyncio.wait_for(store.durable(), 1))
    assert gated.calls == calls


def test_checkpoint_thread_moves_the_wal_into_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(walsync, "CHECKPOINT_EVERY", 0.02)
    monkeypatch.setattr(walsync, "CHECKPOINT_BYTES", 64 * 1024)
    store = Store(tmp_path / "state.sqlite3")
    try:
        for i in range(400):
            store.set_meta(f"key{i}", "x" * 2000)
        store.flush()
        db_file = tmp_path / "state.sqlite3"
        # rows only reach the main file by checkpoint
        wait_until(lambda: db_file.stat().st_size >= 400 * 2000, 10, "a checkpoint copying the WAL into the database")
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM meta WHERE key LIKE 'key%'").fetchone()[0] == 400
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_close_leaves_every_flushed_write_in_a_consistent_database(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite3")
    store.set_meta("answer", "42")
    store.close()
    reopened = Store(tmp_path / "state.sqlite3")
    try:
        assert reopened.get_meta("answer") == "42"
        assert reopened.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert reopened.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL + WalSync
    finally:
        reopened.close()

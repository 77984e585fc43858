from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reference_device.queue import FileQueue


def _add(q: FileQueue, name: str, *, size: int = 10, mtime: int = 1, inode: int = 1,
         captured: float = 100.0, realtime: bool = False):  # type: ignore[no-untyped-def]
    return q.add(Path("/media") / name, size=size, mtime_ns=mtime, inode=inode,
                 captured_at=captured, filetype="video/mp4", realtime=realtime)


def test_durable_settings(tmp_path: Path) -> None:
    q = FileQueue(tmp_path / "q.db")
    assert q._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert q._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_seen_twice_queued_once(tmp_path: Path) -> None:
    q = FileQueue(tmp_path / "q.db")
    rec, created = _add(q, "a.mp4")
    again, created2 = _add(q, "a.mp4")
    assert created and not created2 and again.id == rec.id
    q.set_state(rec.id, "done")
    _, created3 = _add(q, "a.mp4")
    assert not created3
    # rewritten with new content after upload: a new capture
    _, created4 = _add(q, "a.mp4", size=20, mtime=2)
    assert created4
    assert len(q.all()) == 2


def test_realtime_entry_owns_the_file(tmp_path: Path) -> None:
    q = FileQueue(tmp_path / "q.db")
    rec, _ = _add(q, "rec.mov", realtime=True, inode=7)
    same, created = _add(q, "rec.mov", size=999, mtime=55, inode=7)
    assert not created and same.id == rec.id


def test_order_priority_filetype_capture_time(tmp_path: Path) -> None:
    q = FileQueue(tmp_path / "q.db")
    jpg, _ = q.add(Path("/m/x.jpg"), size=1, mtime_ns=1, inode=1, captured_at=1, filetype="image/jpeg")
    mov, _ = q.add(Path("/m/y.mov"), size=1, mtime_ns=1, inode=2, captured_at=5, filetype="video/quicktime")
    mov2, _ = q.add(Path("/m/z.mov"), size=1, mtime_ns=1, inode=3, captured_at=3, filetype="video/quicktime")
    prio = {".mov": 30, ".jpg": 10}
    assert [r.id for r in q.ordered(prio)] == [mov2.id, mov.id, jpg.id]
    q.set_filetype_priority(".jpg", 99)
    assert q.ordered(prio)[0].id == jpg.id
    q.set_priority(mov.id, 1000)
    assert q.ordered(prio)[0].id == mov.id
    assert q.next_ready(prio, manual=True, exclude=set()) is None
    q.select([mov2.id])
    assert q.next_ready(prio, manual=True, exclude=set()).id == mov2.id  # type: ignore[union-attr]
    assert q.next_ready(prio, manual=False, exclude={mov.id}).id == jpg.id  # type: ignore[union-attr]


def test_reconcile_keeps_acknowledged_parts(tmp_path: Path) -> None:
    q = FileQueue(tmp_path / "q.db")
    rec, _ = _add(q, "big.mov", size=30)
    assert q.transition(rec.id, ("queued",), "uploading")
    q.set_asset(rec.id, "asset-1", [(1, 0, 10, "u1", False), (2, 10, 10, "u2", False), (3, 20, 10, "u3", True)])
    q.ack_part(rec.id, 2)
    q.close()  # like a power cut after the last commit
    q2 = FileQueue(tmp_path / "q.db")
    assert q2.reconcile() == 1
    rec2 = q2.get(rec.id)
    assert rec2 is not None and rec2.state == "queued" and rec2.asset_id == "asset-1"
    assert [p.done for p in q2.parts(rec.id)] == [False, True, False]
    assert q2.bytes_done() == {rec.id: 10}


def test_transition_is_compare_and_set(tmp_path: Path) -> None:
    q = FileQueue(tmp_path / "q.db")
    rec, _ = _add(q, "a.mp4")
    assert q.transition(rec.id, ("queued",), "uploading")
    assert not q.transition(rec.id, ("queued",), "uploading")
    with pytest.raises(ValueError):
        q.set_state(rec.id, "nonsense")
    counts = q.counts()
    assert counts["uploading"] == 1 and counts["done"] == 0


def test_commit_visible_to_other_connection(tmp_path: Path) -> None:
    q = FileQueue(tmp_path / "q.db")
    rec, _ = _add(q, "a.mp4")
    q.set_asset(rec.id, "a1", [(1, 0, 10, "u", True)])
    q.ack_part(rec.id, 1)
    other = sqlite3.connect(tmp_path / "q.db")
    assert other.execute("SELECT state FROM parts").fetchone()[0] == "done"


def test_corrupt_queue_is_a_clear_error_and_left_alone(tmp_path: Path) -> None:
    from reference_device.errors import DeviceError

    path = tmp_path / "q.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DeviceError, match="unreadable"):
        FileQueue(path)
    assert path.read_bytes() == b"this is not a database" * 100

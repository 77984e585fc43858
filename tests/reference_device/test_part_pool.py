"""The device's one pool of part slots: priority across files, no idle slot, failure and cancel.

Real threads, real events; each part "PUT" is a function that records when it ran and can
be held open until the test releases it, so the order and overlap are observed, not assumed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from reference_device.errors import Cancelled, ExpiredUrlError
from reference_device.part_pool import PartPool, PutPart, StopSignal
from reference_device.queue import Part
from tests.waiting import wait_until


def parts(count: int) -> list[Part]:
    return [Part(n, (n - 1) * 10, 10, f"https://cloud.test/p{n}", n == count, False)
            for n in range(1, count + 1)]


class Wire:
    """Records (file, part) as each PUT starts; PUTs stay open until released."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.open = 0
        self.most_open = 0
        self.lock = threading.Lock()
        self.gates: dict[tuple[str, int], threading.Event] = {}

    def gate(self, file_id: str, number: int) -> threading.Event:
        with self.lock:
            return self.gates.setdefault((file_id, number), threading.Event())

    def put(self, file_id: str, fail: set[int] | None = None) -> PutPart:
        def send(part: Part, stop: StopSignal) -> None:
            with self.lock:
                self.started.append((file_id, part.number))
                self.open += 1
                self.most_open = max(self.most_open, self.open)
            try:
                gate = self.gate(file_id, part.number)
                while not gate.wait(0.02):
                    if stop.is_set():
                        raise Cancelled("stopped mid-part")
                if fail and part.number in fail:
                    raise ExpiredUrlError(f"part {part.number} refused")
            finally:
                with self.lock:
                    self.open -= 1
        return send

    def release(self, file_id: str, *numbers: int) -> None:
        for n in numbers:
            self.gate(file_id, n).set()


@pytest.fixture
def pool() -> Iterator[PartPool]:
    drained: list[int] = []
    p = PartPool(2, on_drained=lambda: drained.append(1))
    yield p
    p.close()


def run_in_thread(pool: PartPool, file_id: str, rank: int, todo: list[Part], put: PutPart,
                  cancel: threading.Event | None = None) -> tuple[threading.Thread, list[BaseException | None]]:
    outcome: list[BaseException | None] = []

    def body() -> None:
        try:
            pool.run(file_id, rank, todo, put, cancel or threading.Event())
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, outcome


def test_a_slot_freed_by_one_file_goes_to_the_next_file_at_once(pool: PartPool) -> None:
    """File A's last part still on the wire does not hold its other slot: B's parts use it."""
    wire = Wire()
    a, a_out = run_in_thread(pool, "A", pool.rank(), parts(3), wire.put("A"))
    wait_until(lambda: len(wire.started) == 2, 5, "A's first two parts on the wire")
    assert not pool.draining("A")  # part 3 still waits for a slot
    b, b_out = run_in_thread(pool, "B", pool.rank(), parts(2), wire.put("B"))
    wire.release("A", 1)
    wait_until(lambda: len(wire.started) == 3, 5, "A's third part")
    assert wire.started[2] == ("A", 3)  # A ranks first
    wait_until(lambda: pool.draining("A"), 5, "A draining")
    wire.release("A", 2)  # A's part 3 is still open: the free slot goes to B, not idle
    wait_until(lambda: ("B", 1) in wire.started, 5, "B's first part beside A's last")
    assert wire.open == 2 and not a_out
    wire.release("A", 3)
    a.join(5)
    assert a_out == [None]
    wire.release("B", 1, 2)
    b.join(5)
    assert b_out == [None] and wire.most_open == 2
    assert sorted(wire.started) == [("A", 1), ("A", 2), ("A", 3), ("B", 1), ("B", 2)]


def test_parts_go_by_rank_not_by_arrival(pool: PartPool) -> None:
    """A higher-priority file handed over later still gets the next free slot."""
    wire = Wire()
    low_rank, high_rank = pool.rank() + 10, pool.rank()
    blocker, _ = run_in_thread(pool, "X", -1, parts(2), wire.put("X"))
    wait_until(lambda: wire.open == 2, 5, "both slots busy")
    low, _ = run_in_thread(pool, "LOW", low_rank, parts(2), wire.put("LOW"))
    wait_until(lambda: not pool.draining("LOW") and len(wire.started) == 2, 5, "LOW waiting")
    high, _ = run_in_thread(pool, "HIGH", high_rank, parts(2), wire.put("HIGH"))
    wait_until(lambda: not pool.draining("HIGH"), 5, "HIGH waiting")
    wire.release("X", 1, 2)
    wait_until(lambda: len(wire.started) == 4, 5, "two more parts")
    assert {f for f, _ in wire.started[2:]} == {"HIGH"}
    wire.release("HIGH", 1, 2)
    wire.release("LOW", 1, 2)
    for t in (blocker, low, high):
        t.join(5)
    assert [f for f, _ in wire.started[4:]] == ["LOW", "LOW"]


def test_a_failed_part_stops_its_siblings_and_is_raised_in_the_file_thread(pool: PartPool) -> None:
    wire = Wire()
    thread, outcome = run_in_thread(pool, "A", pool.rank(), parts(4), wire.put("A", fail={1}))
    wait_until(lambda: wire.open == 2, 5, "two parts on the wire")
    wire.release("A", 1)  # part 1 fails for good; part 2 sees its stop signal
    thread.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], ExpiredUrlError)
    assert sorted(wire.started) == [("A", 1), ("A", 2)]  # parts 3 and 4 never sent
    assert not pool.draining("A")  # the file left the pool


def test_cancel_drops_parts_waiting_for_a_slot(pool: PartPool) -> None:
    wire = Wire()
    blocker, _ = run_in_thread(pool, "X", pool.rank(), parts(2), wire.put("X"))
    wait_until(lambda: wire.open == 2, 5, "both slots busy")
    cancel = threading.Event()
    thread, outcome = run_in_thread(pool, "C", pool.rank(), parts(3), wire.put("C"), cancel)
    cancel.set()
    thread.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled)
    wire.release("X", 1, 2)
    blocker.join(5)
    assert all(f == "X" for f, _ in wire.started)


def test_never_more_parts_on_the_wire_than_slots() -> None:
    pool = PartPool(3)
    wire = Wire()
    try:
        threads = [run_in_thread(pool, f"F{i}", pool.rank(), parts(3), wire.put(f"F{i}"))[0] for i in range(4)]
        for i in range(4):
            wire.release(f"F{i}", 1, 2, 3)
        for t in threads:
            t.join(10)
        assert len(wire.started) == 12 and wire.most_open <= 3
    finally:
        pool.close()

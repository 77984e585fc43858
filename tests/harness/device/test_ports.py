"""The status port a software device keeps across power cuts (harness/device/ports.py)."""

from __future__ import annotations

import os
import random
import socket

from harness.device.ports import LOCK_DIR, LOWEST_PORT, PortReservation, ephemeral_low
from harness.locks import HolderLock


class _Repeats(random.Random):
    """Picks `first` once, then whatever a seeded generator picks."""

    def __init__(self, first: int) -> None:
        super().__init__(7)
        self.first: int | None = first

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:  # type: ignore[override]
        if self.first is not None:
            port, self.first = self.first, None
            return port
        return super().randrange(start, stop, step)  # type: ignore[arg-type]


def test_the_port_is_below_the_ephemeral_range_and_free() -> None:
    held = PortReservation()
    try:
        assert LOWEST_PORT <= held.port < ephemeral_low()
        with socket.socket() as s:  # the device's server binds it
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", held.port))
    finally:
        held.release()


def test_a_reserved_port_is_never_given_twice_and_comes_back_after_release() -> None:
    first = PortReservation()
    second = PortReservation(_Repeats(first.port))  # asks for the same port first
    try:
        assert second.port != first.port
        first.release()
        again = PortReservation(_Repeats(first.port))
        assert again.port == first.port
        again.release()
    finally:
        first.release()
        second.release()


def test_a_port_something_else_listens_on_is_skipped() -> None:
    taken = PortReservation()
    port = taken.port
    taken.release()
    with socket.socket() as other:  # the same port, now someone else's listener
        other.bind(("127.0.0.1", port))
        other.listen()
        picked = PortReservation(_Repeats(port))
        assert picked.port != port
        picked.release()


def test_the_reservation_names_its_holder_for_whoever_finds_it_taken() -> None:
    held = PortReservation()
    try:
        assert HolderLock(LOCK_DIR / f"{held.port}.lock").holder() == f"pid {os.getpid()}"
    finally:
        held.release()

"""A power cut inside a token refresh: the grant lost in flight, told from the cloud's journal.

The refresh token is single-use (c2c-api.md §3.3): the cloud rotates the pair when it answers
200, and a device killed before it kept the answer wakes up with a consumed refresh token.
Its refresh is refused (400 invalid_request) and pairing again is the contract's answer. No
device can close that window, so it is not the device's defect: the bench pairs it again as
its user would, once, and says so. The chaos campaign's runner does the same for its lanes,
through the same journal reading (`in_flight_refreshes`), over its link breaks as well as its
cuts. A refused refresh with no refresh in flight at a cut is the device's own doing and is
left to fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.cloud.paths import TOKEN_PATH

BEFORE_CUT_S = 0.2
"""An answer the cloud recorded this long before the kill may still have been on its way."""
AFTER_CUT_S = 0.05
"""A request recorded as arrived this long after the kill was already sent (clock grain)."""


def is_refresh(row: Mapping[str, Any]) -> bool:
    """A token-endpoint answer the cloud tied to a device: a refresh (a device-code poll has no
    device yet)."""
    return (row.get("method") == "POST" and bool(row.get("device_id"))
            and str(row.get("path") or "").split("?", 1)[0] == TOKEN_PATH)


def refresh_rows(journal: Iterable[Mapping[str, Any]], status: int) -> list[Mapping[str, Any]]:
    """The refreshes answered with `status`."""
    return [r for r in journal if r.get("status") == status and is_refresh(r)]


@dataclass
class RefreshAnswers:
    """The scenario's refreshes, read from the journal a piece at a time: the delivery wait asks
    every half second, and the journal only grows."""

    read_to: int
    """Journal id the next read starts after."""
    rows: list[Mapping[str, Any]] = field(default_factory=list)

    def update(self, journal: Callable[[int], list[dict[str, Any]]]) -> list[Mapping[str, Any]]:
        """Every refresh so far: the ones already read, plus those in rows after `read_to`."""
        fresh = journal(self.read_to)
        if fresh:
            self.read_to = max(int(r.get("id") or 0) for r in fresh)
            self.rows += [r for r in fresh if is_refresh(r)]
        return self.rows


def in_flight_refreshes(journal: Iterable[Mapping[str, Any]], windows: Iterable[tuple[float, float]],
                        ) -> Iterator[tuple[Mapping[str, Any], tuple[float, float]]]:
    """The refreshes the cloud answered 200 while they were in flight (arrived, not yet answered)
    at some moment of one of `windows`, each with that window: (start, stop) on the journal's
    clock, spans in which the device may have lost the answer (a cut's instant widened by the
    clocks' grain, a link break from start to end). The answer rotated the single-use pair."""
    spans = list(windows)
    for row in refresh_rows(journal, 200):
        answered = float(row.get("t") or 0.0)
        arrived = float(row.get("started_at") or answered)
        for start, stop in spans:
            if arrived <= stop and answered >= start:
                yield row, (start, stop)


def refresh_lost_in_cut(journal: Sequence[Mapping[str, Any]], cuts_wall: Iterable[float],
                        cloud_minus_wall: float) -> str | None:
    """Why the device's refresh was refused for a grant lost in flight, or None.

    `cuts_wall` are the moments the device lost power (wall clock); `cloud_minus_wall` maps
    them onto the journal's clock (the emulator's may have been moved). Lost in flight: a
    refresh answered 200 that had arrived by the kill and was answered no earlier than
    BEFORE_CUT_S before it, followed by a refused refresh of the same device."""
    refused = refresh_rows(journal, 400)
    if not refused:
        return None
    kills = [(t + cloud_minus_wall - BEFORE_CUT_S, t + cloud_minus_wall + AFTER_CUT_S) for t in cuts_wall]
    for row, (start, _) in in_flight_refreshes(journal, kills):
        later = [r for r in refused if r.get("device_id") == row.get("device_id")
                 and int(r.get("id") or 0) > int(row.get("id") or 0)]
        if later:
            answered = float(row.get("t") or 0.0) - (start + BEFORE_CUT_S)
            return (f"the cloud answered a token refresh 200 {answered:+.2f} s from a power "
                    "cut (the rotated pair died with the device), and the device's next refresh "
                    "was refused")
    return None

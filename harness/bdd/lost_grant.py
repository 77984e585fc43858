"""A power cut inside a token refresh: the grant lost in flight, told from the cloud's journal.

The refresh token is single-use (c2c-api.md §3.3): the cloud rotates the pair when it answers
200, and a device killed before it kept the answer wakes up with a consumed refresh token.
Its refresh is refused (400 invalid_request) and pairing again is the contract's answer. No
device can close that window, so it is not the device's defect: the bench pairs it again as
its user would, once, and says so (the chaos campaign's runner does the same for its lanes).
A refused refresh with no refresh in flight at a cut is the device's own doing and is left
to fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

TOKEN_PATH = "/v2/auth/token"
BEFORE_CUT_S = 0.2
"""An answer the cloud recorded this long before the kill may still have been on its way."""
AFTER_CUT_S = 0.05
"""A request recorded as arrived this long after the kill was already sent (clock grain)."""


def refresh_rows(journal: Iterable[Mapping[str, Any]], status: int) -> list[Mapping[str, Any]]:
    """Token-endpoint answers with `status` the cloud tied to a device: refreshes (a device-code
    poll has no device yet)."""
    return [r for r in journal if r.get("method") == "POST" and r.get("status") == status
            and str(r.get("path") or "").split("?", 1)[0] == TOKEN_PATH and r.get("device_id")]


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
    kills = [t + cloud_minus_wall for t in cuts_wall]
    for row in refresh_rows(journal, 200):
        answered = float(row.get("t") or 0.0)
        arrived = float(row.get("started_at") or answered)
        for kill in kills:
            if arrived <= kill + AFTER_CUT_S and answered >= kill - BEFORE_CUT_S:
                later = [r for r in refused if r.get("device_id") == row.get("device_id")
                         and int(r.get("id") or 0) > int(row.get("id") or 0)]
                if later:
                    return (f"the cloud answered a token refresh 200 {answered - kill:+.2f} s from a power "
                            "cut (the rotated pair died with the device), and the device's next refresh "
                            "was refused")
    return None

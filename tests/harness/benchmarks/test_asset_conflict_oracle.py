"""The oracle behind the C2C-RTY-03 409 scenarios, on journal rows: a device that backs off
passes, one that retries in a tight loop, gives up, re-pairs or replays without refreshing fails."""

from __future__ import annotations

from typing import Any

import pytest

from harness.bdd.steps.auth_oracle_steps import invalid_client_recovery, slow_down_backoff

CREATE = "/v2/devices/assets"


def journal(*calls: tuple[float, str, int] | tuple[float, str, int, float]) -> list[dict[str, Any]]:
    """Rows (t answered, path, status[, started_at]) in the emulator's journal shape."""
    rows = []
    for n, call in enumerate(calls, 1):
        row: dict[str, Any] = {"id": n, "t": call[0], "method": "POST", "path": call[1], "status": call[2]}
        if len(call) == 4:
            row["started_at"] = call[3]
        rows.append(row)
    return rows


def test_backing_off_device_accumulates_its_waits() -> None:
    rows = journal((10.0, CREATE, 409), (11.2, CREATE, 409), (13.0, CREATE, 409),
                   (14.5, CREATE, 200, 14.4), (14.6, "/v2/devices/heartbeat", 204))
    assert slow_down_backoff(rows) == (3, pytest.approx(4.4))


def test_tight_loop_device_holds_back_almost_nothing() -> None:
    rows = journal(*[(10.0 + i * 0.01, CREATE, 409) for i in range(5)], (10.3, CREATE, 200, 10.06))
    answered, held = slow_down_backoff(rows)
    assert answered == 5 and held < 0.1


def test_device_that_gave_up_met_fewer_answers() -> None:
    rows = journal((10.0, CREATE, 409), (10.5, "/v2/devices/heartbeat", 204))
    assert slow_down_backoff(rows) == (1, 0.0)
    assert slow_down_backoff([]) == (0, 0.0)


def test_without_started_at_the_answer_time_is_used() -> None:
    rows = journal((10.0, CREATE, 409), (12.0, "/v2/assets", 200))
    assert slow_down_backoff(rows) == (1, pytest.approx(2.0))


def test_refresh_then_replay_is_a_recovery() -> None:
    rows = journal((1, CREATE, 409), (2, "/v2/auth/token", 200), (3, CREATE, 200))
    assert invalid_client_recovery(rows) is None


@pytest.mark.parametrize(("rows", "why"), [
    (journal((1, CREATE, 409), (2, CREATE, 200)), "without refreshing"),
    (journal((1, CREATE, 409), (2, "/v2/auth/token", 400)), "never refreshed"),
    (journal((1, CREATE, 409), (2, "/v2/auth/token", 200)), "never replayed"),
    (journal((1, CREATE, 409), (2, "/v2/auth/device/code", 200), (3, "/v2/auth/token", 200),
             (4, CREATE, 200)), "new pairing code"),
    (journal((1, CREATE, 200)), "never answered"),
])
def test_what_is_not_a_recovery_is_named(rows: list[dict[str, Any]], why: str) -> None:
    problem = invalid_client_recovery(rows)
    assert problem is not None and why in problem

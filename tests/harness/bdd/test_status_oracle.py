"""The status oracle: remaining files/bytes against the cloud's ledger, bracketed samples."""

from __future__ import annotations

from dataclasses import dataclass

from harness.bdd.steps.status_oracle import (
    Remaining,
    RemainingSampler,
    band_error,
    counter_mismatches,
    one_part,
    remaining,
    state_mismatches,
)


@dataclass
class Cap:
    name: str
    size: int
    corruption: str | None = None


CAPS = [Cap("A", 100), Cap("B", 100), Cap("C", 50, corruption="zero-length")]


def test_remaining_counts_unfinished_and_unstored_bytes() -> None:
    rows = [{"name": "A", "completed_at": 5.0, "bytes_stored": 100},
            {"name": "B", "completed_at": None, "bytes_stored": 40, "parts_expected": 2}]
    assert remaining(CAPS, rows) == Remaining(count=1, nbytes=60, in_flight=60)
    assert remaining(CAPS, []) == Remaining(count=2, nbytes=200, in_flight=0)
    assert one_part(CAPS, rows) == 100  # A and C single-part, B 50 per part


def test_band_error() -> None:
    assert band_error(3, 2, 4) == 0 and band_error(6, 2, 4) == 2 and band_error(0, 2, 4) == 2


def test_a_stale_counter_is_an_error_a_lagging_one_is_not() -> None:
    """Point 11: the device's value is judged against the cloud's just before/after it."""
    states = iter([Remaining(4, 400, 0), Remaining(4, 400, 0), Remaining(0, 0, 0), Remaining(0, 0, 0)])
    shown = iter([{"queue": {"remaining_count": 4, "remaining_bytes": 400}},
                  {"queue": {"remaining_count": 4, "remaining_bytes": 400}}])
    sampler = RemainingSampler(lambda: next(states), lambda: next(shown))
    assert sampler.sample()[:2] == (0, 0)
    sampler.history = [(t - 5.0, r) for t, r in sampler.history]  # the cloud finished long ago
    count_err, bytes_err, _ = sampler.sample()
    assert count_err == 4 and bytes_err == 400 and sampler.count_error == 4


def test_listed_states_against_the_cloud() -> None:
    """Point 11 (STAT-04): refused media shown as done, keys all present, is a mismatch."""
    outcomes = {"A": "intact", "C": "rejected"}
    files = [{"name": "A", "state": "done"}, {"name": "C", "state": "done"}]
    assert state_mismatches(outcomes, files) == ["C: shown 'done', cloud says rejected"]
    assert state_mismatches(outcomes, [{"name": "A", "state": "done"}, {"name": "C", "state": "quarantined"}]) == []
    assert counter_mismatches({"completed": 5, "failed": 0, "quarantined": 0}, outcomes) == [
        "failed+quarantined counter 0 < 1 not delivered"]

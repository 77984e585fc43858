from __future__ import annotations

import random
import threading

import pytest

from reference_device.errors import Cancelled, FatalUploadError, RetryableError
from reference_device.retry import Backoff, RetryBudget, retry_call


def test_full_jitter_bounds() -> None:
    b = Backoff(base=0.5, cap=4.0, rng=random.Random(1))
    for attempt in range(12):
        ceiling = min(4.0, 0.5 * 2**attempt)
        delays = [b.delay(attempt) for _ in range(50)]
        assert all(0 <= d <= ceiling for d in delays)
    assert b.delay(3, retry_after=3.5) >= 3.5
    assert b.delay(0, budget_ok=False) == 4.0


def test_budget_spends_and_refills() -> None:
    budget = RetryBudget(capacity=10, refill_per_second=0.0)
    assert budget.acquire() and budget.acquire()
    assert not budget.acquire()
    for _ in range(5):
        budget.success()
    assert budget.acquire()
    assert not RetryBudget(capacity=9, refill_per_second=0.0).acquire(timeout=True)


def test_retry_call_recovers_and_counts() -> None:
    calls = {"n": 0}
    seen: list[int] = []

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 4:
            raise RetryableError("transient")
        return "ok"

    result = retry_call(flaky, backoff=Backoff(0.001, 0.002), budget=RetryBudget(),
                        stop=threading.Event(), on_retry=lambda e, a, w: seen.append(a))
    assert result == "ok" and seen == [1, 2, 3]


def test_retry_call_fatal_passes_and_stop_cancels() -> None:
    def fatal() -> None:
        raise FatalUploadError("bad")

    with pytest.raises(FatalUploadError):
        retry_call(fatal, backoff=Backoff(0.001, 0.002), budget=RetryBudget(), stop=threading.Event())
    stop = threading.Event()

    def always() -> None:
        stop.set()
        raise RetryableError("x")

    with pytest.raises(Cancelled):
        retry_call(always, backoff=Backoff(5, 10), budget=RetryBudget(), stop=stop)

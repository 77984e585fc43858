"""Full-jitter capped exponential backoff and a global retry budget (botocore style).

A device must never drop a file, so an exhausted budget does not fail the request: it slows
every retry down to the cap until successes refill the bucket.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from reference_device.errors import Cancelled, RetryableError


class StopFlag(Protocol):
    """What a wait can be cut short by: a threading.Event, or a part's stop signal (its
    file cancelled or a sibling part failed for good)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class RetryBudget:
    """Token bucket shared by all requests: retries cost, successes (and time) refill."""

    RETRY_COST = 5
    TIMEOUT_COST = 10
    SUCCESS_REFILL = 1

    def __init__(self, capacity: int = 500, refill_per_second: float = 1.0) -> None:
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self._tokens = float(capacity)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.refill_per_second)
        self._stamp = now

    def acquire(self, timeout: bool = False) -> bool:
        """Take the cost of one retry; False when the budget is spent."""
        cost = self.TIMEOUT_COST if timeout else self.RETRY_COST
        with self._lock:
            self._refill()
            if self._tokens < cost:
                return False
            self._tokens -= cost
            return True

    def success(self) -> None:
        with self._lock:
            self._refill()
            self._tokens = min(self.capacity, self._tokens + self.SUCCESS_REFILL)

    @property
    def tokens(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens


class RateLimiter:
    """Caps bytes per second across all part uploads (0 = unlimited); blocks the caller."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def take(self, nbytes: int, stop: StopFlag | None = None) -> None:
        """Wait for `nbytes` of budget; a set `stop` ends the wait early (cancel)."""
        if self.rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + nbytes / self.rate
            delay = start - now
        if delay > 0:
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)


@dataclass
class Backoff:
    """Full jitter: sleep uniform(0, min(cap, base * 2**attempt))."""

    base: float = 0.5
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None = None, budget_ok: bool = True) -> float:
        if not budget_ok:
            return self.cap
        ceiling = min(self.cap, self.base * (2 ** min(attempt, 30)))
        wait = self.rng.uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.cap * 4))
        return wait


def retry_call[T](
    fn: Callable[[], T],
    *,
    backoff: Backoff,
    budget: RetryBudget,
    stop: StopFlag,
    on_retry: Callable[[RetryableError, int, float], None] | None = None,
    max_attempts: int | None = None,
) -> T:
    """Call `fn` until it succeeds or raises a non-retryable error.

    RetryableError -> wait (interruptibly on `stop`) and call again. `stop` set -> Cancelled.
    """
    attempt = 0
    while True:
        if stop.is_set():
            raise Cancelled("stopped")
        try:
            result = fn()
        except RetryableError as exc:
            attempt += 1
            if max_attempts is not None and attempt >= max_attempts:
                raise
            ok = budget.acquire(timeout=exc.timeout)
            wait = backoff.delay(attempt - 1, exc.retry_after, ok)
            if on_retry is not None:
                on_retry(exc, attempt, wait)
            if stop.wait(wait):
                raise Cancelled("stopped") from None
            continue
        budget.success()
        return result

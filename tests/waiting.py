"""The one way tests wait: poll a condition until it holds, with a deadline and a reason."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until[T](
    condition: Callable[[], T], timeout: float = 10.0, what: str = "condition", *, interval: float = 0.02
) -> T:
    """Return the first truthy value of `condition()`; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)

"""Network health from the outcomes of recent requests (what the status page shows)."""

from __future__ import annotations

import threading
import time
from collections import deque


class NetworkStats:
    """Sliding record of request outcomes and bytes sent; cheap and thread-safe."""

    def __init__(self, kind: str = "unknown", window: float = 10.0) -> None:
        self.kind = kind
        self.window = window
        self._lock = threading.Lock()
        self._outcomes: deque[tuple[float, bool]] = deque(maxlen=20)
        self._sent: deque[tuple[float, int]] = deque()
        self.last_error: str | None = None
        self.last_ok_at: float = 0.0

    def record(self, ok: bool, error: str | None = None) -> None:
        now = time.time()
        with self._lock:
            self._outcomes.append((now, ok))
            if ok:
                self.last_ok_at = now
            else:
                self.last_error = error

    def sent(self, nbytes: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._sent.append((now, nbytes))
            while self._sent and self._sent[0][0] < now - self.window:
                self._sent.popleft()

    def throughput_bps(self) -> int:
        now = time.monotonic()
        with self._lock:
            while self._sent and self._sent[0][0] < now - self.window:
                self._sent.popleft()
            total = sum(n for _, n in self._sent)
        return int(total * 8 / self.window)

    def health(self) -> str:
        with self._lock:
            recent = list(self._outcomes)[-6:]
        if not recent:
            return "good"
        failures = sum(1 for _, ok in recent if not ok)
        if not recent[-1][1] and failures >= min(3, len(recent)):
            return "down"
        return "good" if failures == 0 else "degraded"

    def snapshot(self) -> dict[str, object]:
        health = self.health()
        return {
            "online": health != "down",
            "type": self.kind,
            "throughput_bps": self.throughput_bps(),
            "health": health,
            "last_error": self.last_error,
        }

"""Uploads one queued file: basic (known size) or real-time (growing) — c2c-api.md §5.

Parts are streamed from disk in 1 MiB slices (reference_device.part_reader, which keeps
them out of the page cache) with an exact Content-Length, so memory stays flat whatever the
file size. Every acknowledged part is committed to the queue before the
uploader moves on; a restart re-sends only unacknowledged parts, re-creating the asset only
when its URLs have expired.

No step holds a worker without bound: an asset create gets CREATE_ATTEMPTS tries and each
upload URL PART_ATTEMPTS_PER_URL tries. When a URL's tries are spent its expiry is checked
(X-Amz-Date + X-Amz-Expires, else the time the asset was created): an expired or unusable
URL (e.g. not HTTPS) gets a fresh asset create (c2c-api.md §5.3, §5.8); a live one defers
the file (a RetryableError to the engine, which requeues it with a per-file backoff), so a
file whose URLs cannot be reached never blocks the files captured after it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from reference_device.api import ApiClient
from reference_device.config import DeviceConfig
from reference_device.errors import (
    Cancelled,
    ExpiredUrlError,
    FatalUploadError,
    MediaError,
    RetryableError,
    UnusableUrlError,
)
from reference_device.media_check import check_file
from reference_device.netstats import NetworkStats
from reference_device.part_pool import PartPool
from reference_device.part_reader import file_slices
from reference_device.queue import FileQueue, FileRecord, Part
from reference_device.retry import Backoff, RateLimiter, RetryBudget, StopFlag, retry_call
from reference_device.tokens import TokenManager

log = logging.getLogger(__name__)
MAX_PARTS = 10_000
MAX_RECREATES = 3
URL_SAFETY = 600.0
CREATE_ATTEMPTS = 6
"""Tries of one asset create before the file is deferred (the worker is freed)."""
PART_ATTEMPTS_PER_URL = 6
"""Tries of one upload URL before its expiry is checked and the file recreated or deferred."""
DEFERRALS_PER_URL = 3
"""A live URL that spent its tries this many times (across deferrals) is given up: a fresh
asset create, as for an expired URL (a bogus host or port never starts working)."""
T = TypeVar("T")


def url_expires_at(url: str) -> float | None:
    """When a pre-signed URL stops working (X-Amz-Date + X-Amz-Expires), if it says."""
    try:
        query = parse_qs(urlsplit(url).query)
        signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return signed.timestamp() + float(query["X-Amz-Expires"][0])
    except (KeyError, IndexError, ValueError):
        return None


def basic_layout(size: int, n_urls: int) -> list[tuple[int, int, int]]:
    """(number, offset, size) per URL: chunk = ceil(size / n), last part the remainder."""
    chunk = math.ceil(size / n_urls)
    layout = []
    for i in range(n_urls):
        start = i * chunk
        layout.append((i + 1, start, max(0, min(chunk, size - start))))
    return layout


class Uploader:
    """Shared by the engine's file workers; one `upload()` call per file, whose parts go
    through the one PartPool of the device (at most `parallelism` part PUTs at a time)."""

    def __init__(
        self,
        config: DeviceConfig,
        api: ApiClient,
        tokens: TokenManager,
        queue: FileQueue,
        stats: NetworkStats,
        *,
        pool: PartPool,
        budget: RetryBudget,
    ) -> None:
        self.config = config
        self.api = api
        self.tokens = tokens
        self.queue = queue
        self.stats = stats
        self.pool = pool
        self._ranks: dict[str, int] = {}  # file id -> its rank in the pool (hand-over order)
        self.budget = budget
        self.backoff = Backoff(config.backoff_base, config.backoff_cap)
        self._progress: dict[str, int] = {}
        self._plock = threading.Lock()
        self.retries = 0
        self.limiter = RateLimiter(config.max_upload_rate)
        self._url_failures: dict[str, int] = {}  # upload URL -> times its tries were spent

    # --- helpers ---------------------------------------------------------------------------
    def progress(self, file_id: str) -> int | None:
        with self._plock:
            return self._progress.get(file_id)

    def _add_progress(self, file_id: str, n: int, cancel: StopFlag | None = None) -> None:
        self.limiter.take(n, cancel)
        with self._plock:
            self._progress[file_id] = self._progress.get(file_id, 0) + n
        self.stats.sent(n)

    def _retry(self, fn: Callable[[], T], cancel: StopFlag, what: str,
               max_attempts: int | None = CREATE_ATTEMPTS) -> T:
        def on_retry(exc: RetryableError, attempt: int, wait_s: float) -> None:
            self.retries += 1
            log.warning("%s failed (%s), attempt %d, retry in %.2fs", what, exc, attempt, wait_s)
        return retry_call(fn, backoff=self.backoff, budget=self.budget, stop=cancel, on_retry=on_retry,
                          max_attempts=max_attempts)

    def _offset(self, rec: FileRecord) -> float:
        """Seconds since capture, at the moment of the create call (ms precision).

        The cloud derives the capture time as its now - offset and holds media captured
        inside a pause window, so it must be computed per attempt, never reused.
        """
        return round(max(0.0, time.time() - rec.captured_at), 3)

    def _create(self, rec: FileRecord, body: dict[str, Any], cancel: threading.Event, what: str) -> dict[str, Any]:
        def attempt() -> dict[str, Any]:
            fresh = {**body, "offset": self._offset(rec)}
            return self.tokens.call(lambda t: self.api.create_asset(t, fresh))
        return self._retry(attempt, cancel, what)

    def _url_expired(self, rec: FileRecord, url: str) -> bool:
        expires = url_expires_at(url)
        if expires is None:
            expires = (rec.urls_created_at or 0) + self.config.url_ttl
        return time.time() >= expires - min(URL_SAFETY, self.config.url_ttl / 4)

    def _put(self, rec: FileRecord, part: Part, cancel: StopFlag) -> None:
        """PUT one part with bounded retries; ack it durably.

        ExpiredUrlError (expired, or unusable such as not HTTPS) propagates for a fresh
        asset create; a live URL whose tries are spent defers the file (RetryableError).
        """
        path = Path(rec.path)
        url = part.url or ""
        if not url.lower().startswith("https://"):
            scheme = url.split("://", 1)[0] if "://" in url else "no scheme"
            raise UnusableUrlError(f"upload URL of part {part.number} of {rec.name} refused: "
                                   f"not HTTPS ({scheme})", code="not_https")

        def attempt() -> None:
            with self._plock:
                base = self._progress.get(rec.id, 0)
            try:
                body = file_slices(path, part.offset, part.size, cancel,
                                   lambda n: self._add_progress(rec.id, n, cancel))
                self.api.put_part(part.url or "", body, part.size, rec.filetype)
            except FileNotFoundError:
                raise MediaError("vanished", f"{path.name} disappeared while uploading") from None
            except PermissionError:
                raise MediaError("unreadable", f"{path.name}: permission denied") from None
            except BaseException:
                with self._plock:
                    self._progress[rec.id] = base
                raise
        what = f"PUT part {part.number} of {rec.name}"
        try:
            self._retry(attempt, cancel, what, max_attempts=PART_ATTEMPTS_PER_URL)
        except RetryableError as exc:
            with self._plock:
                spent = self._url_failures[url] = self._url_failures.get(url, 0) + 1
            if self._url_expired(rec, url) or spent >= DEFERRALS_PER_URL:
                with self._plock:
                    self._url_failures.pop(url, None)
                why = "the URL has expired" if self._url_expired(rec, url) else f"{spent} rounds"
                raise UnusableUrlError(f"{what}: {PART_ATTEMPTS_PER_URL} tries failed, {why} ({exc})",
                                       code="expired_url") from None
            raise RetryableError(f"{what}: {PART_ATTEMPTS_PER_URL} tries failed ({exc}); "
                                 "file deferred", status=exc.status) from None
        with self._plock:
            self._url_failures.pop(url, None)
        self.queue.ack_part(rec.id, part.number)

    # --- entry point -----------------------------------------------------------------------
    def upload(self, rec: FileRecord, cancel: threading.Event) -> None:
        """Upload `rec` to completion. Raises MediaError, ChannelPaused, FatalUploadError,
        RepairNeeded/AuthError or Cancelled; the engine maps them to queue states."""
        done = sum(p.size for p in self.queue.parts(rec.id) if p.done)
        with self._plock:
            self._progress[rec.id] = done
            self._ranks[rec.id] = self.pool.rank()  # claimed in priority order
        try:
            if rec.realtime:
                self._realtime(rec, cancel)
            else:
                self._basic(rec, cancel)
        finally:
            with self._plock:
                self._progress.pop(rec.id, None)
                self._ranks.pop(rec.id, None)

    # --- basic -----------------------------------------------------------------------------
    def _urls_fresh(self, rec: FileRecord) -> bool:
        created = rec.urls_created_at or 0
        return time.time() < created + self.config.url_ttl - min(URL_SAFETY, self.config.url_ttl / 4)

    def _create_basic(self, rec: FileRecord, cancel: threading.Event) -> FileRecord:
        # floor: every non-final part is at least part_size (>= the 5 MiB S3 minimum)
        n = max(1, min(MAX_PARTS, rec.size // self.config.part_size))
        body = {"name": rec.name, "filetype": rec.filetype, "filesize": rec.size, "parts": n}
        asset = self._create(rec, body, cancel, f"create asset {rec.name}")
        urls = asset["upload_urls"]  # checked by the API layer (a list of strings)
        layout = basic_layout(rec.size, len(urls))
        self.queue.set_asset(rec.id, str(asset["id"]),
                             [(num, off, sz, str(u), num == len(urls)) for (num, off, sz), u in zip(layout, urls, strict=True)])
        with self._plock:
            self._progress[rec.id] = 0
        log.info("asset created for %s (%d parts)", rec.name, len(urls))
        fresh = self.queue.get(rec.id)
        assert fresh is not None
        return fresh

    def _basic(self, rec: FileRecord, cancel: threading.Event) -> None:
        path = Path(rec.path)
        size = check_file(path)
        st = os.stat(path)
        if size != rec.size or st.st_mtime_ns != rec.mtime_ns:
            if rec.asset_id:
                raise MediaError("modified", f"{path.name} changed after its upload started")
            self.queue.set_size(rec.id, size, st.st_mtime_ns)
            rec = self.queue.get(rec.id) or rec
        for _ in range(MAX_RECREATES + 1):
            if not rec.asset_id or not self.queue.parts(rec.id) or not self._urls_fresh(rec):
                rec = self._create_basic(rec, cancel)
            pending = [p for p in self.queue.parts(rec.id) if not p.done and p.size > 0]
            try:
                self._run_parts(rec, pending, cancel)
                return
            except ExpiredUrlError as exc:
                log.warning("upload URLs of %s unusable (%s); re-creating the asset", rec.name, exc)
                rec = self._forget_asset(rec)
        raise RetryableError(f"upload URLs of {rec.name} kept expiring or failing; file deferred")

    def _forget_asset(self, rec: FileRecord) -> FileRecord:
        self.queue.set_asset(rec.id, "", [])
        fresh = self.queue.get(rec.id)
        assert fresh is not None
        return fresh

    def _run_parts(self, rec: FileRecord, parts: list[Part], cancel: threading.Event) -> None:
        """Send `parts` through the device's part slots; return when the last one landed."""
        self._send(rec, parts, cancel)

    def _send(self, rec: FileRecord, parts: list[Part], cancel: threading.Event) -> None:
        with self._plock:
            rank = self._ranks.get(rec.id)
        if rank is None:  # not inside upload() (a direct call): ranked behind what is in flight
            rank = self.pool.rank()
        self.pool.run(rec.id, rank, parts, lambda part, stop: self._put(rec, part, stop), cancel)

    # --- real-time -------------------------------------------------------------------------
    def _realtime(self, rec: FileRecord, cancel: threading.Event) -> None:
        path = Path(rec.path)
        psize = self.config.part_size
        if not rec.asset_id:
            body: dict[str, Any] = {"name": rec.name, "filetype": rec.filetype, "is_realtime_upload": True}
            asset = self._create(rec, body, cancel, f"create real-time asset {rec.name}")
            self.queue.set_asset(rec.id, str(asset["id"]), [])
            rec = self.queue.get(rec.id) or rec
            log.info("real-time asset created for %s", rec.name)
        asset_id = rec.asset_id or ""
        started = time.time()
        last_size, last_change = -1, time.time()
        while True:
            if cancel.is_set():
                raise Cancelled("cancelled")
            parts = self.queue.parts(rec.id)
            for part in parts:  # registered earlier (before a restart) but not yet acknowledged
                if not part.done:
                    self._put_rt(rec, asset_id, part, cancel, parts)
            parts = self.queue.parts(rec.id)
            if any(p.is_final for p in parts):
                if all(p.done for p in parts):
                    return
                continue
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                raise MediaError("vanished", f"{path.name} disappeared while recording") from None
            now = time.time()
            if size != last_size:
                last_size, last_change = size, now
            end = max([p.offset + p.size for p in parts if p.number >= 2], default=psize)
            if size >= end + psize + 1:
                number = max([p.number for p in parts if p.number >= 2], default=1) + 1
                self._register(rec, asset_id, [(number, end, psize, False)], None, cancel)
                continue
            if now - last_change >= self.config.quiet_period:
                if size == 0:
                    raise MediaError("zero_length", path.name)
                check_file(path)
                self.queue.set_size(rec.id, size, os.stat(path).st_mtime_ns)
                if size <= psize:
                    final = [(1, 0, size, True)]
                elif end >= size:  # cannot happen: middles always leave >= 1 byte
                    raise FatalUploadError(f"{path.name} shrank while recording")
                else:
                    number = max([p.number for p in parts], default=1) + 1
                    final = [(1, 0, psize, False), (number, end, size - end, True)]
                self._register(rec, asset_id, final, size, cancel)
                continue
            if now - started > self.config.max_growth_time:
                raise MediaError("endlessly_growing", f"{path.name} grew for over {self.config.max_growth_time:.0f}s")
            cancel.wait(min(0.5, self.config.quiet_period / 4))

    def _register(self, rec: FileRecord, asset_id: str, parts: list[tuple[int, int, int, bool]],
                  total: int | None, cancel: threading.Event) -> None:
        body: dict[str, Any] = {"parts": [{"number": n, "size": s, "is_final": f} for n, _, s, f in parts]}
        if total is not None:
            body["asset_filesize"] = total
        urls = self._retry(
            lambda: self.tokens.call(lambda t: self.api.register_parts(t, asset_id, body)),
            cancel, f"register real-time parts of {rec.name}",
        )
        self.queue.add_parts(rec.id, [(n, o, s, u, f) for (n, o, s, f), u in zip(parts, urls, strict=True)])

    def _put_rt(self, rec: FileRecord, asset_id: str, part: Part, cancel: threading.Event,
                parts: list[Part]) -> None:
        for _ in range(MAX_RECREATES + 1):
            try:
                self._send(rec, [part], cancel)
                return
            except ExpiredUrlError:
                total = sum(p.size for p in parts) if part.is_final else None
                self._register(rec, asset_id, [(part.number, part.offset, part.size, part.is_final)],
                               total, cancel)
                part = next(p for p in self.queue.parts(rec.id) if p.number == part.number)
        raise RetryableError(f"real-time part URLs of {rec.name} kept expiring; file deferred")

"""The console stand-in's main loop: watch a folder, queue stable files, upload them.

    C2C_CONSOLE_SECRET=... python -m tests.console_device.device --api URL --ca CA.pem \\
        --watch DIR --state DIR --client-id ID [--defect NAME]

Threads: the main one scans the folder and keeps the token and the heartbeat (every 60 s,
the contract's floor); one uploader takes files in capture order, each in up to 4 parallel
part PUTs. A bad object (vanished, unreadable, directory, FIFO, dangling symlink, empty)
is logged once and skipped; it never holds the queue. Local media is never deleted.
Defects (mutant matrix only): restart-from-zero, forget-queue, stall-behind-bad-file.
"""

from __future__ import annotations

import argparse
import math
import mimetypes
import os
import signal
import stat
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.console_device.api import VERSION, Api, Paused, Rejected, Stopped, Unpaired, backoff, log
from tests.console_device.queue import DONE, FAILED, HELD, QUEUED, UPLOADING, DurableQueue, Entry
from tests.console_device.sealed import SealedStore

DEFECTS = frozenset({"restart-from-zero", "forget-queue", "stall-behind-bad-file"})
# The S3 minimum, so a file has more parts than there are workers: one wave of four equal 8 MiB
# parts left a lossy uplink idle behind the slowest of them (C2C-NETW-01 measured 0.34-0.66 of
# the capacity from run to run); the part count is asked for explicitly.
PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
PARALLEL_PARTS = 4
STABLE_S = 2.0  # a file is uploaded once its size and mtime held this long (never while growing)
SCAN_S = 0.5
HEARTBEAT_S = 60.0
MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".mov": "video/quicktime", ".mp4": "video/mp4",
        ".wav": "audio/wav", ".heic": "image/heic", ".heif": "image/heif", ".tif": "image/tiff",
        ".tiff": "image/tiff", ".dng": "image/x-adobe-dng", ".cube": "text/plain", ".mxf": "application/mxf",
        ".raf": "image/x-fujifilm-raf", ".r3d": "application/octet-stream"}


class BadMedia(Exception):
    """The file cannot be read (gone, unreadable, not a regular file): skip it, go on."""


class UrlExpired(Exception):
    """S3 refused a part with an expired URL: the asset has to be created again."""


def filetype_of(name: str) -> str:
    ext = Path(name).suffix.lower()
    return MIME.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"


class Device:
    def __init__(self, args: argparse.Namespace, secret: str) -> None:
        self.watch, self.state = Path(args.watch), Path(args.state)
        self.defect: str | None = args.defect
        self.stop = threading.Event()
        self.api = Api(args.api, args.ca, args.client_id, secret, SealedStore(self.state / "credentials.sealed", secret),
                       self.stop)
        self.api.on_identity = self._identity
        self.queue = DurableQueue(self.state / "queue.json", durable=self.defect != "forget-queue",
                                  durable_parts=self.defect != "restart-from-zero")
        self._candidates: dict[str, tuple[int, int, float]] = {}  # key -> (size, mtime_ns, since)
        self._skipped: dict[str, tuple[int, int]] = {}  # bad objects logged once, until they change
        self._project: str | None = None
        self._wake = threading.Event()

    # --- what the console shows --------------------------------------------------------------
    def _identity(self, me: dict[str, Any]) -> None:
        project = me.get("project") or {}
        shown = f"{project.get('name')} ({me.get('project_id') or project.get('id')})"
        if shown != self._project:
            self._project = shown
            log(f"PROJECT: {shown}; device {me.get('name')!r}, status {me.get('status')}")

    def _summary(self) -> str:
        c = self.queue.counts()
        return ", ".join(f"{k} {c.get(k, 0)}" for k in (QUEUED, UPLOADING, DONE, FAILED, HELD))

    # --- folder scan -------------------------------------------------------------------------
    def _skip_once(self, key: str, sig: tuple[int, int], why: str) -> None:
        if self._skipped.get(key) != sig:
            self._skipped[key] = sig
            log(f"SKIPPED {key}: {why}; the queue goes on")

    def scan(self) -> None:
        """Queue every regular, non-empty file whose size and mtime held STABLE_S."""
        now = time.monotonic()
        for root, dirs, files in os.walk(self.watch, followlinks=False):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for fname in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                if fname.startswith("."):
                    continue
                path = Path(root, fname)
                key = str(path.relative_to(self.watch))
                if self.queue.known(key):
                    continue
                try:
                    st = path.stat()  # follows a symlink: a dangling one raises
                except OSError as exc:
                    if self.defect == "stall-behind-bad-file":  # seeded defect: every name is a clip
                        self._queue_blindly(key, path)
                        continue
                    self._skip_once(key, (-1, -1), f"cannot stat ({exc.strerror or type(exc).__name__})")
                    continue
                sig = (st.st_size, st.st_mtime_ns)
                if not stat.S_ISREG(st.st_mode):
                    if self.defect == "stall-behind-bad-file":
                        self._queue_blindly(key, path)
                        continue
                    self._skip_once(key, sig, "not a regular file")
                    continue
                seen = self._candidates.get(key)
                if seen is None or seen[:2] != sig:
                    self._candidates[key] = (*sig, now)
                    continue
                if now - seen[2] < STABLE_S:
                    continue
                if st.st_size == 0:
                    self._skip_once(key, sig, "empty file")
                    continue
                del self._candidates[key]
                self._skipped.pop(key, None)
                self.queue.add(Entry(key=key, name=path.name, size=st.st_size, mtime=st.st_mtime,
                                     filetype=filetype_of(path.name)))
                log(f"QUEUED {key} ({st.st_size} bytes); {self._summary()}")
                self._wake.set()

    def _queue_blindly(self, key: str, path: Path) -> None:
        """The stall defect's naive scan: whatever stands in the folder is queued as a clip
        (a dangling symlink, a folder, a FIFO), and its upload is then retried forever."""
        self.queue.add(Entry(key=key, name=path.name, size=0, mtime=time.time(), filetype=filetype_of(path.name)))
        log(f"QUEUED {key} (unchecked); {self._summary()}")
        self._wake.set()

    # --- uploads -----------------------------------------------------------------------------
    def uploader(self) -> None:
        while not self.stop.is_set():
            entry = self.queue.next_queued()
            if entry is None or not self.api.paired:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            try:
                self.upload(entry)
            except (Stopped, Unpaired):
                self.queue.update(entry, state=QUEUED)
                self.stop.wait(0.5)
            except Exception as exc:  # a bug must not end the uploader: fail this file, keep going
                self.queue.update(entry, state=FAILED, reason=f"internal error {type(exc).__name__}")
                log(f"FAILED {entry.key}: internal error {type(exc).__name__}; the queue goes on")

    def upload(self, entry: Entry) -> None:
        self.queue.update(entry, state=UPLOADING)
        try:
            for _ in range(5):  # an expired URL means a new asset; give up after a few
                try:
                    self._send(entry)
                    self.queue.update(entry, state=DONE, reason=None)
                    log(f"UPLOADED {entry.key} ({entry.size} bytes); {self._summary()}")
                    return
                except UrlExpired:
                    log(f"{entry.key}: upload URL expired; creating the asset again")
                    self.queue.update(entry, asset_id=None, urls=[], parts_done=[])
            self.queue.update(entry, state=FAILED, reason="upload URLs kept expiring")
        except BadMedia as exc:
            if self.defect == "stall-behind-bad-file":
                # seeded defect: the head of the queue is retried forever, nothing behind it moves
                log(f"{entry.key}: cannot read ({exc}); retrying")
                self.queue.update(entry, state=QUEUED)
                self.stop.wait(2.0)
                return
            self.queue.update(entry, state=FAILED, reason=str(exc))
            log(f"FAILED {entry.key}: {exc}; skipped, the queue goes on; {self._summary()}")
        except Paused:
            self.queue.update(entry, state=HELD, reason="captured while the device was paused")
            log(f"HELD {entry.key}: captured while paused in Frame.io; kept locally, not uploaded")
        except Rejected as exc:
            self.queue.update(entry, state=FAILED, reason=str(exc))
            log(f"FAILED {entry.key}: the API refused it ({exc}); {self._summary()}")

    def _check_file(self, entry: Entry) -> os.stat_result:
        path = self.watch / entry.key
        try:
            st = path.stat()
        except OSError as exc:
            raise BadMedia(exc.strerror or type(exc).__name__) from None
        if not stat.S_ISREG(st.st_mode):
            raise BadMedia("no longer a regular file")
        return st

    def _send(self, entry: Entry) -> None:
        st = self._check_file(entry)
        if st.st_size != entry.size:  # changed since it was queued: start its upload over
            self.queue.update(entry, size=st.st_size, mtime=st.st_mtime, asset_id=None, urls=[], parts_done=[])
        if entry.asset_id is None:
            self._create(entry)
        n = len(entry.urls)
        chunk = math.ceil(entry.size / n)
        todo = [i for i in range(n) if i not in entry.parts_done]
        if todo and entry.parts_done:
            log(f"{entry.key}: resuming at {len(entry.parts_done)} of {n} parts done")
        with ThreadPoolExecutor(max_workers=PARALLEL_PARTS, thread_name_prefix="part") as pool:
            futures = [pool.submit(self._put, entry, i, chunk) for i in todo]
            errors = [f.exception() for f in futures]
        for exc in errors:
            if exc is not None:
                raise exc

    def _create(self, entry: Entry) -> None:
        # offset: seconds since capture (the cloud withholds media captured inside a pause)
        parts = max(1, min(MAX_PARTS, entry.size // PART_SIZE))
        r = self.api.call("POST", "/v2/devices/assets", json={
            "name": entry.name, "filetype": entry.filetype, "filesize": entry.size, "parts": parts,
            "offset": round(max(0.0, time.time() - entry.mtime), 3)}, answer=("id", "upload_urls"))
        body = r.json()
        urls = body.get("upload_urls")
        if not isinstance(urls, list) or not urls:
            raise Rejected("asset created without upload URLs")
        self.queue.update(entry, asset_id=str(body.get("id")), urls=[str(u) for u in urls], parts_done=[])

    def _read(self, entry: Entry, index: int, chunk: int) -> bytes:
        try:
            fd = os.open(self.watch / entry.key, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise BadMedia(exc.strerror or type(exc).__name__) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BadMedia("no longer a regular file")
            want = min(chunk, entry.size - index * chunk)
            data = os.pread(fd, want, index * chunk)
        except OSError as exc:
            raise BadMedia(exc.strerror or type(exc).__name__) from None
        finally:
            os.close(fd)
        if len(data) != want:
            raise BadMedia(f"file shrank while uploading ({len(data)} of {want} bytes of part {index + 1})")
        return data

    def _put(self, entry: Entry, index: int, chunk: int) -> None:
        """PUT one part until S3 says 200; retry 5xx, RequestTimeout and network errors with backoff."""
        data = self._read(entry, index, chunk)
        headers = {"Content-Type": entry.filetype, "x-amz-acl": "private"}
        attempt = 0
        while True:
            if self.stop.is_set():
                raise Stopped
            try:
                r = self.api.http.put(entry.urls[index], content=data, headers=headers,
                                      timeout=httpx.Timeout(60.0, connect=10.0))
            except httpx.HTTPError as exc:
                why = type(exc).__name__
            else:
                if r.status_code == 200:
                    self.queue.ack_part(entry, index)
                    return
                if r.status_code == 403 and "expired" in r.text.lower():
                    raise UrlExpired
                if r.status_code == 404:
                    raise UrlExpired  # the upload is gone server-side: a new asset
                why = f"{r.status_code} {_s3_code(r.text)}"
                if r.status_code == 400 and ("BadDigest" in r.text or "IncompleteBody" in r.text):
                    data = self._read(entry, index, chunk)
            wait = backoff(attempt + 1, cap=30.0 if why.startswith("503") else 8.0)
            log(f"{entry.key} part {index + 1}: {why}; retrying in {wait:.1f} s")
            if self.stop.wait(wait):
                raise Stopped
            attempt += 1

    # --- presence and tokens -----------------------------------------------------------------
    def keeper(self) -> None:
        """Pair when needed; refresh ahead of expiry; heartbeat every HEARTBEAT_S."""
        next_beat = 0.0
        while not self.stop.is_set():
            try:
                if not self.api.paired:
                    self.api.pair()
                    self.api.identify()
                    next_beat = 0.0
                    self._wake.set()
                if self.api.due():
                    self.api.refresh()
                if time.monotonic() >= next_beat:
                    self.api.heartbeat()
                    next_beat = time.monotonic() + HEARTBEAT_S
            except Unpaired:
                continue
            except Stopped:
                return
            except Rejected as exc:
                log(f"heartbeat refused: {exc}")
                next_beat = time.monotonic() + HEARTBEAT_S
            except Exception as exc:  # never let presence and tokens die with one bad answer
                log(f"keeper: {type(exc).__name__}; going on")
                self.stop.wait(backoff(3))
            self.stop.wait(0.5)

    def run(self) -> int:
        threads = [threading.Thread(target=self.keeper, name="keeper", daemon=True),
                   threading.Thread(target=self.uploader, name="uploader", daemon=True)]
        for t in threads:
            t.start()
        while not self.stop.is_set():
            try:
                self.scan()
            except OSError as exc:
                log(f"watch folder: {exc.strerror or type(exc).__name__}")
            self.stop.wait(SCAN_S)
        return 0


def _s3_code(text: str) -> str:
    start = text.find("<Code>")
    end = text.find("</Code>")
    return text[start + 6:end] if 0 <= start < end else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="console-device", description=__doc__.split("\n\n")[0])
    for opt in ("--api", "--ca", "--watch", "--state", "--client-id"):
        ap.add_argument(opt, required=True)
    ap.add_argument("--defect", choices=sorted(DEFECTS), default=os.environ.get("C2C_CONSOLE_DEFECT") or None)
    args = ap.parse_args(argv)
    secret = os.environ.pop("C2C_CONSOLE_SECRET", "")
    if not secret:
        print("C2C_CONSOLE_SECRET is not set (the client secret comes from the environment)", file=sys.stderr)
        return 2
    Path(args.state).mkdir(parents=True, exist_ok=True, mode=0o700)
    Path(args.watch).mkdir(parents=True, exist_ok=True)
    defect = f" (seeded defect: {args.defect})" if args.defect else ""
    log(f"console uploader {VERSION} watching {args.watch}{defect}")
    device = Device(args, secret)
    signal.signal(signal.SIGTERM, lambda *_: device.stop.set())
    try:
        return device.run()
    except KeyboardInterrupt:
        device.stop.set()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Reading a part's bytes off the media for its PUT, without filling the page cache.

Why: a clip is read once, start to end, and can be far larger than the device's memory.
Kept in the page cache, a 20 GB clip would evict everything else on the device, and every
new page costs the kernel an allocation (on the bench VM up to 3 s of CPU per GB when
memory had to be reclaimed for it); dropped as soon as it is read (POSIX_FADV_DONTNEED),
the same few pages are reused. (O_DIRECT was measured too: no gain once pages are reused,
and the aligned buffer costs a copy per slice.)
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from reference_device.errors import Cancelled, MediaError
from reference_device.retry import StopFlag

SLICE = 1024 * 1024
"""Bytes per slice: one read, one MD5 update, one TLS write."""


def drop_cached(fd: int, offset: int, length: int) -> None:
    """Tell the kernel the bytes just read will not be read again soon (POSIX_FADV_DONTNEED).

    Pages the camera has not written back yet are not dropped (only their writeback starts);
    a re-sent part is read again. The kernel drops whole folios only (up to 2 MiB each), so
    the range given is everything read so far and a folio goes once it has been read
    through; one that straddles a part boundary stays.
    """
    if sys.platform == "linux":
        with contextlib.suppress(OSError):  # advice only: a filesystem may not take it
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def file_slices(
    path: Path, offset: int, length: int, cancel: StopFlag,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Yield `length` bytes of `path` from `offset` in SLICE slices; abort on cancel. Each
    slice read leaves the page cache again (drop_cached)."""
    with open(path, "rb", buffering=0) as fh:
        at, end = offset, offset + length
        while at < end:
            if cancel.is_set():
                raise Cancelled("cancelled mid-part")
            chunk = os.pread(fh.fileno(), min(SLICE, end - at), at)
            if not chunk:
                raise MediaError("corrupt", f"{path.name}: file shrank while uploading")
            at += len(chunk)
            drop_cached(fh.fileno(), offset, at - offset)  # all read so far: whole folios go
            if on_bytes is not None:
                on_bytes(len(chunk))  # may wait for the rate limit: look at cancel again after
            if cancel.is_set():
                raise Cancelled("cancelled mid-part")
            yield chunk

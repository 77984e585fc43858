"""A part read for upload leaves the page cache: the device streams a 20 GB clip without
filling the cache (and evicting everything else) with bytes it will not read again.

Residency is read from the kernel itself (mincore(2) on a mapping of the file), so the test
sees what the kernel kept, not which calls were made.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import sys
import threading
from pathlib import Path

import pytest

from reference_device.uploader import file_slices

MIB = 1024 * 1024
PAGE = mmap.PAGESIZE

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="mincore and fadvise are Linux's")


def resident_pages(path: Path) -> int:
    """Pages of `path` in the page cache now (mincore of a read-only shared mapping; mapping
    the file does not read it)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    size = path.stat().st_size
    pages = -(-size // PAGE)
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed")
        try:
            vector = ctypes.create_string_buffer(pages)
            if libc.mincore(address, size, vector) != 0:
                raise OSError(ctypes.get_errno(), "mincore failed")
            return sum(byte & 1 for byte in vector.raw[:pages])
        finally:
            libc.munmap(address, size)
    finally:
        os.close(fd)


def cached_file(path: Path, size: int) -> int:
    """Write `size` random bytes durably (clean pages), read them once; pages cached."""
    with open(path, "wb") as fh:
        fh.write(os.urandom(size))
        fh.flush()
        os.fsync(fh.fileno())
    with open(path, "rb") as fh:
        while fh.read(MIB):
            pass
    return resident_pages(path)


def test_a_part_read_for_upload_leaves_the_page_cache(tmp_path: Path) -> None:
    clip = tmp_path / "A001_C001.mxf"
    size = 24 * MIB
    if cached_file(clip, size) < size // PAGE // 2:
        pytest.skip("this filesystem keeps no page cache for the file (tmpfs? direct I/O?)")
    probe = tmp_path / "probe.bin"
    cached_file(probe, MIB)
    with open(probe, "rb") as fh:
        os.posix_fadvise(fh.fileno(), 0, MIB, os.POSIX_FADV_DONTNEED)
    if resident_pages(probe) > MIB // PAGE // 2:
        pytest.skip("this filesystem ignores POSIX_FADV_DONTNEED")

    # The middle 8 MiB part goes (the kernel drops whole folios: its bounds are folio
    # bounds), the rest of the file stays cached.
    sent = b"".join(file_slices(clip, 8 * MIB, 8 * MIB, threading.Event()))
    left = resident_pages(clip)
    assert sent == clip.read_bytes()[8 * MIB:16 * MIB]  # (reads the file into the cache again)
    part_pages = 8 * MIB // PAGE
    other_pages = (size - 8 * MIB) // PAGE
    assert left <= other_pages + part_pages // 16, (
        f"{left} pages of the file still cached after the part was read; the part alone is "
        f"{part_pages} pages and the rest of the file {other_pages}")

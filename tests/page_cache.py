"""Page-cache residency of a file, read from the kernel (mincore(2) on a mapping of it).

Shared by the tests of whatever drops or keeps file pages (the device's part reads, the
benchmarks' cold reads): they check what the kernel kept, not which calls were made.
Linux only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
from pathlib import Path

MIB = 1024 * 1024
PAGE = mmap.PAGESIZE


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

"""A part read for upload leaves the page cache: the device streams a 20 GB clip without
filling the cache (and evicting everything else) with bytes it will not read again.

Residency is read from the kernel itself (mincore(2) on a mapping of the file), so the test
sees what the kernel kept, not which calls were made.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from reference_device.errors import MediaError
from reference_device.part_reader import file_slices
from tests.page_cache import MIB, PAGE, cached_file, resident_pages

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="mincore and fadvise are Linux's")


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


def test_a_file_that_shrank_is_a_media_error(tmp_path: Path) -> None:
    clip = tmp_path / "A004_C001.mxf"
    clip.write_bytes(os.urandom(MIB))
    with pytest.raises(MediaError, match="shrank"):
        b"".join(file_slices(clip, 0, 2 * MIB, threading.Event()))

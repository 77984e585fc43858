"""Cheap structural checks that decide whether a file is quarantined, and MIME types.

Never decodes media: JPEG markers, PNG chunk walk, TIFF header, RIFF size, ISO-BMFF
(MP4/MOV/HEIF) top-level box walk. Files are only read, never moved or deleted.
"""

from __future__ import annotations

import errno
import mimetypes
import os
import struct
from pathlib import Path

from reference_device.errors import MediaError

MIME = {
    ".mov": "video/quicktime", ".mp4": "video/mp4", ".m4v": "video/x-m4v", ".mxf": "application/mxf",
    ".wav": "audio/wav", ".aif": "audio/aiff", ".aiff": "audio/aiff", ".mp3": "audio/mpeg",
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".tif": "image/tiff",
    ".tiff": "image/tiff", ".heic": "image/heic", ".heif": "image/heif", ".dng": "image/x-adobe-dng",
    ".raf": "image/x-fujifilm-raf", ".cr3": "image/x-canon-cr3", ".arw": "image/x-sony-arw",
    ".nef": "image/x-nikon-nef", ".braw": "video/x-braw", ".r3d": "video/x-red-r3d",
    ".cube": "text/plain", ".pdf": "application/pdf", ".avi": "video/x-msvideo",
}
BMFF = {".mp4", ".mov", ".m4v", ".heic", ".heif", ".cr3", ".m4a", ".3gp"}
TAIL = 64 * 1024


def filetype_for(path: Path) -> str:
    ext = path.suffix.lower()
    return MIME.get(ext) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def check_file(path: Path, *, structural: bool = True) -> int:
    """Return the file size or raise MediaError(reason) with reason one of
    vanished, unreadable, zero_length, corrupt."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                raise MediaError("zero_length", path.name)
            if structural:
                _structure(fh, path.suffix.lower(), size, path.name)
            else:
                fh.read(1)
            return size
    except FileNotFoundError:
        raise MediaError("vanished", path.name) from None
    except PermissionError:
        raise MediaError("unreadable", f"{path.name}: permission denied") from None
    except IsADirectoryError:
        raise MediaError("unreadable", f"{path.name}: is a directory") from None
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise MediaError("vanished", path.name) from None
        raise MediaError("unreadable", f"{path.name}: {exc.strerror}") from None


def _corrupt(name: str, why: str) -> MediaError:
    return MediaError("corrupt", f"{name}: {why}")


def _structure(fh, ext: str, size: int, name: str) -> None:  # type: ignore[no-untyped-def]
    head = fh.read(16)
    if ext in (".jpg", ".jpeg"):
        if not head.startswith(b"\xff\xd8"):
            raise _corrupt(name, "no JPEG SOI marker")
        fh.seek(max(0, size - TAIL))
        if b"\xff\xd9" not in fh.read(TAIL):
            raise _corrupt(name, "no JPEG EOI marker (truncated)")
    elif ext == ".png":
        _png(fh, head, size, name)
    elif ext in (".tif", ".tiff", ".dng"):
        if head[:4] not in (b"II*\x00", b"MM\x00*"):
            raise _corrupt(name, "no TIFF header")
        order = "<" if head[:2] == b"II" else ">"
        (ifd,) = struct.unpack(order + "I", head[4:8])
        if not 8 <= ifd < size:
            raise _corrupt(name, "first IFD offset outside the file")
    elif ext in (".wav", ".avi"):
        if len(head) < 12 or head[:4] != b"RIFF":
            raise _corrupt(name, "no RIFF header")
        (riff,) = struct.unpack("<I", head[4:8])
        if riff + 8 > size:
            raise _corrupt(name, f"RIFF says {riff + 8} bytes, file has {size} (truncated)")
    elif ext in BMFF:
        _bmff(fh, size, name)


def _png(fh, head: bytes, size: int, name: str) -> None:  # type: ignore[no-untyped-def]
    if not head.startswith(b"\x89PNG\r\n\x1a\n"):
        raise _corrupt(name, "no PNG signature")
    pos = 8
    while pos + 8 <= size:
        fh.seek(pos)
        length, ctype = struct.unpack(">I4s", fh.read(8))
        pos += 12 + length
        if ctype == b"IEND":
            return
    raise _corrupt(name, "PNG chunks run past the end (truncated)")


def _bmff(fh, size: int, name: str) -> None:  # type: ignore[no-untyped-def]
    pos = 0
    boxes = 0
    while pos < size:
        fh.seek(pos)
        header = fh.read(16)
        if len(header) < 8:
            raise _corrupt(name, "truncated box header")
        box, kind = struct.unpack(">I4s", header[:8])
        if box == 1:
            if len(header) < 16:
                raise _corrupt(name, "truncated large box header")
            (box,) = struct.unpack(">Q", header[8:16])
        elif box == 0:
            box = size - pos
        if box < 8 or not kind.isascii():
            raise _corrupt(name, f"invalid box at offset {pos}")
        pos += box
        boxes += 1
        if boxes > 100000:
            raise _corrupt(name, "too many top-level boxes")
    if pos != size:
        raise _corrupt(name, f"box at end runs {pos - size} bytes past the file (truncated)")

"""Small structurally valid media of several formats (for delivery tests)."""

from __future__ import annotations

import random
import struct
from pathlib import Path


def jpeg(rng: random.Random, n: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + rng.randbytes(n) + b"\xff\xd9"


def png(rng: random.Random, n: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I4s", len(data), kind) + data + b"\0\0\0\0"
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", b"\0" * 13) + chunk(b"IDAT", rng.randbytes(n)) + chunk(b"IEND", b"")


def mp4(rng: random.Random, n: int) -> bytes:
    boxes = [(b"ftyp", b"isom0000"), (b"mdat", rng.randbytes(n)), (b"moov", b"m" * 32)]
    return b"".join(struct.pack(">I4s", 8 + len(body), kind) + body for kind, body in boxes)


def wav(rng: random.Random, n: int) -> bytes:
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, 48000, 96000, 2, 16)
    body = b"WAVE" + fmt + b"data" + struct.pack("<I", n) + rng.randbytes(n)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def tiff(rng: random.Random, n: int) -> bytes:
    return b"II*\x00" + struct.pack("<I", 8) + rng.randbytes(n)


MAKERS = {".jpg": jpeg, ".png": png, ".mp4": mp4, ".mov": mp4, ".wav": wav, ".tif": tiff,
          ".heic": mp4, ".cube": lambda rng, n: b"LUT_3D_SIZE 2\n" + b"0 0 0\n" * 8}
HOSTILE = ["A001 C002 (copy).jpg", "ünïcødé clip.mov", "quote'\"name.wav", "emoji 😀.png",
           "semi;colon&amp.tif", "-leading-dash.mp4"]


def make_set(directory: Path, count: int, seed: int = 7) -> dict[str, Path]:
    """`count` files cycling through the formats, the first ones with hostile names."""
    rng = random.Random(seed)
    exts = list(MAKERS)
    files: dict[str, Path] = {}
    for i in range(count):
        name = HOSTILE[i] if i < len(HOSTILE) else f"F{i:04d}{exts[i % len(exts)]}"
        ext = Path(name).suffix
        path = directory / name
        path.write_bytes(MAKERS[ext](rng, rng.randint(500, 60_000)))
        files[name] = path
    return files

"""Writers for each capture format, one small function per format.

Each writer takes a path, a capture time, camera metadata and a seeded numpy generator,
writes a valid file and returns the format-specific metadata it embedded. Pictures are
synthetic (gradients + seeded noise) and small, so a whole set takes well under a second.

Bit-exactness: JPEG, TIFF, DNG, WAV and .cube are bit-identical for a seed by
construction. H.264 and ProRes are encoded single-threaded and were bit-identical run to
run here (PyAV 19 with its bundled FFmpeg libs); HEIC goes through x265 with its own thread pool and was
identical too, but is not promised. Across library versions none of the encoded formats
is promised: names, metadata and capture times are, and the manifest always records the
hash of what was actually written.
"""

from __future__ import annotations

import struct
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harness.errors import MediaError

VIDEO_SIZE = (320, 180)
VIDEO_FPS = 25
AUDIO_RATE = 48000


def _picture(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A gradient with seeded noise: compresses like a photo, not like a flat colour."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    base = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1)
    noise = rng.normal(0, 12, size=(height, width, 3)).astype(np.float32)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _exif(when: datetime, meta: dict[str, str]) -> Image.Exif:
    exif = Image.Exif()
    stamp = when.strftime("%Y:%m:%d %H:%M:%S")
    exif[0x010F] = meta["make"]
    exif[0x0110] = meta["model"]
    exif[0x0132] = stamp  # DateTime
    exif[0x013B] = meta["artist"]
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = stamp  # DateTimeOriginal
    ifd[0x9004] = stamp  # DateTimeDigitized
    ifd[0x9011] = "+00:00"  # OffsetTimeOriginal
    ifd[0xA431] = meta["serial"]  # BodySerialNumber
    return exif


def write_jpeg(
    path: Path, when: datetime, meta: dict[str, str], rng: np.random.Generator
) -> dict[str, Any]:
    Image.fromarray(_picture(rng, 320, 240)).save(path, "JPEG", quality=85, exif=_exif(when, meta))
    return {
        "width": 320,
        "height": 240,
        "exif": ["Make", "Model", "DateTimeOriginal", "BodySerialNumber"],
    }


def write_heic(
    path: Path, when: datetime, meta: dict[str, str], rng: np.random.Generator
) -> dict[str, Any]:
    import pillow_heif

    pillow_heif.register_heif_opener()
    im = Image.fromarray(_picture(rng, 256, 192))
    im.save(path, "HEIF", quality=60, exif=_exif(when, meta).tobytes())
    return {"width": 256, "height": 192}


def write_tiff(
    path: Path, when: datetime, meta: dict[str, str], rng: np.random.Generator
) -> dict[str, Any]:
    info = {271: meta["make"], 272: meta["model"], 306: when.strftime("%Y:%m:%d %H:%M:%S")}
    Image.fromarray(_picture(rng, 256, 192)).save(
        path, "TIFF", compression="tiff_deflate", tiffinfo=info
    )
    return {"width": 256, "height": 192, "compression": "deflate"}


def _srational(values: list[float]) -> tuple[int, ...]:
    out: list[int] = []
    for v in values:
        f = Fraction(v).limit_denominator(10000)
        out += [f.numerator, f.denominator]
    return tuple(out)


def write_dng(
    path: Path, when: datetime, meta: dict[str, str], rng: np.random.Generator
) -> dict[str, Any]:
    """A 12-bit RGGB Bayer DNG with the tags LibRaw needs to develop it (probes §2.2)."""
    import tifffile

    h, w = 192, 256
    rgb = _picture(rng, w, h).astype(np.uint16) * 16
    cfa = np.empty((h, w), np.uint16)
    cfa[0::2, 0::2] = rgb[0::2, 0::2, 0]
    cfa[0::2, 1::2] = rgb[0::2, 1::2, 1]
    cfa[1::2, 0::2] = rgb[1::2, 0::2, 1]
    cfa[1::2, 1::2] = rgb[1::2, 1::2, 2]
    model = f"{meta['make']} {meta['model']}"
    extratags = [
        (271, "s", 0, meta["make"], True),
        (272, "s", 0, meta["model"], True),
        (306, "s", 0, when.strftime("%Y:%m:%d %H:%M:%S"), True),
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern RGGB
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, model, True),  # UniqueCameraModel
        (50710, "B", 3, (0, 1, 2), True),  # CFAPlaneColor
        (50711, "H", 1, 1, True),  # CFALayout
        (50714, "I", 1, 0, True),  # BlackLevel
        (50717, "I", 1, 4095, True),  # WhiteLevel
        (50721, "2i", 9, _srational([1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]), True),  # ColorMatrix1
        (50728, "2I", 3, (1, 2, 1, 1, 1, 2), True),  # AsShotNeutral
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1 = D65
        (50735, "s", 0, meta["serial"], True),  # CameraSerialNumber
    ]
    tifffile.imwrite(
        path,
        cfa,
        photometric=32803,
        subfiletype=0,
        metadata=None,
        software=False,
        extratags=extratags,
    )
    return {"width": w, "height": h, "cfa": "RGGB", "bits": 12}


def bext_chunk(
    when: datetime, meta: dict[str, str], time_reference: int, description: str
) -> bytes:
    """EBU Tech 3285 bext v1: fixed 602 bytes + coding history; TimeReference at byte 338."""

    def fixed(text: str, size: int) -> bytes:
        return text.encode("ascii", "replace")[:size].ljust(size, b"\0")

    body = b"".join(
        [
            fixed(description, 256),
            fixed(meta["make"], 32),
            fixed(meta["serial"], 32),
            fixed(when.strftime("%Y-%m-%d"), 10),
            fixed(when.strftime("%H:%M:%S"), 8),
            struct.pack("<Q", time_reference),
            struct.pack("<H", 1),  # version
            b"\0" * 64,  # UMID
            b"\0" * 10,  # loudness fields
            b"\0" * 180,  # reserved
            b"A=PCM,F=48000,W=16,M=stereo,T=c2c-bench\r\n",
        ]
    )
    return body


def _chunk(cid: bytes, body: bytes) -> bytes:
    pad = b"\0" if len(body) % 2 else b""
    return cid + struct.pack("<I", len(body)) + body + pad


def timecode_samples(tc: str, rate: int = AUDIO_RATE, fps: int = VIDEO_FPS) -> int:
    hh, mm, ss, ff = (int(p) for p in tc.replace(";", ":").split(":"))
    return (hh * 3600 + mm * 60 + ss) * rate + ff * rate // fps


def write_wav(
    path: Path,
    when: datetime,
    meta: dict[str, str],
    rng: np.random.Generator,
    *,
    timecode: str,
    title: str,
    seconds: float = 1.0,
) -> dict[str, Any]:
    """Broadcast WAV (16-bit stereo PCM) with bext TimeReference and an iXML chunk, by hand."""
    n = int(AUDIO_RATE * seconds)
    freq = float(rng.integers(200, 2000))
    t = np.arange(n, dtype=np.float64) / AUDIO_RATE
    tone = (np.sin(2 * np.pi * freq * t) * 0.25 * 32767).astype("<i2")
    pcm = np.stack([tone, tone], axis=1).tobytes()
    fmt = struct.pack("<HHIIHH", 1, 2, AUDIO_RATE, AUDIO_RATE * 4, 4, 16)
    tref = timecode_samples(timecode)
    desc = f"sSCENE={title}\r\nsTAKE=1\r\nsPROJECT={meta['project']}"
    ixml = (
        '<?xml version="1.0" encoding="UTF-8"?><BWFXML><IXML_VERSION>1.61</IXML_VERSION>'
        f"<PROJECT>{_xml(meta['project'])}</PROJECT><TAPE>{_xml(meta['serial'])}</TAPE>"
        f"<SPEED><TIMECODE_RATE>{VIDEO_FPS}/1</TIMECODE_RATE>"
        f"<TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO>{tref}</TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO></SPEED></BWFXML>"
    ).encode()
    chunks = (
        _chunk(b"fmt ", fmt)
        + _chunk(b"bext", bext_chunk(when, meta, tref, desc))
        + _chunk(b"iXML", ixml)
        + _chunk(b"data", pcm)
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)
    return {
        "sample_rate": AUDIO_RATE,
        "channels": 2,
        "bits": 16,
        "timecode": timecode,
        "time_reference": tref,
        "seconds": seconds,
    }


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


VIDEO_RECIPES: dict[str, tuple[str, str, str, dict[str, str]]] = {
    # kind: (video codec, pix_fmt, audio codec, encoder options)
    "mp4": ("libx264", "yuv420p", "aac", {"preset": "ultrafast", "threads": "1"}),
    "mov": ("libx264", "yuv420p", "pcm_s16le", {"preset": "ultrafast", "threads": "1"}),
    "prores": ("prores_ks", "yuv422p10le", "pcm_s16le", {"profile": "0", "threads": "1"}),
}


def write_video(
    path: Path,
    kind: str,
    when: datetime,
    meta: dict[str, str],
    rng: np.random.Generator,
    *,
    timecode: str,
    title: str,
    seconds: float = 1.0,
) -> dict[str, Any]:
    """MP4/MOV with a QuickTime tmcd timecode track, through PyAV only (no ffmpeg binary)."""
    import av

    vcodec, pix_fmt, acodec, opts = VIDEO_RECIPES[kind]
    w, h = VIDEO_SIZE
    frames = max(1, int(seconds * VIDEO_FPS))
    fmt = "mp4" if kind == "mp4" else "mov"
    options = {"movflags": "+faststart"} if kind == "mp4" else {}
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    with av.open(str(path), "w", format=fmt, options=options) as out:
        out.metadata.update(
            {
                "timecode": timecode,
                "creation_time": stamp,
                "title": title,
                "make": meta["make"],
                "model": meta["model"],
            }
        )
        v = out.add_stream(vcodec, rate=VIDEO_FPS, options=dict(opts))
        if not isinstance(v, av.VideoStream):
            raise MediaError(f"{kind}: recipe codec {vcodec} is not a video codec")
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        v.metadata["timecode"] = timecode
        a = out.add_stream(acodec, rate=AUDIO_RATE)
        if not isinstance(a, av.AudioStream):
            raise MediaError(f"{kind}: recipe codec {acodec} is not an audio codec")
        a.layout = "stereo"
        base = _picture(rng, w, h)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, i * 6, axis=1), format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a.codec_context.format is None:
            raise MediaError(f"{kind}: the {acodec} encoder names no sample format")
        afmt = a.codec_context.format.name
        total, step, pts = int(seconds * AUDIO_RATE), 1024, 0
        while pts < total:
            t = np.arange(pts, min(pts + step, total)) / AUDIO_RATE
            s = np.sin(2 * np.pi * 440 * t) * 0.2
            if afmt == "fltp":
                arr = np.stack([s, s]).astype(np.float32)
            else:
                arr = (np.stack([s, s]).T.reshape(1, -1) * 32767).astype(np.int16)
            af = av.AudioFrame.from_ndarray(arr, format=afmt, layout="stereo")
            af.sample_rate, af.pts = AUDIO_RATE, pts
            out.mux(a.encode(af))
            pts += step
        out.mux(a.encode(None))
    return {
        "width": w,
        "height": h,
        "fps": VIDEO_FPS,
        "frames": frames,
        "video_codec": vcodec,
        "audio_codec": acodec,
        "timecode": timecode,
        "seconds": seconds,
    }


def write_cube(
    path: Path, meta: dict[str, str], rng: np.random.Generator, *, size: int = 9
) -> dict[str, Any]:
    """A 3D LUT with a gentle seeded 'look'; red varies fastest, as the .cube spec says."""
    gamma = 0.9 + float(rng.random()) * 0.2
    warm = float(rng.random()) * 0.05
    lines = [
        f'TITLE "{meta["project"]} look"',
        f"LUT_3D_SIZE {size}",
        "DOMAIN_MIN 0.0 0.0 0.0",
        "DOMAIN_MAX 1.0 1.0 1.0",
    ]
    grid = np.linspace(0.0, 1.0, size)
    for b in grid:
        for g in grid:
            for r in grid:
                rr = min(1.0, r**gamma + warm * r)
                gg = g**gamma
                bb = max(0.0, b**gamma - warm * b)
                lines.append(f"{rr:.6f} {gg:.6f} {bb:.6f}")
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return {"lut_size": size, "rows": size**3}

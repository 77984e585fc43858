"""Full-decode validators, one per format.

A header check is not enough: `Image.verify()`, ffprobe and soundfile all accept truncated
files (dependency-probes §2.3). Each validator here decodes everything: every pixel, every
video packet, every RIFF chunk, every LUT row. Single flipped bits are often invisible to
any decoder, so "is this the file we sent" is always decided by SHA-256, and these
validators are the extra signal that says "and it is (not) even decodable".
"""

from __future__ import annotations

import re
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import MediaError

EXTENSION_FORMATS: dict[str, str] = {
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".heic": "heif",
    ".heif": "heif",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".dng": "dng",
    ".wav": "bwf",
    ".mp4": "mp4-h264",
    ".mov": "mov",
    ".cube": "cube-lut",
    ".bin": "data",
}


@dataclass
class Validation:
    """The verdict of one full decode: ok, and if not, what is wrong in words."""

    path: Path
    format: str
    ok: bool
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "ok": self.ok,
            "error": self.error,
            "details": self.details,
        }


class Invalid(MediaError):
    """The file does not decode; the message says where and why."""


def guess_format(path: Path) -> str:
    fmt = EXTENSION_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise MediaError(
            f"cannot tell the media format of {path.name!r} from its extension {path.suffix!r}"
        )
    return fmt


def validate(path: Path, fmt: str | None = None, *, expect_sha256: str | None = None) -> Validation:
    """Decode `path` fully and say whether it is a valid file of its format."""
    path = Path(path)
    fmt = fmt or guess_format(path)
    checker = CHECKERS.get(
        fmt.split("-")[0] if fmt.startswith("mov") or fmt.startswith("mp4") else fmt
    )
    if checker is None:
        raise MediaError(f"no validator for format {fmt!r}")
    try:
        if not path.is_file():
            raise Invalid(f"{path.name}: not a regular file")
        if path.stat().st_size == 0:
            raise Invalid(f"{path.name}: zero-length file")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # decoders warn on damage; the verdict says it
            details = checker(path)
        if expect_sha256 is not None:
            from harness.faults.media.generate import sha256_file

            got = sha256_file(path)
            if got != expect_sha256:
                raise Invalid(
                    f"{path.name}: SHA-256 {got[:16]}... differs from expected {expect_sha256[:16]}..."
                )
        return Validation(path, fmt, True, None, details)
    except Invalid as exc:
        return Validation(path, fmt, False, str(exc))
    except OSError as exc:
        return Validation(path, fmt, False, f"{path.name}: cannot read: {exc.strerror or exc}")


def check_jpeg(path: Path) -> dict[str, Any]:
    return _pillow(path, "JPEG")


def check_heif(path: Path) -> dict[str, Any]:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return _pillow(path, "HEIF")


def check_tiff(path: Path) -> dict[str, Any]:
    details = _pillow(path, "TIFF")
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            tf.pages[0].asarray()
    except Exception as exc:
        raise Invalid(f"{path.name}: tifffile cannot decode: {exc}") from exc
    return details


def _pillow(path: Path, expected: str) -> dict[str, Any]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.format != expected:
                raise Invalid(f"{path.name}: is {im.format}, expected {expected}")
            exif = im.getexif()
            return {
                "width": im.width,
                "height": im.height,
                "make": exif.get(0x010F),
                "model": exif.get(0x0110),
            }
    except Invalid:
        raise
    except Exception as exc:
        raise Invalid(f"{path.name}: {expected} decode failed: {exc}") from exc


DNG_REQUIRED = {
    50706: "DNGVersion",
    33421: "CFARepeatPatternDim",
    33422: "CFAPattern",
    50708: "UniqueCameraModel",
}


def check_dng(path: Path) -> dict[str, Any]:
    """tifffile structure + strip decode, then a LibRaw develop when rawpy is installed."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            page = tf.pages.first
            missing = [n for code, n in DNG_REQUIRED.items() if code not in page.tags]
            if missing:
                raise Invalid(f"{path.name}: not a DNG, missing tags {', '.join(missing)}")
            data = page.asarray()
            version = tuple(page.tags[50706].value)
    except Invalid:
        raise
    except Exception as exc:
        raise Invalid(f"{path.name}: DNG structure unreadable: {exc}") from exc
    details: dict[str, Any] = {
        "shape": list(data.shape),
        "dng_version": ".".join(map(str, version)),
    }
    try:
        import rawpy
    except ImportError:
        details["developed"] = False
        return details
    try:
        with rawpy.imread(str(path)) as raw:
            rgb = raw.postprocess(half_size=True)
        details["developed"] = True
        details["developed_shape"] = list(rgb.shape)
    except Exception as exc:
        raise Invalid(f"{path.name}: LibRaw cannot develop the DNG: {exc}") from exc
    return details


def check_bwf(path: Path) -> dict[str, Any]:
    """RIFF walker: RIFF size matches, every chunk fits, fmt/data present, bext TimeReference read."""
    data = path.read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise Invalid(f"{path.name}: no RIFF/WAVE header")
    riff_size = struct.unpack_from("<I", data, 4)[0]
    if riff_size + 8 != len(data):
        raise Invalid(f"{path.name}: RIFF size says {riff_size + 8} bytes, file has {len(data)}")
    pos, chunks, details = 12, [], {}
    while pos < len(data):
        if pos + 8 > len(data):
            raise Invalid(f"{path.name}: partial chunk header at byte {pos}")
        cid = data[pos : pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        end = pos + 8 + size
        if end > len(data):
            raise Invalid(
                f"{path.name}: chunk {cid!r} at byte {pos} runs past the end ({end} > {len(data)})"
            )
        if not re.fullmatch(rb"[\x20-\x7e]{4}", cid):
            raise Invalid(f"{path.name}: garbage chunk id {cid!r} at byte {pos}")
        body = data[pos + 8 : end]
        chunks.append(cid.decode("ascii"))
        if cid == b"fmt ":
            if size < 16:
                raise Invalid(f"{path.name}: fmt chunk too short ({size})")
            tag, ch, rate, _br, align, bits = struct.unpack_from("<HHIIHH", body)
            details.update(
                {
                    "format_tag": tag,
                    "channels": ch,
                    "sample_rate": rate,
                    "bits": bits,
                    "block_align": align,
                }
            )
        elif cid == b"bext":
            if size < 346:
                raise Invalid(f"{path.name}: bext chunk too short ({size} < 346)")
            details["time_reference"] = struct.unpack_from("<Q", body, 338)[0]
            details["originator"] = body[256:288].rstrip(b"\0").decode("ascii", "replace")
        elif cid == b"data":
            details["data_bytes"] = size
        pos = end + (size & 1)
    for need in ("fmt ", "data"):
        if need not in chunks:
            raise Invalid(f"{path.name}: missing {need.strip()} chunk")
    align = details.get("block_align") or 1
    if details["data_bytes"] % align:
        raise Invalid(f"{path.name}: data chunk is not a whole number of sample frames")
    details["chunks"] = chunks
    return details


def check_video(path: Path) -> dict[str, Any]:
    """Demux and decode every packet of every audio/video stream with PyAV.

    A truncated file often demuxes "cleanly" with fewer packets, so the decoded frame
    count is compared with the count the container's sample table promises.
    """
    import av

    try:
        with av.open(str(path), "r") as container:
            streams = [s for s in container.streams if s.type in ("video", "audio")]
            if not any(s.type == "video" for s in streams):
                raise Invalid(f"{path.name}: no video stream")
            expected = {s.index: s.frames for s in streams}
            packets = {s.index: 0 for s in streams}
            frames = {s.index: 0 for s in streams}
            for packet in container.demux(streams):
                if packet.size == 0 and packet.dts is None:
                    continue
                if packet.is_corrupt:
                    raise Invalid(f"{path.name}: corrupt packet in stream {packet.stream.index}")
                packets[packet.stream.index] += 1
                frames[packet.stream.index] += len(packet.decode())
            for s in streams:
                frames[s.index] += _drain(s)
            timecode = next(
                (s.metadata.get("timecode") for s in container.streams if "timecode" in s.metadata),
                None,
            )
            kinds = [(s.index, s.type, s.codec_context.name) for s in streams]
            details = {
                "streams": [f"{s.type}:{s.codec_context.name}" for s in streams],
                "video_frames": sum(frames[s.index] for s in streams if s.type == "video"),
                "timecode": timecode,
            }
    except Invalid:
        raise
    except Exception as exc:
        raise Invalid(f"{path.name}: decode failed: {exc}") from exc
    for index, kind, codec in kinds:
        # PCM sample tables count samples, not packets: only the frame-based codecs compare.
        if expected[index] and not codec.startswith("pcm") and packets[index] < expected[index]:
            raise Invalid(
                f"{path.name}: {kind} stream has {packets[index]} of {expected[index]} packets (truncated)"
            )
        if kind == "video" and frames[index] < packets[index]:
            raise Invalid(
                f"{path.name}: decoded {frames[index]} video frames from {packets[index]} packets"
            )
    return details


def _drain(stream: Any) -> int:
    try:
        return len(stream.codec_context.decode(None))
    except Exception:
        return 0


CUBE_KEYWORDS = ("TITLE", "DOMAIN_MIN", "DOMAIN_MAX", "LUT_1D_INPUT_RANGE", "LUT_3D_INPUT_RANGE")


def check_cube(path: Path) -> dict[str, Any]:
    """Strict .cube parser: one LUT_3D_SIZE N, then exactly N^3 rows of three floats."""
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise Invalid(f"{path.name}: non-ASCII byte at offset {exc.start}") from exc
    size: int | None = None
    rows = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word = line.split()[0]
        if word == "LUT_3D_SIZE":
            if size is not None:
                raise Invalid(f"{path.name}:{lineno}: LUT_3D_SIZE given twice")
            try:
                size = int(line.split()[1])
            except (IndexError, ValueError) as exc:
                raise Invalid(f"{path.name}:{lineno}: bad LUT_3D_SIZE {line!r}") from exc
            if not 2 <= size <= 256:
                raise Invalid(f"{path.name}:{lineno}: LUT_3D_SIZE {size} out of range 2..256")
            continue
        if word in CUBE_KEYWORDS:
            continue
        if word == "LUT_1D_SIZE":
            raise Invalid(f"{path.name}:{lineno}: 1D LUT, expected a 3D LUT")
        parts = line.split()
        try:
            values = [float(p) for p in parts]
        except ValueError as exc:
            raise Invalid(f"{path.name}:{lineno}: not a row of numbers: {line[:40]!r}") from exc
        if len(values) != 3:
            raise Invalid(f"{path.name}:{lineno}: row has {len(values)} values, expected 3")
        if size is None:
            raise Invalid(f"{path.name}:{lineno}: data row before LUT_3D_SIZE")
        rows += 1
    if size is None:
        raise Invalid(f"{path.name}: no LUT_3D_SIZE")
    if rows != size**3:
        raise Invalid(f"{path.name}: {rows} rows, LUT_3D_SIZE {size} needs {size**3}")
    return {"lut_size": size, "rows": rows}


def check_data(path: Path) -> dict[str, Any]:
    """Data files have no structure: only the SHA-256 (expect_sha256) can judge them."""
    return {"size": path.stat().st_size}


CHECKERS = {
    "jpeg": check_jpeg,
    "heif": check_heif,
    "tiff": check_tiff,
    "dng": check_dng,
    "bwf": check_bwf,
    "mp4": check_video,
    "mov": check_video,
    "cube-lut": check_cube,
    "data": check_data,
}

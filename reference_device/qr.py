"""The pairing code and link as something a person can read or scan.

C2C-AUTH-01 wants the 6-digit code shown; C2C-AUTH-02 wants `verification_uri_complete`
offered as a link or QR code. The terminal gets a QR code drawn with unicode half blocks
(two modules per character row, so it fits an 80x24 screen) and the code in large digits;
the status page gets an inline SVG (no Pillow involved).
"""

from __future__ import annotations

import io
import re

import qrcode  # type: ignore[import-untyped]
import qrcode.constants  # type: ignore[import-untyped]
import qrcode.image.svg  # type: ignore[import-untyped]

__all__ = ["big_code", "format_code", "qr_matrix", "qr_svg", "qr_terminal"]

# 5-row block font for the code: readable across a room, made of plain characters.
_DIGITS: dict[str, tuple[str, ...]] = {
    "0": ("███", "█ █", "█ █", "█ █", "███"),
    "1": (" █ ", "██ ", " █ ", " █ ", "███"),
    "2": ("███", "  █", "███", "█  ", "███"),
    "3": ("███", "  █", "███", "  █", "███"),
    "4": ("█ █", "█ █", "███", "  █", "  █"),
    "5": ("███", "█  ", "███", "  █", "███"),
    "6": ("███", "█  ", "███", "█ █", "███"),
    "7": ("███", "  █", "  █", "  █", "  █"),
    "8": ("███", "█ █", "███", "█ █", "███"),
    "9": ("███", "█ █", "███", "  █", "███"),
    " ": ("   ",) * 5,
    "-": ("   ", "   ", "███", "   ", "   "),
}
_CODE_RE = re.compile(r"^[0-9A-Za-z-]{1,16}$")


def qr_matrix(data: str, *, border: int = 2) -> list[list[bool]]:
    """The QR modules for `data` (True = dark), with a quiet zone of `border` modules."""
    if not data:
        raise ValueError("cannot make a QR code of an empty string")
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=border)
    qr.add_data(data)
    qr.make(fit=True)
    return [list(map(bool, row)) for row in qr.get_matrix()]


def qr_terminal(data: str, *, dark_background: bool = True, border: int = 2) -> str:
    """`data` as a QR code in unicode half blocks, one text line per two module rows.

    On a dark terminal the light modules are drawn (as `qrencode -t UTF8` does), so the
    code scans as dark-on-light; pass `dark_background=False` for light terminals.
    """
    matrix = qr_matrix(data, border=border)
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    glyphs = (" ", "▀", "▄", "█")  # index: top + 2*bottom
    lines = []
    for top, bottom in zip(matrix[0::2], matrix[1::2], strict=True):
        chars = []
        for t, b in zip(top, bottom, strict=True):
            if dark_background:
                t, b = not t, not b
            chars.append(glyphs[int(t) + 2 * int(b)])
        lines.append("".join(chars))
    return "\n".join(lines)


def qr_svg(data: str, *, box_size: int = 8, border: int = 2) -> str:
    """`data` as a standalone inline SVG element (a single path, white background)."""
    qr = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=box_size,
        border=border,
        image_factory=qrcode.image.svg.SvgPathFillImage,
    )
    qr.add_data(data)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image().save(buf)
    text = buf.getvalue().decode("utf-8")
    # Drop the XML declaration so the SVG can be inlined in HTML.
    return re.sub(r"^<\?xml[^>]*\?>\s*", "", text)


def format_code(code: str) -> str:
    """A 6-digit code split in two groups of three ("123 456"), easier to read aloud."""
    code = code.strip()
    if len(code) == 6 and code.isdigit():
        return f"{code[:3]} {code[3:]}"
    return code


def big_code(code: str) -> str:
    """The pairing code in a 5-line block font; falls back to the plain code if unknown glyphs."""
    text = format_code(code)
    if not _CODE_RE.match(code.strip()) or any(ch not in _DIGITS for ch in text):
        return text
    rows = [" ".join(_DIGITS[ch][i] for ch in text) for i in range(5)]
    return "\n".join(rows)

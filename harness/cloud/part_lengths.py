"""Which body lengths a basic asset's part PUT may have (c2c-api.md §3.8, §5.1, §5.2, §8.6).

Why not only the even split: the SDK cuts a file into ceil(filesize / n) ranges (§5.1 [SDK]),
but Fujifilm cameras choose `parts` themselves from their own part size (23,109,632 bytes per
the fujidrop emulator's notes [OBS]: a 24,638,557-byte JPEG goes as 23,109,632 + 1,528,925),
and S3 part URLs do not sign a length, so Frame.io stores either split. The emulator accepts
any *uniform* layout (every part but the last one size P, the last the remainder), fixed by
the first PUT that passes this check, and stays exact afterwards, so every part is still
bounded (never more than the file) and a re-PUT after completion lands at (number - 1) * P.
Setting `part_lengths = "exact"` keeps only the even split (§8.6 [INF]).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PART = 5 * 1024**3  # S3: at most 5 GiB per part (§7 [INF, S3])


@dataclass(frozen=True)
class Admitted:
    """A length the part may have: the layout's part size P it implies, or the refusal."""

    part_size: int | None  # P for every part but the last; None when refused
    code: str = ""  # S3 error code when refused
    message: str = ""


def uniform_bounds(filesize: int, count: int, even_size: int) -> tuple[int, int]:
    """(smallest, largest) P of a uniform layout of `count` parts: the even split's size up to
    the largest P that still leaves the last part at least one byte (and S3's 5 GiB)."""
    return even_size, min(MAX_PART, (filesize - 1) // (count - 1))


def admit(length: int, number: int, count: int, filesize: int, even_size: int) -> Admitted:
    """Is `length` a possible body of part `number` in some uniform layout of `count` parts?

    `even_size` is ceil(filesize / count) (the plan's part size). Only for an asset whose
    layout is still open (no part PUT got past the length check yet) and count > 1.
    """
    low, high = uniform_bounds(filesize, count, even_size)
    if number < count:
        if length > high:
            return Admitted(None, "EntityTooLarge", f"Your proposed upload exceeds the part size "
                            f"({length} > {high} bytes: the last part would be empty).")
        if length < low:
            return Admitted(None, "EntityTooSmall", f"Your proposed upload is smaller than the "
                            f"part size ({length} < {low} bytes: {count} parts cannot hold "
                            f"{filesize} bytes).")
        return Admitted(length)
    rest = filesize - length  # what parts 1..count-1 hold together
    largest_last, smallest_last = filesize - (count - 1) * low, filesize - (count - 1) * high
    if length > largest_last:
        return Admitted(None, "EntityTooLarge", f"Your proposed upload exceeds the last part's "
                        f"size ({length} > {largest_last} bytes).")
    if length < smallest_last:
        return Admitted(None, "EntityTooSmall", f"Your proposed upload is smaller than the last "
                        f"part's size ({length} < {smallest_last} bytes).")
    if rest % (count - 1):
        return Admitted(None, "InvalidArgument", f"A last part of {length} bytes leaves {rest} "
                        f"bytes, which {count - 1} parts of one size cannot hold.")
    return Admitted(rest // (count - 1))


def last_part_size(filesize: int, count: int, part_size: int) -> int:
    return filesize - part_size * (count - 1)

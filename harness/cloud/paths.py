"""The request paths of the C2C device API that more than one floor names, defined once.

The emulator routes them, fault rules aim at them (a rule's `path` is a regex searched in
the request path), and the oracle reads them back from the journal. Kept free of imports
so every floor may use it.
"""

from __future__ import annotations

import re

TOKEN_PATH = "/v2/auth/token"
"""The OAuth token endpoint (device-code polls and refreshes)."""
TOKEN_RULE = f"^{TOKEN_PATH}"
"""Fault-rule regex for the token endpoint."""

ASSET_CREATE_PATH = r"^/v2/(devices/)?assets$"
"""Fault-rule regex for both asset-create routes (c2c-api.md §3.8: the deprecated alias behaves the same)."""

S3_PART_PREFIX = "/s3/parts/"
"""What every presigned part URL the emulator issues starts with: /s3/parts/{asset}/{number}/{generation}."""

S3_PART = re.compile(rf"^{S3_PART_PREFIX}(?P<asset>[^/?]+)/(?P<number>\d+)(?:/(?P<generation>\d+)(?=\?|$)|/[^?]*)?")
"""The one pattern of a part path. Matches any request aimed at a part, well-formed or not ->
(asset, part number): a new URL for the same part (after an expired one) is the same request
retried (harness.bdd.measures). `generation` is set only where the number is followed by
/GENERATION and then the query or the end; `issued_part_url` adds the asset's uuid shape."""

UUID_CHARS = frozenset("0123456789abcdef-")


def issued_part_url(path: str) -> bool:
    """Only a well-formed part URL as the emulator issues it (asset uuid, number, generation; a
    query allowed): what counts as part traffic for throughput (harness.certify.throughput)."""
    part = S3_PART.match(path)
    if part is None or part["generation"] is None:
        return False
    asset = part["asset"]
    return len(asset) == 36 and set(asset) <= UUID_CHARS

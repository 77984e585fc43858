"""The fast part-URL query encoder must equal urllib's urlencode byte for byte.

Signatures are computed over this encoding on create and recomputed on every PUT from
the parsed query, so any difference would turn valid URLs into SignatureDoesNotMatch.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest

from harness.cloud.s3 import encode_query

AWKWARD = [
    ("x-amz-meta-extension", ".mov"),
    ("X-Amz-Credential", "C2CBENCH/20261122/us-east-1/s3/aws4_request"),
    ("X-Amz-SignedHeaders", "content-type;host;x-amz-acl"),
    ("name", "Clip 001 (take 2) ü/é?&=+#%"),
    ("empty", ""),
    ("emoji", "\N{MOVIE CAMERA}"),
    ("tilde_dash_dot_under", "a~b-c.d_e"),
]


@pytest.mark.parametrize("pairs", [AWKWARD, AWKWARD[:1], [], list(reversed(AWKWARD))])
def test_encode_query_matches_urlencode(pairs: list[tuple[str, str]]) -> None:
    assert encode_query(pairs) == urlencode(pairs)
    assert encode_query(pairs) == encode_query(pairs)  # cached quoting gives the same answer
    assert parse_qsl(encode_query(pairs), keep_blank_values=True) == pairs

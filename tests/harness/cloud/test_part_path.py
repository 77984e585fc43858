"""One pattern of a part path (harness.cloud.paths.S3_PART) reads what the two it replaced read:
any part request -> (asset, number) for retries and re-sent bytes, and `issued_part_url` for
throughput's well-formed part URLs. The old patterns are kept here as the specification."""

from __future__ import annotations

import re
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.certify.throughput import part_upload_rate
from harness.cloud.paths import S3_PART, issued_part_url

# as they stood in harness/cloud/paths.py before they became one
OLD_ANY_PART = re.compile(r"^/s3/parts/([^/?]+)/(\d+)(?:/[^?]*)?")
OLD_ISSUED_URL = re.compile(r"^/s3/parts/[0-9a-f-]{36}/\d+/\d+(?:\?|$)")

ASSET = str(uuid.UUID(int=7))
SEGMENTS = st.sampled_from([ASSET, ASSET[:-1], ASSET.upper(), "x" * 36, "abc", "12", "", "1a", "٣", "?q=1",
                            "a?b", "\n", "7\n", "00"])
PATHS = st.one_of(
    st.lists(SEGMENTS, max_size=5).map(lambda parts: "/s3/parts/" + "/".join(parts)),
    st.builds(lambda a, b, c, tail: f"/s3/parts/{a}/{b}/{c}{tail}", SEGMENTS, SEGMENTS, SEGMENTS,
              st.sampled_from(["", "?X-Amz-Signature=1", "/", "/9", "x", "\n", "?", "#f"])),
    st.text(alphabet="/s3partsq?0123456789abcdef-x\n", max_size=60).map(lambda t: "/s3/parts/" + t),
    st.text(max_size=40),
)


@settings(max_examples=3000, deadline=None)
@given(PATHS)
def test_one_pattern_reads_what_the_two_read(path: str) -> None:
    old, new = OLD_ANY_PART.match(path), S3_PART.match(path)
    assert (old is None) == (new is None)
    if old is not None and new is not None:
        assert (old.group(1), old.group(2)) == (new.group(1), new.group(2)) == (new["asset"], new["number"])
    assert issued_part_url(path) == bool(OLD_ISSUED_URL.match(path))


def test_the_parts_of_an_issued_url() -> None:
    part = S3_PART.match(f"/s3/parts/{ASSET}/12/3?X-Amz-Expires=900")
    assert part is not None and (part["asset"], part["number"], part["generation"]) == (ASSET, "12", "3")
    assert issued_part_url(f"/s3/parts/{ASSET}/12/3?X-Amz-Expires=900")
    assert not issued_part_url(f"/s3/parts/{ASSET}/12")  # no generation
    assert not issued_part_url("/s3/parts/not-a-uuid/12/3")
    assert not issued_part_url(f"/s3/parts/{ASSET}/12/3/4")


def test_throughput_counts_only_issued_part_urls() -> None:
    def put(path: str, nbytes: int) -> dict[str, object]:
        return {"method": "PUT", "path": path, "status": 200, "bytes_in": nbytes, "started_at": 0.0, "duration_ms": 1000}
    rate = part_upload_rate([put(f"/s3/parts/{ASSET}/1/1?sig=1", 1_000_000), put("/s3/parts/abc/2/1", 5_000_000),
                             put(f"/s3/parts/{ASSET}/3", 5_000_000)])
    assert (rate.parts, rate.nbytes) == (1, 1_000_000)

"""An asset create for a large file: thousands of upload URLs in one answer (real emulator, TLS).

A 20 GiB file in 8 MiB parts asks 2,560 URLs (about 1.7 MB of answer); the device's 1 MiB
answer cap refused it as 'answer too large' on every try, so no file over ~12 GiB could be
uploaded. The cap of a create now grows with the parts it asks for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reference_device.answers import MAX_ANSWER_BYTES
from tests.reference_device.test_engine_e2e import make_engine, pair

MIB = 1024 * 1024
PARTS = 2_560


def test_a_create_of_2560_parts_is_read_whole(cloud: Any, control: Any, tmp_path: Path) -> None:
    engine = make_engine(cloud, control, tmp_path)
    engine.start()
    try:
        pair(engine, control)
        body = {"name": "A001_C001.mxf", "filetype": "application/mxf", "filesize": PARTS * 8 * MIB,
                "parts": PARTS, "offset": 0.0}
        asset = engine.tokens.call(lambda token: engine.api.create_asset(token, body))
        urls = asset["upload_urls"]
        assert len(urls) == PARTS and len(set(urls)) == PARTS
        assert sum(len(u) for u in urls) > MAX_ANSWER_BYTES  # over the general cap: the case
    finally:
        engine.stop()

"""Blob store: part bodies hashed and written off the loop in order, assets assembled.

Bodies arrive as ASGI messages in uneven pieces (as uvicorn hands TLS records over); the
end-to-end SHA-256 checks through real HTTPS live in test_s3.py and test_assets.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from harness.cloud.blobs import CHUNK, BlobStore


def feeder(data: bytes, piece: int, *, cut_at: int | None = None,
           fail_at: int | None = None) -> Any:
    """An ASGI `receive` delivering `data` in `piece`-byte messages."""
    offsets = list(range(0, len(data), piece)) or [0]

    async def receive() -> dict[str, Any]:
        if not offsets:
            return {"type": "http.disconnect"}
        start = offsets.pop(0)
        if fail_at is not None and start >= fail_at:
            raise ConnectionResetError("client went away")
        if cut_at is not None and start >= cut_at:
            offsets.clear()
            return {"type": "http.disconnect"}
        chunk = data[start:start + piece]
        return {"type": "http.request", "body": chunk, "more_body": bool(offsets)}

    return receive


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345])
def test_receive_part_keeps_every_byte_in_order(tmp_path: Path, size: int) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    data = os.urandom(size)
    dest = blobs.part_path(str(uuid.uuid4()), 1)
    got = asyncio.run(blobs.receive_part(feeder(data, 65_000), size, dest))
    assert got.complete and got.nbytes == size
    assert got.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert dest.read_bytes() == data
    assert not list((tmp_path / "blobs" / "tmp").iterdir())


def test_receive_part_refuses_a_body_longer_than_declared(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    data = os.urandom(2 * CHUNK + 10)
    dest = blobs.part_path(str(uuid.uuid4()), 1)
    got = asyncio.run(blobs.receive_part(feeder(data, 100_000), 2 * CHUNK, dest))
    assert not got.complete and got.too_long and got.nbytes == len(data)
    assert not dest.exists() and not list((tmp_path / "blobs" / "tmp").iterdir())


def test_receive_part_drops_a_body_cut_short(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    data = os.urandom(3 * CHUNK)
    dest = blobs.part_path(str(uuid.uuid4()), 1)
    got = asyncio.run(blobs.receive_part(feeder(data, 100_000, cut_at=2 * CHUNK), len(data), dest))
    assert not got.complete and not got.too_long and 0 < got.nbytes < len(data)
    assert not dest.exists() and not list((tmp_path / "blobs" / "tmp").iterdir())


def test_receive_part_error_midway_leaves_no_temp_file(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    data = os.urandom(3 * CHUNK)
    dest = blobs.part_path(str(uuid.uuid4()), 1)
    with pytest.raises(ConnectionResetError):
        asyncio.run(blobs.receive_part(feeder(data, 200_000, fail_at=2 * CHUNK), len(data), dest))
    assert not dest.exists() and not list((tmp_path / "blobs" / "tmp").iterdir())


def store_part(blobs: BlobStore, asset_id: str, number: int, data: bytes) -> None:
    dest = blobs.part_path(asset_id, number)
    got = asyncio.run(blobs.receive_part(feeder(data, 50_000), len(data), dest))
    assert got.complete


def test_single_part_basic_upload_is_renamed_into_place(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    asset_id = str(uuid.uuid4())
    data = os.urandom(CHUNK + 7)
    store_part(blobs, asset_id, 1, data)
    sha, size = blobs.assemble(asset_id, [1], drop_parts=True)
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert blobs.asset_path(asset_id).read_bytes() == data
    assert not blobs.part_path(asset_id, 1).parent.exists()


@pytest.mark.parametrize("drop_parts", [True, False])
def test_multi_part_assembly_concatenates_in_order(tmp_path: Path, drop_parts: bool) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    asset_id = str(uuid.uuid4())
    parts = [os.urandom(CHUNK + 3), os.urandom(5), os.urandom(CHUNK // 2)]
    for number, data in enumerate(parts, start=1):
        store_part(blobs, asset_id, number, data)
    sha, size = blobs.assemble(asset_id, [1, 2, 3], drop_parts=drop_parts)
    whole = b"".join(parts)
    assert (sha, size) == (hashlib.sha256(whole).hexdigest(), len(whole))
    assert blobs.asset_path(asset_id).read_bytes() == whole
    assert blobs.part_path(asset_id, 2).exists() is not drop_parts


def test_single_real_time_part_is_copied_and_kept(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    asset_id = str(uuid.uuid4())
    data = os.urandom(1000)
    store_part(blobs, asset_id, 1, data)
    sha, _ = blobs.assemble(asset_id, [1], drop_parts=False)
    assert sha == hashlib.sha256(data).hexdigest()
    assert blobs.part_path(asset_id, 1).read_bytes() == data  # may be registered again later

"""The emulator's ingest shortcuts keep the oracle exact: a part hashed with SHA-256 as it
arrives stands for the asset only while the very file it was taken from is in place."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from harness.cloud.blobs import CHUNK, BlobStore, KnownDigest, file_id


def pieces(data: bytes, piece: int) -> Callable[[], Awaitable[dict[str, Any]]]:
    """An ASGI `receive` handing `data` over in `piece`-byte messages."""
    offsets = list(range(0, len(data), piece))

    async def receive() -> dict[str, Any]:
        start = offsets.pop(0)
        return {"type": "http.request", "body": data[start:start + piece],
                "more_body": bool(offsets)}

    return receive


def test_sha256_taken_while_receiving_is_the_bodys(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    data = os.urandom(3 * CHUNK + 12_345)
    dest = blobs.part_path(str(uuid.uuid4()), 1)
    got = asyncio.run(blobs.receive_part(pieces(data, 70_001), len(data), dest, sha256=True))
    assert got.complete and got.nbytes == len(data)
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert got.md5 == hashlib.md5(data).hexdigest()
    assert got.file == file_id(dest) == (os.stat(dest).st_ino, os.stat(dest).st_mtime_ns)
    assert dest.read_bytes() == data
    plain = asyncio.run(blobs.receive_part(pieces(data, 70_001), len(data), dest))
    assert plain.sha256 is None  # only asked for when a single part is the whole asset


def test_assemble_trusts_a_known_digest_only_for_the_same_file(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    data = os.urandom(CHUNK + 7)
    asset = str(uuid.uuid4())
    part = blobs.part_path(asset, 1)
    part.parent.mkdir(parents=True)
    part.write_bytes(data)
    # A digest recorded for this very file (same FileId) is used as is: no second read ...
    marker = KnownDigest("f" * 64, file_id(part))
    assert blobs.assemble(asset, [1], True, {1: marker}) == ("f" * 64, len(data))

    # ... but once a racing re-PUT replaced the file (another file), the bytes are re-read.
    other = str(uuid.uuid4())
    part = blobs.part_path(other, 1)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale")
    stale = file_id(part)
    replacement = part.with_name("new")
    replacement.write_bytes(data)
    os.replace(replacement, part)
    assert file_id(part) != stale
    sha, size = blobs.assemble(other, [1], True, {1: KnownDigest("0" * 64, stale)})
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_multi_part_assembly_hashes_every_byte_in_order(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    asset = str(uuid.uuid4())
    bodies = [os.urandom(5 * CHUNK + 1), os.urandom(CHUNK), os.urandom(999)]
    for number, body in enumerate(bodies, 1):
        path = blobs.part_path(asset, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    whole = b"".join(bodies)
    assert blobs.assemble(asset, [1, 2, 3], True) == (hashlib.sha256(whole).hexdigest(), len(whole))
    assert blobs.asset_path(asset).read_bytes() == whole


def _parts(blobs: BlobStore, asset: str, bodies: list[bytes]) -> None:
    for number, body in enumerate(bodies, 1):
        path = blobs.part_path(asset, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name("incoming")
        tmp.write_bytes(body)
        os.replace(tmp, path)  # as receive_part stores a part: a new file under the name


def test_early_assembly_finishes_with_the_exact_bytes(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    asset = str(uuid.uuid4())
    bodies = [os.urandom(CHUNK + n) for n in (1, 2, 3, 4)]
    _parts(blobs, asset, bodies[:3])
    blobs.append_prefix(asset, [1, 2, 3])
    blobs.append_prefix(asset, [1, 2])  # an older job arriving late changes nothing
    last = blobs.part_path(asset, 4)
    last.write_bytes(bodies[3])
    whole = b"".join(bodies)
    assert blobs.assemble(asset, [1, 2, 3, 4], True) == (hashlib.sha256(whole).hexdigest(), len(whole))
    assert blobs.asset_path(asset).read_bytes() == whole
    assert not blobs.part_path(asset, 1).parent.exists()
    blobs.append_prefix(asset, [1, 2, 3, 4])  # after completion: no new early assembly
    assert not list((tmp_path / "tmp").glob("*.asm"))


def test_early_assembly_of_a_part_sent_again_starts_over(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    asset = str(uuid.uuid4())
    first = [os.urandom(CHUNK), os.urandom(CHUNK)]
    _parts(blobs, asset, first)
    blobs.append_prefix(asset, [1, 2])
    again = os.urandom(CHUNK)  # part 1 re-PUT with other bytes before the last part came in
    _parts(blobs, asset, [again])
    third = os.urandom(77)
    blobs.part_path(asset, 3).write_bytes(third)
    whole = again + first[1] + third
    assert blobs.assemble(asset, [1, 2, 3], True) == (hashlib.sha256(whole).hexdigest(), len(whole))
    assert blobs.asset_path(asset).read_bytes() == whole
    assert not list((tmp_path / "tmp").glob("*.asm"))


def test_an_append_job_that_lost_the_race_to_the_final_assembly_writes_nothing(
        tmp_path: Path) -> None:
    """PUT answers do not wait for append jobs, so one may take the assembly's lock only
    after the final assembly took the blob over: it must not append to it again."""
    blobs = BlobStore(tmp_path)
    asset = str(uuid.uuid4())
    bodies = [os.urandom(CHUNK // 2 + n) for n in range(5)]
    _parts(blobs, asset, bodies)
    blobs.append_prefix(asset, [1, 2])
    early = blobs._assemblies[asset]  # what a queued job fetched before the last part landed
    whole = b"".join(bodies)
    assert blobs.assemble(asset, [1, 2, 3, 4, 5], False)[0] == hashlib.sha256(whole).hexdigest()
    size_then = early.size
    blobs._finished.discard(asset)  # replay that job's late turn on the object it held
    blobs._assemblies[asset] = early
    blobs.append_prefix(asset, [1, 2, 3, 4])
    assert early.size == size_then and not early.tmp.exists()
    assert blobs.asset_path(asset).read_bytes() == whole

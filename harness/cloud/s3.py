"""A fake S3 on the emulator's own port: pre-signed part URLs and the PUT that fills them.

URLs look like c2c-api.md §5.3. The signature is an HMAC-SHA256 over the method, path,
query (minus the signature), Content-Type, Host and x-amz-acl with a key kept in the data
directory, so a tampered URL or a wrong header fails exactly like S3's SigV4 check.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote_plus

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive

from harness.cloud.blobs import KnownDigest, Received
from harness.cloud.core import CloudCore
from harness.cloud.fault_responses import KINDS
from harness.cloud.part_lengths import admit, last_part_size
from harness.cloud.paths import S3_PART_PREFIX
from harness.cloud.responses import s3_error

PART_PATH = re.compile(rf"^{re.escape(S3_PART_PREFIX)}([0-9a-f-]{{36}})/(\d{{1,5}})/(\d{{1,6}})$")
"""The router's own, strict reading of paths.S3_PART: uuid, number <= 5 digits, generation."""


@functools.lru_cache(maxsize=4096)
def _quote(text: str) -> str:
    return quote_plus(text, safe="")


def encode_query(pairs: list[tuple[str, str]]) -> str:
    """`urlencode(pairs)` for str pairs, byte for byte, with the quoting of repeated keys and
    values cached: the part URL is built on every asset create and checked on every PUT."""
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in pairs)


def canonical(method: str, path: str, query: list[tuple[str, str]], content_type: str,
              host: str, acl: str) -> bytes:
    pairs = sorted((k, v) for k, v in query if k != "X-Amz-Signature")
    return "\n".join([method, path, encode_query(pairs), content_type, host.lower(), acl]).encode()


def sign(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def part_url(core: CloudCore, *, base: str, asset: dict[str, Any], number: int, gen: int,
             part_count: int | None) -> str:
    """A pre-signed PUT URL for one part (generation `gen` of a realtime part number)."""
    now = dt.datetime.fromtimestamp(core.now(), dt.UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    base = core.settings.upload_base_url.rstrip("/") or base
    host = base.split("://", 1)[1].split("/", 1)[0]
    path = f"{S3_PART_PREFIX}{asset['id']}/{number}/{gen}"
    prefix = base.split("://", 1)[1][len(host):]
    query = [
        ("x-amz-meta-asset_id", asset["id"]),
        ("x-amz-meta-extension", "." + asset["name"].rsplit(".", 1)[-1]
         if "." in asset["name"] else ""),
        ("x-amz-meta-is_realtime_upload", "true" if asset["realtime"] else "false"),
        ("x-amz-meta-part_count", str(part_count or 0)),
        ("x-amz-meta-part_number", str(number)),
        ("x-amz-meta-project_id", asset["project_id"]),
        ("x-amz-meta-resource_id", asset["id"]),
        ("x-amz-meta-resource_type", "asset"),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", f"C2CBENCH/{now:%Y%m%d}/us-east-1/s3/aws4_request"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(core.settings.upload_url_lifetime)),
        ("X-Amz-SignedHeaders", "content-type;host;x-amz-acl"),
    ]
    signature = sign(core.signing_key,
                     canonical("PUT", prefix + path, query, asset["filetype"], host, "private"))
    query.append(("X-Amz-Signature", signature))
    return f"{base}{path}?{encode_query(query)}"


FAULT_ANSWERS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal_error": (500, "InternalError", "We encountered an internal error. Please try again."),
    "request_timeout": (400, "RequestTimeout", "Your socket connection to the server was not "
                        "read from or written to within the timeout period."),
    "expired_url": (403, "AccessDenied", "Request has expired"),
    "too_many_requests": (429, "SlowDown", "Please reduce your request rate."),
    "unauthorized": (401, "Unauthorized", "Unauthorized"),
}
# c2c-api.md §5.5's other answers, as the shared table words them (fault_responses.KINDS)
FAULT_ANSWERS |= {name: (kind.status, kind.s3_code, kind.s3_message)
                  for name, kind in KINDS.items()
                  if kind.s3_code is not None and name not in FAULT_ANSWERS}


def ingest_fifo(state: Any, device_pk: str) -> asyncio.Lock:
    """The lock of `serial_ingest_rate` for one device, kept on the app's state.

    asyncio.Lock wakes its waiters in arrival order, so a device's queued part bodies are taken
    in the order its PUTs reached the emulator, like packets through its narrow uplink. One per
    device: devices sharing an emulator (the chaos campaign's lanes) each have their own uplink,
    so one device's parts never wait behind another's.
    """
    locks: dict[str, asyncio.Lock] | None = getattr(state, "ingest_fifos", None)
    if locks is None:
        locks = state.ingest_fifos = {}
    lock = locks.get(device_pk)
    if lock is None:
        lock = locks[device_pk] = asyncio.Lock()
    return lock


def paced(receive: Receive, rate: int) -> Receive:
    """`receive` that hands over body bytes no faster than `rate` bytes/s on average.

    Why: with the FIFO this makes one part's body take size/rate seconds, so parts complete
    one after another at a rate the bench chose, whatever the device's own link speed.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    taken = 0

    async def next_message() -> Message:
        nonlocal taken
        message = await receive()
        taken += len(message.get("body", b""))
        delay = start + taken / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        return message

    return next_message


async def receive_body(request: Request, core: CloudCore, expected: int, dest: Path,
                       sha256: bool = False, device_pk: str = "") -> Received:
    """The part body to `dest`: side by side at link speed, or through the device's ingest FIFO."""
    rate = core.settings.serial_ingest_rate
    if rate <= 0:
        return await core.blobs.receive_part(request.receive, expected, dest, sha256=sha256)
    async with ingest_fifo(request.app.state, device_pk):
        return await core.blobs.receive_part(paced(request.receive, rate), expected, dest,
                                             sha256=sha256)


async def drain(request: Request) -> None:
    async for _ in request.stream():
        pass


async def put_part(request: Request) -> Response:
    core: CloudCore = request.app.state.core
    if request.method != "PUT":
        return s3_error(405, "MethodNotAllowed",
                        "The specified method is not allowed against this resource.")
    match = PART_PATH.match(request.url.path)
    if match is None:
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    asset_id, number, gen = match.group(1), int(match.group(2)), int(match.group(3))
    # a rule for one device: the part's asset names it (the device that created the asset)
    client_id = (core.asset_client(asset_id) if core.scoped_faults("s3", "PUT", request.url.path)
                 else None)
    rule = core.take_fault("s3", "PUT", request.url.path, client_id=client_id)
    if rule is not None and rule.kind == "hold":  # stored as usual, the answer held back
        gate = core.hold_gate(rule)
        answer = await store_part(request, core, asset_id, number, gen)
        try:
            await asyncio.wait_for(gate.wait(), timeout=rule.hold_s)
        except TimeoutError:
            rule.released_at = core.now()
        return answer
    if rule is not None:
        if rule.kind == "drop" and request.scope.get("c2c.abort"):
            request.scope["c2c.abort"]()
            return Response(status_code=500)
        status, code, message = FAULT_ANSWERS.get(rule.kind, FAULT_ANSWERS["internal_error"])
        headers = {"Retry-After": str(rule.retry_after or 1)} if status in (429, 503) else None
        try:
            await drain(request)
        except Exception:
            return Response(status_code=status)
        return s3_error(status, code, message, headers)
    return await store_part(request, core, asset_id, number, gen)


async def store_part(request: Request, core: CloudCore, asset_id: str, number: int,
                     gen: int) -> Response:
    """Check the PUT (signature, expiry, upload, length) and store its body as the part."""
    query = parse_qsl(request.url.query, keep_blank_values=True)
    params = dict(query)
    required = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                "X-Amz-SignedHeaders", "X-Amz-Signature")
    if any(k not in params for k in required):
        return s3_error(403, "AccessDenied", "Query-string authentication requires the "
                        "X-Amz-Algorithm, Credential, Date, Expires, SignedHeaders and "
                        "Signature parameters")
    host = request.headers.get("host", "")
    path = request.scope.get("root_path", "") + request.url.path
    expected_sig = sign(core.signing_key, canonical(
        "PUT", path, query, request.headers.get("content-type", ""), host,
        request.headers.get("x-amz-acl", "")))
    if not hmac.compare_digest(expected_sig, params["X-Amz-Signature"]):
        return s3_error(403, "SignatureDoesNotMatch",
                        "The request signature we calculated does not match the signature you "
                        "provided. Check your key and signing method (Content-Type must be the "
                        "asset's filetype and x-amz-acl must be private).")
    try:
        signed_at = dt.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=dt.UTC).timestamp()
        lifetime = int(params["X-Amz-Expires"])
    except ValueError:
        return s3_error(403, "AccessDenied", "X-Amz-Date or X-Amz-Expires is malformed")
    if core.now() > signed_at + lifetime:
        return s3_error(403, "AccessDenied", "Request has expired",
                        Expires=dt.datetime.fromtimestamp(signed_at + lifetime, dt.UTC).isoformat())

    asset = core.store.one("SELECT * FROM assets WHERE id=?", asset_id)
    part = core.store.one("SELECT * FROM parts WHERE asset_id=? AND number=?", asset_id, number)
    gen_row = core.store.one("SELECT * FROM part_gens WHERE asset_id=? AND number=? AND gen=?",
                             asset_id, number, gen)
    if asset is None or part is None or (asset["realtime"] and gen_row is None):
        return s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
    expected = gen_row["size"] if gen_row else part["size"]
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        return s3_error(411, "MissingContentLength", "You must provide the Content-Length "
                        "HTTP header (chunked transfer encoding is not accepted).")
    length_text = request.headers.get("content-length")
    if length_text is None or not length_text.isdigit():
        return s3_error(411, "MissingContentLength", "You must provide the Content-Length HTTP "
                        "header.")
    length = int(length_text)
    if asset["state"] != "complete" and open_layout(core, asset, gen_row is not None):
        admitted = admit(length, number, asset["parts_expected"], asset["filesize"] or 0,
                         asset["part_size"] or 0)
        if admitted.part_size is None:
            return s3_error(400, admitted.code, admitted.message, ProposedSize=str(length))
        expected = length
        fix_layout(core, asset, admitted.part_size)
    if length > expected:
        return s3_error(400, "EntityTooLarge", f"Your proposed upload exceeds the part size "
                        f"({length} > {expected} bytes).", ProposedSize=str(length),
                        MaxSizeAllowed=str(expected))
    if length < expected:
        return s3_error(400, "EntityTooSmall", f"Your proposed upload is smaller than the part "
                        f"size ({length} < {expected} bytes).", ProposedSize=str(length),
                        MinSizeAllowed=str(expected))

    now = core.now()
    core.store.run("UPDATE parts SET put_attempts=put_attempts+1, first_put_at=COALESCE("
                   "first_put_at, ?) WHERE asset_id=? AND number=?", now, asset_id, number)
    dest = core.blobs.part_path(asset_id, number)
    late = asset["state"] == "complete" and not asset["realtime"]
    if late:
        dest = dest.with_name(dest.name + f".{gen}.late")
    # A basic asset of one part: its SHA-256 is the part's, hashed as it arrives (no re-read).
    whole = not late and not asset["realtime"] and asset["parts_expected"] == 1
    received = await receive_body(request, core, expected, dest, sha256=whole,
                                  device_pk=str(asset["device_pk"]))
    if not received.complete:
        core.store.run("UPDATE parts SET bytes_received=bytes_received+?,"
                       " bytes_incomplete=bytes_incomplete+? WHERE asset_id=? AND number=?",
                       received.nbytes, received.nbytes, asset_id, number)
        return s3_error(400, "IncompleteBody", "You did not provide the number of bytes "
                        "specified by the Content-Length HTTP header.")
    async with core.asset_lock(asset_id):
        known = (KnownDigest(received.sha256, received.file)
                 if received.sha256 is not None else None)
        await record_stored(core, asset_id, number, gen, expected, received.md5, dest, known)
    return Response(status_code=200, headers={"ETag": f'"{received.md5}"'})


def open_layout(core: CloudCore, asset: dict[str, Any], realtime_gen: bool) -> bool:
    """True while a multi-part basic asset's part size is still the device's to choose
    (part_lengths.py): `uniform` lengths, and no PUT of its parts got past the length check."""
    if (realtime_gen or asset["realtime"] or (asset["parts_expected"] or 0) < 2
            or core.settings.part_lengths != "uniform"):
        return False
    row = core.store.one("SELECT COALESCE(SUM(put_attempts), 0) AS n FROM parts"
                         " WHERE asset_id=?", asset["id"])
    return row is not None and row["n"] == 0


def fix_layout(core: CloudCore, asset: dict[str, Any], part_size: int) -> None:
    """Record the layout the first admitted PUT chose; every later PUT must match it.

    No await between the check and this write: two first PUTs cannot fix two layouts."""
    if part_size == asset["part_size"]:
        return
    count, filesize = asset["parts_expected"], asset["filesize"] or 0
    with core.store.tx() as db:
        db.execute("UPDATE assets SET part_size=? WHERE id=?", (part_size, asset["id"]))
        db.execute("UPDATE parts SET size=? WHERE asset_id=? AND number<?",
                   (part_size, asset["id"], count))
        db.execute("UPDATE parts SET size=? WHERE asset_id=? AND number=?",
                   (last_part_size(filesize, count, part_size), asset["id"], count))
    asset["part_size"] = part_size


async def record_stored(core: CloudCore, asset_id: str, number: int, gen: int, size: int,
                        md5: str, dest: Path, known: KnownDigest | None = None) -> None:
    part = core.store.one("SELECT * FROM parts WHERE asset_id=? AND number=?", asset_id, number)
    asset = core.store.one("SELECT * FROM assets WHERE id=?", asset_id)
    assert part is not None and asset is not None
    duplicate = size if part["stored"] else 0
    now = core.now()
    core.store.run(
        "UPDATE parts SET stored=1, stored_gen=?, md5=?, size=?, stored_at=?, put_ok=put_ok+1,"
        " bytes_received=bytes_received+?, bytes_duplicate=bytes_duplicate+?"
        " WHERE asset_id=? AND number=?",
        gen, md5, size, now, size, duplicate, asset_id, number,
    )
    if asset["state"] == "complete" and not asset["realtime"]:
        if md5 == part["md5"]:
            dest.unlink(missing_ok=True)
            return
        offset = (number - 1) * (asset["part_size"] or 0)
        sha = await asyncio.to_thread(core.blobs.overwrite_range, asset_id, offset, dest)
        core.store.run("UPDATE assets SET sha256=? WHERE id=?", sha, asset_id)
        return
    await maybe_complete(core, asset, {number: known} if known is not None else None)


async def maybe_complete(core: CloudCore, asset: dict[str, Any],
                         known: dict[int, KnownDigest] | None = None) -> None:
    """Reassemble once every part is in (basic) or the final part and all before it (realtime)."""
    asset_id = asset["id"]
    counts = core.store.one("SELECT COUNT(*) AS n, COALESCE(SUM(stored), 0) AS s FROM parts"
                            " WHERE asset_id=?", asset_id)
    assert counts is not None
    if asset["realtime"]:
        asset = core.store.one("SELECT * FROM assets WHERE id=?", asset_id) or asset
        if asset["final_number"] is None or counts["s"] != counts["n"]:
            return
    elif counts["s"] != asset["parts_expected"]:
        if (asset["parts_expected"] or 0) > 1:
            assemble_early(core, asset_id)
        return
    numbers = [r["number"] for r in core.store.all(
        "SELECT number FROM parts WHERE asset_id=? ORDER BY number", asset_id)]
    sha, size = await asyncio.to_thread(
        core.blobs.assemble, asset_id, numbers, not asset["realtime"], known)
    state = "complete" if size == (asset["filesize"] or 0) else "size_mismatch"
    core.store.run("UPDATE assets SET state=?, sha256=?, completed_at=? WHERE id=?",
                   state, sha, core.now(), asset_id)


_EARLY: set[asyncio.Future[None]] = set()  # running early assemblies (kept from the GC)


def assemble_early(core: CloudCore, asset_id: str) -> None:
    """Start appending the stored prefix of a basic asset's parts to its blob, unawaited.

    Why: the PUT's answer need not wait for it, and by the time the last part lands most of
    the asset is already copied and hashed (BlobStore.assemble checks and finishes it).
    """
    prefix: list[int] = []
    for row in core.store.all("SELECT number, stored FROM parts WHERE asset_id=? ORDER BY number",
                              asset_id):
        if not row["stored"] or row["number"] != len(prefix) + 1:
            break
        prefix.append(int(row["number"]))
    if not prefix:
        return
    job = asyncio.get_running_loop().run_in_executor(None, core.blobs.append_prefix, asset_id,
                                                     prefix)
    _EARLY.add(job)
    job.add_done_callback(_EARLY.discard)


def s3_routes() -> list[Route]:
    return [Route("/s3/{rest:path}", put_part,
                  methods=["PUT", "GET", "POST", "DELETE", "HEAD", "PATCH"])]

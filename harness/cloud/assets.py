"""Asset rules (c2c-api.md §3.8, §3.10, §5): validation, part plans, pause check, ledger.

Pure decisions live here; the HTTP layer only parses bodies and shapes answers.

Decisions where the docs are silent (§11.24): names are kept exactly as sent (unicode,
spaces, `../`), up to `max_name_length` (255) characters; longer names or control
characters are refused as invalid. Body-level problems (malformed JSON/form, wrong encoding
for real-time) are 400. A field problem is raised as a *validation* error whose status the
endpoint decides, because the contract names it per endpoint: 400 on real-time parts
(§3.10 [SPEC]) and comments (§3.11 [DOC]), the `asset_create_invalid_status` setting on
asset create (§3.8 "400/422" [INF], default 422) and `channel_invalid_status` on channel
connect ([INF]); all in the detailed error shape. Path
separators in a name are shown as `_` in the Cloud Devices tree, and nothing on disk is
ever named after a name.

Ledger byte accounting: `bytes_received` = every body byte that arrived for the asset's
parts (all attempts), `bytes_stored` = bytes of parts now stored, `bytes_duplicate` = bytes
of successful re-PUTs of an already stored part, `bytes_incomplete` = bytes of bodies cut
short (never kept).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from harness.cloud.settings import CloudSettings
from harness.cloud.store import Store, new_id

MAX_PARTS_NUMBER = 10000
MAX_PART_SIZE = 5 * 1024**3
MAX_OFFSET = 100 * 365 * 24 * 3600  # a century: anything older is a unit bug
MIME_RE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[\w.+-]+$")
EXT_RE = re.compile(r"^\.[^./\\]+$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")  # ord < 32 or 127: refused in names

ROUTES = {
    "VIDEO": {"mov", "mp4", "mxf", "avi", "mkv", "m4v", "r3d", "braw", "crm", "ari", "mts",
              "m2ts", "webm", "3gp"},
    "AUDIO": {"wav", "mp3", "aac", "m4a", "aif", "aiff", "bwf", "flac", "ogg", "opus"},
    "STILLS": {"jpg", "jpeg", "heic", "heif", "tif", "tiff", "dng", "raw", "raf", "arw", "cr2",
               "cr3", "nef", "png", "gif", "webp"},
}


class AssetError(Exception):
    """A request the cloud refuses; carries the HTTP status and the detailed-error title."""

    def __init__(self, status: int, title: str, detail: str, *, validation: bool = False) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.validation = validation  # a field problem: the endpoint's contract names the status

    def answered_as(self, status: int) -> AssetError:
        """This error with the status the endpoint's contract names for validation problems."""
        if not self.validation or status == self.status:
            return self
        return AssetError(status, VALIDATION_TITLES.get(status, "Bad Request"), self.detail,
                          validation=True)


VALIDATION_TITLES = {400: "Bad Request", 422: "Unprocessable Entity"}


def invalid(detail: str) -> AssetError:
    """A field problem; 422 until the endpoint maps it (AssetError.answered_as)."""
    return AssetError(422, "Unprocessable Entity", detail, validation=True)


def asset_type_for(name: str, filetype: str) -> str:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    for kind, exts in ROUTES.items():
        if ext in exts:
            return kind
    major = filetype.split("/", 1)[0].lower()
    return {"video": "VIDEO", "audio": "AUDIO", "image": "STILLS"}.get(major, "DATA")


def tree_path(capture_time: float, asset_type: str, device_name: str, name: str) -> str:
    """`Cloud Devices/YYYY_MM_DD/TYPE/DEVICE/NAME` (UTC date; separators in names neutralised)."""
    day = dt.datetime.fromtimestamp(capture_time, dt.UTC).strftime("%Y_%m_%d")

    def clean(text: str) -> str:
        return text.replace("/", "_").replace("\\", "_") or "_"

    return f"Cloud Devices/{day}/{asset_type}/{clean(device_name)}/{clean(name)}"


# --- field coercion (JSON values or form strings) -------------------------------------------
def as_int(field: str, value: Any, *, form: bool) -> int | None:
    if value is None or (form and value == ""):
        return None
    if isinstance(value, bool):
        raise invalid(f"{field} must be an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return int(value)
    if form and isinstance(value, str) and re.fullmatch(r"-?\d{1,20}", value.strip()):
        return int(value)
    raise invalid(f"{field} must be an integer, got {_show(value)}")


def as_number(field: str, value: Any, *, form: bool) -> float | None:
    if value is None or (form and value == ""):
        return None
    if isinstance(value, bool):
        raise invalid(f"{field} must be a number, got a boolean")
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            raise invalid(f"{field} is out of range") from None
    elif form and isinstance(value, str):
        try:
            number = float(value)
        except (ValueError, OverflowError):
            raise invalid(f"{field} must be a number, got {_show(value)}") from None
    else:
        raise invalid(f"{field} must be a number, got {_show(value)}")
    if not math.isfinite(number):
        raise invalid(f"{field} must be a finite number")
    return number


def as_bool(field: str, value: Any, *, form: bool) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if form and isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise invalid(f"{field} must be a boolean, got {_show(value)}")


def as_str(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{field} must be a string, got {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class AssetRequest:
    name: str
    filetype: str
    filesize: int | None
    offset: float
    channel: int
    realtime: bool
    extension: str | None
    parts: int | None
    extra: dict[str, Any]


# Fields with their own column; everything else a device sends (auto_version_id [SPEC],
# tokenized-path metadata §11.20, firmware extras) is accepted and kept in `extra`.
KNOWN_FIELDS = {"name", "filetype", "filesize", "offset", "channel", "is_realtime_upload",
                "extension", "parts"}


def parse_asset_request(
    body: dict[str, Any], *, form: bool, settings: CloudSettings
) -> AssetRequest:
    realtime = bool(as_bool("is_realtime_upload", body.get("is_realtime_upload"), form=form))
    if realtime and form:
        raise AssetError(400, "Bad Request", "real-time assets must be created with a JSON body")
    name = as_str("name", body.get("name"))
    filetype = as_str("filetype", body.get("filetype"))
    extension = as_str("extension", body.get("extension"))
    filesize = as_int("filesize", body.get("filesize"), form=form)
    offset = as_number("offset", body.get("offset"), form=form) or 0.0
    channel = as_int("channel", body.get("channel"), form=form) or 0
    parts = as_int("parts", body.get("parts"), form=form)

    if name is not None:
        if len(name) > settings.max_name_length:
            raise invalid(f"name is {len(name)} characters long; the limit is "
                          f"{settings.max_name_length}")
        if CONTROL_RE.search(name):
            raise invalid("name must not contain control characters")
    if not filetype:
        raise invalid("filetype is required (the MIME type the part URLs are signed for)")
    if len(filetype) > 255 or not MIME_RE.match(filetype):
        raise invalid(f"filetype must be a MIME type like video/mp4, got {_show(filetype)}")
    if offset < 0:
        if settings.offset_sign == "strict":
            raise AssetError(400, "Bad Request", "offset must be >= 0 (seconds since capture)")
        offset = -offset
    if offset > MAX_OFFSET:
        raise invalid(f"offset {offset:g} s is more than a century; offsets are seconds")
    if not 0 <= channel <= 100:
        raise invalid(f"channel must be within 0..100, got {channel}")
    if parts is not None and parts < 1:
        raise invalid(f"parts must be >= 1, got {parts}")

    if realtime:
        if filesize is not None:
            raise invalid("filesize must be omitted or null for a real-time upload")
        if extension is not None and not EXT_RE.match(extension):
            raise invalid(f"extension must look like '.mp4', got {_show(extension)}")
        name_ext = "." + name.rsplit(".", 1)[1] if name and "." in name[1:] else None
        if not name_ext and not extension:
            raise invalid("a real-time asset needs a name with an extension or an extension")
        if name_ext and extension and name_ext.lower() != extension.lower():
            raise invalid(f"extension {extension} does not match the name's {name_ext}")
        if not name:
            name = f"[new file]{extension}"
    else:
        if name is None or not name.strip():
            raise invalid("name is required")
        if filesize is None:
            raise invalid("filesize is required for a non-real-time upload")
        if filesize < 0:
            raise invalid(f"filesize must be >= 0, got {filesize}")
        if filesize > settings.max_filesize:
            raise invalid(f"filesize {filesize} exceeds the {settings.max_filesize}-byte limit")
    extra = {k: v for k, v in body.items() if k not in KNOWN_FIELDS}
    return AssetRequest(name, filetype, filesize, offset, channel, realtime, extension, parts,
                        extra)


def in_pause_window(store: Store, device_pk: str, capture_time: float) -> bool:
    row = store.one(
        "SELECT 1 FROM pause_windows WHERE device_pk=? AND start <= ? AND (end IS NULL OR end > ?)",
        device_pk, capture_time, capture_time,
    )
    return row is not None


def create_asset(
    store: Store, device: dict[str, Any], req: AssetRequest, now: float, settings: CloudSettings
) -> dict[str, Any]:
    capture = now - req.offset
    if in_pause_window(store, device["id"], capture):
        raise AssetError(409, "Channel Paused",
                         "The channel you're uploading from is currently paused.")
    kind = asset_type_for(req.name, req.filetype)
    count = size = None
    if not req.realtime:
        assert req.filesize is not None
        count, size = settings.part_plan(req.filesize, req.parts)
    row = {
        "id": new_id(), "device_pk": device["id"], "project_id": device["project_id"],
        "name": req.name, "filetype": req.filetype, "filesize": req.filesize,
        "offset": req.offset, "capture_time": capture, "channel": req.channel,
        "realtime": int(req.realtime), "extension": req.extension, "state": "created",
        "parts_expected": count, "part_size": size, "final_number": None, "created_at": now,
        "completed_at": None, "sha256": None,
        "tree_path": tree_path(capture, kind, device["name"], req.name), "asset_type": kind,
        "extra": json.dumps(req.extra),
    }
    with store.tx() as db:
        db.execute(_insert_sql(tuple(row)), tuple(row.values()))
        if count is not None and size is not None:
            filesize = req.filesize or 0
            db.executemany(
                "INSERT INTO parts (asset_id, number, size, is_final) VALUES (?,?,?,?)",
                [(row["id"], n, basic_part_size(filesize, count, size, n), int(n == count))
                 for n in range(1, count + 1)],
            )
    return row


@functools.lru_cache(maxsize=8)
def _insert_sql(columns: tuple[str, ...]) -> str:
    """The INSERT for an asset row with these columns (always the same ones): built once."""
    return f"INSERT INTO assets ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def basic_part_size(filesize: int, count: int, size: int, number: int) -> int:
    if number < count:
        return size
    return filesize - size * (count - 1)


@dataclass
class PartSpec:
    number: int
    size: int
    is_final: bool


def parse_realtime_parts(
    body: Any, asset: dict[str, Any], store: Store, settings: CloudSettings
) -> tuple[list[PartSpec], int | None, str | None]:
    """Validate a realtime_upload/parts body against c2c-api.md §3.10."""
    if not isinstance(body, dict):
        raise AssetError(400, "Bad Request", "body must be a JSON object with a parts array")
    if not asset["realtime"]:
        raise AssetError(400, "Bad Request", "asset was not created as a real-time upload")
    raw = body.get("parts")
    if not isinstance(raw, list) or not raw:
        raise invalid("parts must be a non-empty array")
    if len(raw) > MAX_PARTS_NUMBER:
        raise invalid(f"at most {MAX_PARTS_NUMBER} parts per request")
    specs: list[PartSpec] = []
    seen: set[int] = set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise invalid(f"parts[{i}] must be an object with number, size, is_final")
        number = as_int(f"parts[{i}].number", item.get("number"), form=False)
        size = as_int(f"parts[{i}].size", item.get("size"), form=False)
        is_final = as_bool(f"parts[{i}].is_final", item.get("is_final"), form=False)
        if number is None or size is None or is_final is None:
            raise invalid(f"parts[{i}] needs number, size and is_final")
        if not 1 <= number <= MAX_PARTS_NUMBER:
            raise invalid(f"parts[{i}].number must be within 1..{MAX_PARTS_NUMBER}, got {number}")
        if number in seen:
            raise invalid(f"part number {number} appears twice in one request")
        seen.add(number)
        if size > MAX_PART_SIZE:
            raise invalid(f"parts[{i}].size {size} exceeds the 5 GiB part limit")
        if not is_final and size < settings.min_part_size:
            raise invalid(f"parts[{i}].size {size} is below the {settings.min_part_size}-byte "
                          "minimum for a non-final part")
        if is_final and size < 1:
            raise invalid(f"parts[{i}].size must be >= 1")
        specs.append(PartSpec(number, size, is_final))
    finals = [s for s in specs if s.is_final]
    if len(finals) > 1:
        raise invalid("only one part can be final")
    filesize = as_int("asset_filesize", body.get("asset_filesize"), form=False)
    asset_name = as_str("asset_name", body.get("asset_name"))
    if asset_name is not None and (not EXT_RE.match("." + asset_name.rsplit(".", 1)[-1])
                                   or "." not in asset_name
                                   or len(asset_name) > settings.max_name_length):
        raise invalid("asset_name must end with an extension like .mp4 and be <= 255 chars")
    final_number = asset["final_number"]
    if final_number is not None:
        beyond = [s.number for s in specs if s.number > final_number]
        if beyond:
            raise invalid(f"part {beyond[0]} is after the final part {final_number}")
        if finals and finals[0].number != final_number:
            raise invalid(f"part {final_number} is already the final part")
    if finals:
        final = finals[0]
        if filesize is None:
            raise invalid("asset_filesize is required with the final part")
        if not 1 <= filesize <= settings.max_filesize:
            raise invalid(f"asset_filesize must be within 1..{settings.max_filesize}")
        if any(s.number > final.number for s in specs):
            raise invalid("no part may come after the final part")
        registered = {r["number"]: r["size"] for r in store.all(
            "SELECT number, size FROM parts WHERE asset_id=?", asset["id"])}
        if any(n > final.number for n in registered):
            raise invalid("a part with a higher number than the final part is registered")
        registered.update({s.number: s.size for s in specs})
        total = sum(registered.values())
        if total != filesize:
            raise invalid(f"asset_filesize {filesize} does not equal the sum of the registered "
                          f"part sizes ({total})")
    return specs, filesize, asset_name


def register_parts(
    store: Store, asset: dict[str, Any], specs: list[PartSpec], filesize: int | None,
    asset_name: str | None, device: dict[str, Any],
) -> list[tuple[int, int]]:
    """Record the parts; returns (number, generation) per spec for URL signing."""
    out: list[tuple[int, int]] = []
    with store.tx() as db:
        for spec in specs:
            row = db.execute("SELECT gen FROM parts WHERE asset_id=? AND number=?",
                             (asset["id"], spec.number)).fetchone()
            if row is None:
                gen = 1
                db.execute("INSERT INTO parts (asset_id, number, gen, size, is_final)"
                           " VALUES (?,?,?,?,?)",
                           (asset["id"], spec.number, gen, spec.size, int(spec.is_final)))
            else:
                gen = row[0] + 1
                db.execute("UPDATE parts SET gen=?, size=?, is_final=?, stored=0"
                           " WHERE asset_id=? AND number=?",
                           (gen, spec.size, int(spec.is_final), asset["id"], spec.number))
            db.execute("INSERT INTO part_gens VALUES (?,?,?,?,?)",
                       (asset["id"], spec.number, gen, spec.size, int(spec.is_final)))
            out.append((spec.number, gen))
        final = next((s for s in specs if s.is_final), None)
        if final is not None:
            db.execute("UPDATE assets SET final_number=?, filesize=?,"
                       " parts_expected=(SELECT COUNT(*) FROM parts WHERE asset_id=?) WHERE id=?",
                       (final.number, filesize, asset["id"], asset["id"]))
        if asset_name and asset["name"].startswith("[new file]"):
            db.execute("UPDATE assets SET name=?, tree_path=? WHERE id=?",
                       (asset_name, tree_path(asset["capture_time"], asset["asset_type"],
                                              device["name"], asset_name), asset["id"]))
        db.execute("UPDATE assets SET state='uploading' WHERE id=? AND state='created'",
                   (asset["id"],))
    return out


LEDGER_SQL = """
SELECT a.*, d.device_id AS device_uuid, d.name AS device_name,
  COUNT(p.number) AS parts_registered,
  COALESCE(SUM(p.stored), 0) AS parts_received,
  COALESCE(SUM(p.bytes_received), 0) AS bytes_received,
  COALESCE(SUM(p.bytes_duplicate), 0) AS bytes_duplicate,
  COALESCE(SUM(p.bytes_incomplete), 0) AS bytes_incomplete,
  COALESCE(SUM(CASE WHEN p.stored=1 THEN p.size ELSE 0 END), 0) AS bytes_stored,
  COALESCE(SUM(p.put_attempts), 0) AS put_attempts
FROM assets a JOIN devices d ON d.id = a.device_pk LEFT JOIN parts p ON p.asset_id = a.id
{where} GROUP BY a.id ORDER BY a.created_at, a.id
"""


def ledger(store: Store, device_id: str | None, *, with_tree: bool) -> list[dict[str, Any]]:
    where = ""
    args: tuple[str, ...] = ()
    if device_id:
        where, args = "WHERE a.device_pk = ? OR d.device_id = ?", (device_id, device_id)
    rows = []
    for r in store.all(LEDGER_SQL.format(where=where), *args):
        row = {
            "device_id": r["device_pk"], "device_uuid": r["device_uuid"], "asset_id": r["id"],
            "project_id": r["project_id"],
            "name": r["name"], "filetype": r["filetype"], "filesize": r["filesize"],
            "sha256": r["sha256"], "state": r["state"], "parts_expected": r["parts_expected"],
            "parts_registered": r["parts_registered"], "parts_received": r["parts_received"],
            "bytes_received": r["bytes_received"], "bytes_stored": r["bytes_stored"],
            "bytes_duplicate": r["bytes_duplicate"], "bytes_incomplete": r["bytes_incomplete"],
            "put_attempts": r["put_attempts"], "created_at": r["created_at"],
            "completed_at": r["completed_at"], "offset": r["offset"],
            "capture_time": r["capture_time"], "channel": r["channel"],
            "path": r["tree_path"], "realtime": bool(r["realtime"]),
            "asset_type": r["asset_type"], "extra": json.loads(r["extra"]),
        }
        if with_tree:
            row["tree_path"] = r["tree_path"]
            row["device_name"] = r["device_name"]
        rows.append(row)
    return rows

"""Measurements computed from the oracle (the delivery ledger and the cloud's request journal).

Pure functions over ledger verdicts and journal rows, so each figure a certificate shows is
unit-tested apart from the scenarios that record it:

- delivery counts: per captured file, what the ledger says reached the cloud (lost,
  corrupt, duplicated, intact, leaked, withheld);
- retries: requests the cloud answered with an error and later answered with success for
  the same request (a retry the oracle saw succeed);
- recovery: the first upload request the cloud accepted after a fault ended.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.certify.ledger import Ledger
from harness.cloud.paths import S3_PART, S3_PART_PREFIX

# Requests that move an upload forward: asset creation, real-time part URLs, part PUTs to S3.
UPLOAD_REQUEST = re.compile(rf"^(?:/v2/(?:devices/)?assets(?:/[^/?]+/realtime_upload/parts)?|{S3_PART_PREFIX})")
# S3_PART (harness.cloud.paths): a new URL for the same part (after an expired one) is the
# same request retried, and so is the same part of the same file under a new asset (a device
# may answer an expired URL with a new asset).
# Pairing and refresh answer errors by design (authorization_pending): not retries of a failure.
AUTH_PATH = re.compile(r"^/v2/(?:auth|device)/")


@dataclass(frozen=True)
class DeliveryCounts:
    """What the ledger says about the files a step expects (and the ones it expects withheld)."""

    expected: int
    intact: int
    lost: int
    corrupt: int
    duplicated: int
    leaked: int
    withheld: int
    pending: int


def delivery_counts(ledger: Ledger, expected: Iterable[str], withheld: Iterable[str] = ()) -> DeliveryCounts:
    """Classify the ledger's files the step expects delivered (by name) and the ones it expects withheld.

    A file still pending once the ledger is drained counts as lost (the ledger already says so).
    """
    want, held = set(expected), set(withheld)
    mine = [f for f in ledger.files if f.name in want]
    paused = [f for f in ledger.files if f.name in held]

    def n(files: list[Any], outcome: str) -> int:
        return sum(1 for f in files if f.outcome == outcome)
    return DeliveryCounts(
        expected=len(mine), intact=n(mine, "intact"), lost=n(mine, "lost"), corrupt=n(mine, "corrupt"),
        duplicated=n(mine, "duplicated"), leaked=n(paused, "leaked") + n(mine, "leaked"),
        withheld=n(paused, "withheld"), pending=n(mine, "pending"),
    )


def _path(row: Mapping[str, Any]) -> str:
    return str(row.get("path") or "").split("?", 1)[0]


def request_key(row: Mapping[str, Any], asset_names: Mapping[str, str] | None = None) -> tuple[str, str]:
    """What makes two journal rows the same request: method and path; an S3 part by its number
    and its file (the asset's name in `asset_names`, else the asset)."""
    path = _path(row)
    m = S3_PART.match(path)
    if not m:
        return str(row.get("method") or ""), path
    owner = (asset_names or {}).get(m.group(1), m.group(1))
    return str(row.get("method") or ""), f"{S3_PART_PREFIX}{owner}/{m.group(2)}"


def _part_owner(row: Mapping[str, Any], asset_names: Mapping[str, str] | None) -> str | None:
    """The file (name, else asset id) an S3 part request belongs to; None for any other request."""
    m = S3_PART.match(_path(row))
    return None if not m else (asset_names or {}).get(m.group(1), m.group(1))


def _status(row: Mapping[str, Any]) -> int:
    try:
        return int(row.get("status") or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Retries:
    """Failed answers the oracle saw, and how many of them were followed by a success of the same request."""

    failed: int
    retried: int
    not_retried: list[str]


def retries_seen(journal: Iterable[Mapping[str, Any]], asset_names: Mapping[str, str] | None = None,
                 files: Collection[str] | None = None) -> Retries:
    """Error answers (4xx/5xx, pairing and token calls aside) later answered 2xx for the same request.

    Rows are taken in journal order (their id). An error whose request never succeeded
    afterwards is listed in `not_retried` ("POST /v2/assets 500"). With `files` (names), part
    errors of other files are left out: a file an earlier scenario left still uploading may
    meet this scenario's errors and is not this scenario's to judge.
    """
    rows = sorted(journal, key=lambda r: int(r.get("id") or 0))
    failed = [(i, r) for i, r in enumerate(rows) if _status(r) >= 400 and not AUTH_PATH.match(_path(r))
              and (files is None or _part_owner(r, asset_names) in (None, *files))]
    retried = 0
    not_retried: list[str] = []
    for i, r in failed:
        key = request_key(r, asset_names)
        if any(200 <= _status(later) < 300 and request_key(later, asset_names) == key for later in rows[i + 1:]):
            retried += 1
        else:
            not_retried.append(f"{key[0]} {key[1]} {_status(r)}")
    return Retries(failed=len(failed), retried=retried, not_retried=not_retried)


def is_upload_request(row: Mapping[str, Any]) -> bool:
    """An asset creation, a real-time part request or a part PUT."""
    return bool(UPLOAD_REQUEST.match(_path(row)))


def accepted_uploads(journal: Iterable[Mapping[str, Any]], after_id: int) -> int:
    """Upload requests the cloud accepted (2xx) with a journal id after `after_id`."""
    return sum(1 for r in journal if int(r.get("id") or 0) > after_id and 200 <= _status(r) < 300
               and is_upload_request(r))


def part_put_spans(journal: Iterable[Mapping[str, Any]]) -> list[tuple[str, float, float]]:
    """(asset id, start, end) of every part PUT that reached the cloud, in emulator time.

    start = `started_at` (the request reached the emulator), end = start + `duration_ms`;
    rows from an older journal without them fall back to the recording time `t`.
    """
    spans: list[tuple[str, float, float]] = []
    for r in journal:
        m = S3_PART.match(_path(r))
        if r.get("method") != "PUT" or not m:
            continue
        t = float(r.get("t") or 0.0)
        start = r.get("started_at")
        duration = r.get("duration_ms")
        begin = float(start) if start is not None else t
        end = begin + float(duration) / 1000.0 if duration is not None else max(begin, t)
        spans.append((m.group(1), begin, end))
    return spans


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """Largest number of [start, end) intervals open at the same instant (a part that ends
    exactly when the next starts is serial, not parallel)."""
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best

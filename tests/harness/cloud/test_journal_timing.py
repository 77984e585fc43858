"""Per-request timing in the journal: started_at + duration_ms, migrated into old data dirs."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from harness.certify.throughput import part_upload_rate
from harness.cloud.control import CloudControl, JournalEntry
from harness.cloud.runner import EmulatorProcess
from harness.cloud.store import Store
from harness.cloud.testing import PairedDevice, api_client

from .conftest import create_asset

HEADERS = {"content-type": "video/mp4", "x-amz-acl": "private"}
PAUSE_S = 0.3
PAUSES = 3

# The journal table as emulators before per-request timing created it.
OLD_JOURNAL = """
CREATE TABLE journal (
  id INTEGER PRIMARY KEY, t REAL NOT NULL, scheme TEXT, method TEXT, path TEXT, status INTEGER,
  bytes_in INTEGER, bytes_out INTEGER, client TEXT, device_id TEXT, client_version TEXT,
  headers TEXT);
INSERT INTO journal (t, scheme, method, path, status, bytes_in, bytes_out, client, device_id,
  client_version, headers) VALUES (1700000000.5, 'https', 'GET', '/health', 200, 0, 2,
  '127.0.0.1:5000', NULL, '1.4.0', '{}');
"""


def slow_body(data: bytes) -> Iterator[bytes]:
    """The body in PAUSES + 1 pieces with a forced pause before each piece after the first."""
    size = -(-len(data) // (PAUSES + 1))
    for i in range(PAUSES + 1):
        if i:
            time.sleep(PAUSE_S)  # the stimulus (a slow sender), not a wait for a condition
        yield data[i * size:(i + 1) * size]


def part_puts(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["method"] == "PUT" and r["path"].startswith("/s3/parts/")]


def test_slow_part_put_duration_covers_the_pauses(api: httpx.Client, cloud: CloudControl,
                                                  paired_device: PairedDevice) -> None:
    data = os.urandom(256 * 1024)
    answer = create_asset(api, paired_device, name="slow.mp4", filetype="video/mp4",
                          filesize=len(data))
    url = answer.json()["upload_urls"][0]
    before = time.time()
    put = api.put(url, content=slow_body(data), headers={**HEADERS,
                                                          "content-length": str(len(data))})
    after = time.time()
    assert put.status_code == 200, put.text
    quick = api.get("/v2/devices/me", headers=paired_device.headers)
    assert quick.status_code == 200

    rows = cloud.journal()
    (row,) = part_puts(rows)
    entry: JournalEntry = row  # type: ignore[assignment]  # the documented row shape
    assert entry["bytes_in"] == len(data) and entry["status"] == 200
    assert entry["duration_ms"] is not None and entry["started_at"] is not None
    assert entry["duration_ms"] >= PAUSES * PAUSE_S * 1000
    # started_at is on the journal's own clock (emulator time = wall clock after a reset)
    assert before <= entry["started_at"] <= entry["t"] <= after + 1.0
    me = next(r for r in rows if r["path"] == "/v2/devices/me" and r["id"] > entry["id"])
    assert me["duration_ms"] is not None and me["duration_ms"] >= 0
    assert me["started_at"] >= entry["started_at"]
    # the measure sees the PUT's whole active interval: at most len/pauses throughput
    rate = part_upload_rate(rows)
    assert rate.nbytes == len(data) and rate.busy_s >= PAUSES * PAUSE_S


def test_refused_and_api_requests_are_timed_too(api: httpx.Client, cloud: CloudControl,
                                                paired_device: PairedDevice) -> None:
    data = os.urandom(1000)
    url = create_asset(api, paired_device, name="a.mp4", filetype="video/mp4",
                       filesize=len(data)).json()["upload_urls"][0]
    assert api.put(url + "0", content=data, headers=HEADERS).status_code == 403
    assert api.put(url, content=data, headers=HEADERS).status_code == 200
    rows = cloud.journal()
    assert rows and all(isinstance(r["duration_ms"], float) and r["duration_ms"] >= 0
                        and isinstance(r["started_at"], float) for r in rows)
    assert [r["status"] for r in part_puts(rows)] == [403, 200]


def test_openapi_describes_the_timing_fields(api: httpx.Client) -> None:
    schema = api.get("/_bench/openapi.json").json()
    answer = schema["paths"]["/journal"]["get"]["responses"]["200"]
    item = answer["content"]["application/json"]["schema"]["items"]
    for name in ("id", "t", "started_at", "duration_ms", "method", "path", "status",
                 "bytes_in", "bytes_out", "headers"):
        assert name in item["properties"], name
    assert "monotonic" in item["properties"]["duration_ms"]["description"]


def test_store_migrates_an_old_journal_table(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_JOURNAL)
    store = Store(path)
    try:
        store.add_journal([(1700000001.0, "https", "PUT", "/s3/parts/x/1/1", 200, 10, 0, None,
                            None, "1.4.0", "{}", 1700000000.9, 100.0)])
        store.flush()
        old, new = store.journal(0, 10)
        assert old["path"] == "/health" and old["t"] == 1700000000.5
        assert old["started_at"] is None and old["duration_ms"] is None
        assert new["started_at"] == 1700000000.9 and new["duration_ms"] == 100.0
    finally:
        store.close()
    Store(path).close()  # opening an already migrated file again is a no-op


def test_emulator_restarts_on_an_old_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "cloud"
    data_dir.mkdir()
    with sqlite3.connect(data_dir / "state.sqlite3") as db:
        db.executescript(OLD_JOURNAL)
    with EmulatorProcess(data_dir) as emulator:
        cloud = emulator.control
        assert cloud is not None
        with api_client(emulator.api_url, emulator.ca_bundle) as http:
            assert http.get("/health").status_code == 200
        old, new = cloud.journal()[:2]
        assert old["path"] == "/health" and old["duration_ms"] is None
        assert new["path"] == "/health" and new["duration_ms"] is not None
        assert new["started_at"] is not None and new["started_at"] <= new["t"]

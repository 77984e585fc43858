"""The `serial_ingest_rate` knob through the real stack: parts sent in parallel complete one by one.

Why it exists: a device that PUTs every part of a file at once finishes them all at the same
instant, so a power cut can never land between two parts. With the knob on, the emulator
takes bodies in one at a time at a bounded aggregate rate (a narrow uplink), so the oracle
holds some parts of the file and not all of them for a while, whatever the parallelism.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from urllib.parse import urlsplit

import httpx
import pytest

from harness.cloud.control import CloudControl
from harness.cloud.settings import CloudSettings
from harness.cloud.testing import PairedDevice, api_client
from harness.errors import CloudError, ConfigError
from harness.tls import ssl_context

from .conftest import create_asset, wait_until

KIB = 1024
PART = 256 * KIB
PARTS = 4
RATE = 512 * KIB  # bytes/s: one part every 0.5 s
HEADERS = {"content-type": "video/mp4", "x-amz-acl": "private"}


def _asset(api: httpx.Client, device: PairedDevice, cloud: CloudControl, name: str = "clip.mp4") -> list[str]:
    cloud.update_settings(min_part_size=64 * KIB)
    answer = create_asset(api, device, name=name, filetype="video/mp4", filesize=PART * PARTS, parts=PARTS)
    assert answer.status_code == 200, answer.text
    urls = answer.json()["upload_urls"]
    assert len(urls) == PARTS
    return urls


def _put_all(cloud: CloudControl, urls: list[str], data: bytes) -> list[int]:
    """Every part at once, one connection each (a fast device's burst)."""
    def put(i: int) -> int:
        with api_client(cloud.api_url, cloud.ca_bundle) as client:
            return client.put(urls[i], content=data[i * PART:(i + 1) * PART], headers=HEADERS).status_code
    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(put, range(len(urls))))


def test_the_knob_is_off_by_default_and_refuses_a_negative_rate(cloud: CloudControl) -> None:
    assert CloudSettings().serial_ingest_rate == 0
    assert cloud.update_settings()["serial_ingest_rate"] == 0
    with pytest.raises(ConfigError, match="serial_ingest_rate"):
        CloudSettings().updated({"serial_ingest_rate": -1})
    with pytest.raises(CloudError):
        cloud.update_settings(serial_ingest_rate=-1)
    assert cloud.update_settings(serial_ingest_rate=RATE)["serial_ingest_rate"] == RATE
    cloud.reset()
    assert cloud.update_settings()["serial_ingest_rate"] == 0


def test_parallel_parts_complete_one_after_another(api: httpx.Client, cloud: CloudControl,
                                                   paired_device: PairedDevice) -> None:
    urls = _asset(api, paired_device, cloud)
    cloud.update_settings(serial_ingest_rate=RATE)
    data = os.urandom(PART * PARTS)
    seen: list[tuple[int, bool]] = []

    def watch() -> bool:
        (row,) = cloud.ledger(paired_device.device_id)
        seen.append((int(row["parts_received"]), bool(row["completed_at"])))
        return bool(row["completed_at"])

    start = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        answers = pool.submit(_put_all, cloud, urls, data)
        wait_until(watch, 60, "the asset to complete", interval=0.02)
        assert answers.result(timeout=60) == [200] * PARTS
    elapsed = time.monotonic() - start
    # the oracle held part of the file, not all of it: the moment a power cut is for
    assert any(0 < n < PARTS and not done for n, done in seen), seen
    assert elapsed >= 0.9 * PART * PARTS / RATE  # the aggregate rate is bounded

    rows = sorted((r for r in cloud.journal() if r["method"] == "PUT" and r["status"] == 200),
                  key=lambda r: r["t"])
    assert len(rows) == PARTS
    gaps = [b["t"] - a["t"] for a, b in pairwise(rows)]
    assert min(gaps) >= 0.8 * PART / RATE, gaps  # one part at a time, never two together
    (row,) = cloud.ledger(paired_device.device_id)
    assert row["state"] == "complete" and row["sha256"] == hashlib.sha256(data).hexdigest()
    assert row["bytes_duplicate"] == 0


def _stalled_put(cloud: CloudControl, url: str, sent: int) -> ssl.SSLSocket:
    """A part PUT whose sender sends the head and `sent` body bytes, then goes quiet (left open)."""
    parts = urlsplit(url)
    ctx = ssl_context(cloud.ca_bundle)
    sock = ctx.wrap_socket(socket.create_connection((parts.hostname, parts.port), timeout=10),
                           server_hostname=parts.hostname)
    head = (f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"content-type: video/mp4\r\nx-amz-acl: private\r\nx-client-version: 1.4.0\r\n"
            f"content-length: {PART}\r\n\r\n")
    sock.sendall(head.encode() + os.urandom(sent))
    return sock


def test_a_sender_gone_while_queued_stores_nothing_and_frees_the_queue(
        api: httpx.Client, cloud: CloudControl, paired_device: PairedDevice) -> None:
    """A power cut while parts wait their turn: they are not stored, the next sender is served."""
    urls = _asset(api, paired_device, cloud)
    cloud.update_settings(serial_ingest_rate=RATE)
    data = os.urandom(PART * PARTS)
    first = _stalled_put(cloud, urls[0], PART // 2)  # holds the queue, half its body sent
    queued = _stalled_put(cloud, urls[1], PART // 4)  # waits behind it
    wait_until(lambda: len([r for r in cloud.ledger(paired_device.device_id)
                            if r["put_attempts"] >= 2]), 10, "both PUTs to reach the emulator")
    first.close()
    queued.close()
    with api_client(cloud.api_url, cloud.ca_bundle) as client:
        for i in range(PARTS):
            answer = client.put(urls[i], content=data[i * PART:(i + 1) * PART], headers=HEADERS)
            assert answer.status_code == 200, answer.text
    (row,) = cloud.ledger(paired_device.device_id)
    assert row["state"] == "complete" and row["sha256"] == hashlib.sha256(data).hexdigest()
    assert row["parts_received"] == PARTS and row["bytes_duplicate"] == 0
    assert row["put_attempts"] == PARTS + 2

"""The fake S3 part PUTs (c2c-api.md §3.9, §5): signatures, expiry, lengths, reassembly."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from harness.cloud.control import CloudControl
from harness.cloud.runner import EmulatorProcess
from harness.cloud.testing import PairedDevice
from harness.tls import ssl_context

from .conftest import create_asset, put_parts, wait_until

MIB = 1024 * 1024
HEADERS = {"content-type": "video/mp4", "x-amz-acl": "private"}


def s3_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "Error"
    assert root.findtext("RequestId") and root.findtext("HostId") and root.findtext("Message")
    return root.findtext("Code") or ""


def new_asset(api: httpx.Client, device: PairedDevice, size: int, **extra: object) -> dict:
    answer = create_asset(api, device, name="clip.mp4", filetype="video/mp4", filesize=size,
                          **extra)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize("size", [0, 1, 20 * MIB - 1, 20 * MIB, 20 * MIB + 1])
def test_reassembly_hash_equals_source(api: httpx.Client, cloud: CloudControl,
                                       paired_device: PairedDevice, size: int) -> None:
    data = os.urandom(size)
    asset = new_asset(api, paired_device, size)
    answers = put_parts(api, asset["upload_urls"], data, "video/mp4")
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.headers["etag"].startswith('"') and len(answer.headers["etag"]) == 34
    row = cloud.ledger(paired_device.device_id)[0]
    assert row["state"] == "complete"
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    assert row["bytes_stored"] == size and row["bytes_duplicate"] == 0
    assert row["parts_received"] == row["parts_expected"] == len(asset["upload_urls"])
    assert row["completed_at"] is not None


def test_etag_is_md5_of_part(api: httpx.Client, paired_device: PairedDevice) -> None:
    data = b"hello part"
    asset = new_asset(api, paired_device, len(data))
    answer = put_parts(api, asset["upload_urls"], data, "video/mp4")[0]
    assert answer.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'


def test_parts_in_any_order_and_parallel(api: httpx.Client, cloud: CloudControl,
                                         paired_device: PairedDevice) -> None:
    size = 4 * 5 * MIB + 123
    data = os.urandom(size)
    asset = new_asset(api, paired_device, size, parts=4)
    urls = asset["upload_urls"]
    chunk = -(-size // len(urls))
    jobs = list(enumerate(urls))[::-1]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda j: api.put(j[1], content=data[j[0] * chunk:(j[0] + 1) * chunk],
                                                  headers=HEADERS), jobs))
    assert all(r.status_code == 200 for r in results)
    row = cloud.ledger()[0]
    assert row["sha256"] == hashlib.sha256(data).hexdigest() and row["state"] == "complete"


def block(i: int) -> bytes:
    return random.Random(i).randbytes(MIB)


@pytest.mark.slow
def test_200_mb_streamed_in_parallel(api: httpx.Client, cloud: CloudControl,
                                     paired_device: PairedDevice) -> None:
    size = 200 * MIB
    asset = new_asset(api, paired_device, size)
    urls = asset["upload_urls"]
    assert len(urls) == 10
    per_part = size // len(urls) // MIB

    def body(part: int) -> Iterator[bytes]:
        for i in range(part * per_part, (part + 1) * per_part):
            yield block(i)

    def put(part: int) -> int:
        headers = {**HEADERS, "content-length": str(per_part * MIB)}
        return api.put(urls[part], content=body(part), headers=headers).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(put, range(len(urls)))) == [200] * len(urls)
    expected = hashlib.sha256()
    for i in range(size // MIB):
        expected.update(block(i))
    row = cloud.ledger()[0]
    assert row["state"] == "complete" and row["sha256"] == expected.hexdigest()
    assert row["bytes_received"] == size


def test_duplicate_put_is_accounted_and_last_put_wins(api: httpx.Client, cloud: CloudControl,
                                                      paired_device: PairedDevice) -> None:
    data = os.urandom(1000)
    asset = new_asset(api, paired_device, len(data))
    url = asset["upload_urls"][0]
    assert api.put(url, content=data, headers=HEADERS).status_code == 200
    assert api.put(url, content=data, headers=HEADERS).status_code == 200
    row = cloud.ledger()[0]
    assert row["put_attempts"] == 2 and row["bytes_duplicate"] == 1000
    assert row["bytes_received"] == 2000 and row["sha256"] == hashlib.sha256(data).hexdigest()
    other = os.urandom(1000)
    assert api.put(url, content=other, headers=HEADERS).status_code == 200
    row = cloud.ledger()[0]
    assert row["sha256"] == hashlib.sha256(other).hexdigest() and row["bytes_duplicate"] == 2000


def tampered(url: str, old: str, new: str) -> str:
    assert old in url
    return url.replace(old, new, 1)


def test_signature_checks(api: httpx.Client, cloud: CloudControl,
                          paired_device: PairedDevice) -> None:
    asset = new_asset(api, paired_device, 3, parts=1)
    url = asset["upload_urls"][0]
    cases = [
        (tampered(url, "x-amz-meta-part_number=1", "x-amz-meta-part_number=2"), HEADERS),
        (tampered(url, "X-Amz-Expires=86400", "X-Amz-Expires=999999"), HEADERS),
        (url[:-4] + ("0000" if not url.endswith("0000") else "1111"), HEADERS),
        (url, {"content-type": "video/quicktime", "x-amz-acl": "private"}),
        (url, {"content-type": "video/mp4"}),
        (url, {"content-type": "video/mp4", "x-amz-acl": "public-read"}),
    ]
    for target, headers in cases:
        assert s3_code(api.put(target, content=b"abc", headers=headers), 403) == (
            "SignatureDoesNotMatch"), (target, headers)
    parts = urlsplit(url)
    missing = f"{parts.scheme}://{parts.netloc}{parts.path}"
    assert s3_code(api.put(missing, content=b"abc", headers=HEADERS), 403) == "AccessDenied"
    assert s3_code(api.get(url), 405) == "MethodNotAllowed"
    unknown = f"{parts.scheme}://{parts.netloc}/s3/parts/nothing"
    assert s3_code(api.put(unknown, content=b"abc", headers=HEADERS), 404) == "NoSuchKey"
    assert cloud.ledger()[0]["state"] == "created"
    assert api.put(url, content=b"abc", headers=HEADERS).status_code == 200


def test_url_signed_for_another_host_fails(api: httpx.Client, cloud: CloudControl,
                                           paired_device: PairedDevice) -> None:
    asset = new_asset(api, paired_device, 3)
    url = asset["upload_urls"][0]
    answer = api.put(url, content=b"abc", headers={**HEADERS, "host": "evil.example:443"})
    assert s3_code(answer, 403) == "SignatureDoesNotMatch"


def test_expired_url(api: httpx.Client, cloud: CloudControl,
                     paired_device: PairedDevice) -> None:
    asset = new_asset(api, paired_device, 3)
    cloud.advance_clock(86400 + 1)
    answer = api.put(asset["upload_urls"][0], content=b"abc", headers=HEADERS)
    assert s3_code(answer, 403) == "AccessDenied"
    assert "Request has expired" in answer.text


def test_short_url_lifetime_setting(api: httpx.Client, cloud: CloudControl,
                                    paired_device: PairedDevice) -> None:
    cloud.update_settings(upload_url_lifetime=60)
    asset = new_asset(api, paired_device, 3)
    assert "X-Amz-Expires=60" in asset["upload_urls"][0]
    cloud.advance_clock(61)
    assert s3_code(api.put(asset["upload_urls"][0], content=b"abc", headers=HEADERS),
                   403) == "AccessDenied"


def test_wrong_lengths(api: httpx.Client, cloud: CloudControl,
                       paired_device: PairedDevice) -> None:
    asset = new_asset(api, paired_device, 10)
    url = asset["upload_urls"][0]
    assert s3_code(api.put(url, content=b"x" * 11, headers=HEADERS), 400) == "EntityTooLarge"
    assert s3_code(api.put(url, content=b"x" * 9, headers=HEADERS), 400) == "EntityTooSmall"
    chunked = api.put(url, content=iter([b"x" * 10]), headers=HEADERS)
    assert s3_code(chunked, 411) == "MissingContentLength"
    assert cloud.ledger()[0]["state"] == "created"
    assert api.get("/health").status_code == 200


def raw_put(cloud: CloudControl, url: str, declared: int, body: bytes) -> None:
    """Send a PUT whose body stops short of Content-Length, then cut the connection."""
    parts = urlsplit(url)
    context = ssl_context(cloud.ca_bundle)
    with socket.create_connection((parts.hostname, parts.port)) as raw, \
            context.wrap_socket(raw, server_hostname=parts.hostname) as tls:
        head = (f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Content-Type: video/mp4\r\nx-amz-acl: private\r\n"
                f"Content-Length: {declared}\r\n\r\n")
        tls.sendall(head.encode() + body)


def test_body_shorter_than_declared_is_incomplete(api: httpx.Client, cloud: CloudControl,
                                                  cloud_process: EmulatorProcess,
                                                  paired_device: PairedDevice) -> None:
    size = 256 * 1024
    asset = new_asset(api, paired_device, size)
    raw_put(cloud, asset["upload_urls"][0], size, b"y" * 1000)
    row = wait_until(lambda: [r for r in cloud.ledger() if r["bytes_incomplete"] == 1000],
                     what="the cut PUT to be accounted")[0]
    assert row["state"] == "created" and row["parts_received"] == 0
    assert row["put_attempts"] == 1
    data = os.urandom(size)
    assert put_parts(api, asset["upload_urls"], data, "video/mp4")[0].status_code == 200
    row = cloud.ledger()[0]
    assert row["state"] == "complete" and row["sha256"] == hashlib.sha256(data).hexdigest()
    # The cut body left no temp file behind and no part file (it was never kept).
    assert list((cloud_process.data_dir / "blobs" / "tmp").iterdir()) == []


def test_upload_urls_follow_the_host_used(api: httpx.Client, cloud: CloudControl,
                                          paired_device: PairedDevice) -> None:
    port = urlsplit(cloud.api_url).port
    with httpx.Client(base_url=f"https://localhost:{port}", verify=ssl_context(cloud.ca_bundle),
                      headers={"x-client-version": "1.0.0"}) as other:
        created = other.post("/v2/devices/assets", headers=paired_device.headers,
                             json={"name": "a.mp4", "filetype": "video/mp4", "filesize": 3})
        url = created.json()["upload_urls"][0]
        assert url.startswith(f"https://localhost:{port}/s3/parts/")
        assert other.put(url, content=b"abc", headers=HEADERS).status_code == 200

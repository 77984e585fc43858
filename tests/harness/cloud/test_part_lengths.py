"""Part lengths of a basic asset (c2c-api.md §3.8, §5.1, §8.6; harness/cloud/part_lengths.py).

A camera that picks its own part size (Fujifilm: 23,109,632 bytes, [OBS]) must be stored
intact, as S3 would; the first PUT fixes the layout, later PUTs must keep it, and the
`exact` setting keeps only the SDK's even split.
"""

from __future__ import annotations

import hashlib
import os
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from harness.cloud.control import CloudControl
from harness.cloud.part_lengths import admit
from harness.cloud.testing import PairedDevice
from harness.tls import ssl_context

from .conftest import create_asset

MIB = 1024 * 1024
FUJI_SIZE, FUJI_PART = 24_638_557, 23_109_632
EVEN = -(-FUJI_SIZE // 2)  # 12,319,279
HEADERS = {"content-type": "image/jpeg", "x-amz-acl": "private"}


# --- the rule (unit) ----------------------------------------------------------------------------
@pytest.mark.parametrize(("length", "number", "part_size", "code"), [
    (EVEN, 1, EVEN, ""),  # the SDK's even split
    (FUJI_PART, 1, FUJI_PART, ""),  # the camera's own size
    (FUJI_SIZE - FUJI_PART, 2, FUJI_PART, ""),  # a last part first fixes P too
    (FUJI_SIZE - 1, 1, FUJI_SIZE - 1, ""),  # largest P: a 1-byte last part
    (FUJI_SIZE, 1, None, "EntityTooLarge"),  # the last part would be empty
    (EVEN - 1, 1, None, "EntityTooSmall"),  # two parts cannot hold the file
    (EVEN + 1, 2, None, "EntityTooLarge"),  # a last part over the even split's
    (0, 2, None, "EntityTooSmall"),
])
def test_admit_two_parts(length: int, number: int, part_size: int | None, code: str) -> None:
    admitted = admit(length, number, 2, FUJI_SIZE, EVEN)
    assert (admitted.part_size, admitted.code) == (part_size, code)


def test_admit_a_last_part_no_uniform_layout_fits() -> None:
    """Three parts of 30 MiB + 1: a last part that leaves an odd remainder for two equal parts."""
    size = 30 * MIB + 1
    even = -(-size // 3)
    assert admit(size - 2 * even, 3, 3, size, even).part_size == even
    odd = admit(size - 2 * even - 1, 3, 3, size, even)
    assert odd.part_size is None and odd.code == "InvalidArgument"
    assert admit(size - 2 * even - 2, 3, 3, size, even).part_size == even + 1


# --- through the real emulator ------------------------------------------------------------------
def fuji_asset(api: httpx.Client, device: PairedDevice) -> list[str]:
    answer = create_asset(api, device, "/v2/assets", name="DSCF0001.JPG", filetype="image/jpeg",
                          filesize=FUJI_SIZE, parts=2, offset=0)
    assert answer.status_code == 200, answer.text
    urls: list[str] = answer.json()["upload_urls"]
    assert len(urls) == 2
    return urls


def put(api: httpx.Client, url: str, body: bytes) -> httpx.Response:
    return api.put(url, content=body, headers=HEADERS)


def refused(cloud: CloudControl, url: str, length: int) -> str:
    """The S3 error code for a PUT announcing `length` bytes, decided on its head alone (the
    body is never sent: a refused body is not read, and MBs of it would race the answer)."""
    parts = urlsplit(url)
    head = (f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: image/jpeg\r\nx-amz-acl: private\r\nContent-Length: {length}\r\n"
            "Connection: close\r\n\r\n")
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as raw, \
            ssl_context(cloud.ca_bundle).wrap_socket(raw, server_hostname=parts.hostname) as tls:
        tls.sendall(head.encode())
        answer = b""
        while b"</Error>" not in answer and (chunk := tls.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    return answer.split(b"<Code>")[1].split(b"</Code>")[0].decode()


def test_the_cameras_own_part_size_is_stored_intact(api: httpx.Client, cloud: CloudControl,
                                                     paired_device: PairedDevice) -> None:
    data = os.urandom(FUJI_SIZE)
    one, two = fuji_asset(api, paired_device)
    assert put(api, one, data[:FUJI_PART]).status_code == 200
    # the layout is fixed now: the even split's last part no longer fits
    assert refused(cloud, two, FUJI_SIZE - EVEN) == "EntityTooLarge"
    assert put(api, two, data[FUJI_PART:]).status_code == 200
    row = cloud.ledger()[0]
    assert row["state"] == "complete" and row["filesize"] == FUJI_SIZE
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    # a re-PUT of part 2 with new bytes after completion lands at 23,109,632 (last PUT wins)
    tail = os.urandom(FUJI_SIZE - FUJI_PART)
    assert put(api, two, tail).status_code == 200
    assert cloud.ledger()[0]["sha256"] == hashlib.sha256(data[:FUJI_PART] + tail).hexdigest()


def test_a_first_put_of_the_wrong_length_fixes_nothing(api: httpx.Client, cloud: CloudControl,
                                                       paired_device: PairedDevice) -> None:
    data = os.urandom(FUJI_SIZE)
    one, two = fuji_asset(api, paired_device)
    assert refused(cloud, one, FUJI_SIZE) == "EntityTooLarge"  # the whole file as part 1
    assert refused(cloud, one, EVEN - 1) == "EntityTooSmall"
    assert put(api, one, data[:EVEN]).status_code == 200  # still open: the even split fits
    assert put(api, two, data[EVEN:]).status_code == 200
    row = cloud.ledger()[0]
    assert row["state"] == "complete" and row["sha256"] == hashlib.sha256(data).hexdigest()


def test_exact_setting_keeps_only_the_even_split(api: httpx.Client, cloud: CloudControl,
                                                 paired_device: PairedDevice) -> None:
    cloud.update_settings(part_lengths="exact")
    data = os.urandom(FUJI_SIZE)
    one, two = fuji_asset(api, paired_device)
    assert refused(cloud, one, FUJI_PART) == "EntityTooLarge"
    assert put(api, one, data[:EVEN]).status_code == 200
    assert put(api, two, data[EVEN:]).status_code == 200
    assert cloud.ledger()[0]["sha256"] == hashlib.sha256(data).hexdigest()

"""Shared fixtures: one real emulator process per session, reset before each test."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from harness.cloud.control import CloudControl
from harness.cloud.runner import EmulatorProcess
from harness.cloud.testing import (  # noqa: F401 - pytest fixtures
    PairedDevice,
    api,
    cloud,
    cloud_process,
    paired_device,
)
from harness.tls import ssl_context
from reference_device.duplex_tls import DuplexTLSConnection
from tests.waiting import wait_until  # noqa: F401 - re-exported to the tests

LOG_TAIL_BYTES = 8_000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """A failed test shows the end of the emulator's log: what the server said about the
    connection the test saw fail (a deadline it cut, an error it logged) is there, and the
    emulator's folder does not outlive a CI run."""
    report = yield
    process = item.funcargs.get("cloud_process") if isinstance(item, pytest.Function) else None
    if report.failed and isinstance(process, EmulatorProcess) and process.log_file.is_file():
        text = process.log_file.read_bytes()[-LOG_TAIL_BYTES:].decode("utf-8", errors="replace")
        report.sections.append(("emulator log (end)", text))
    return report


# Generous: the emulator is shared by every test of this xdist worker and a CI machine is loaded.
# (A 10 s wait that once ran out was the lost upgrade request below, not a slow emulator.)
HANDSHAKE_TIMEOUT_S = 30


def status_socket(control: CloudControl, token: str, **kwargs: Any) -> ClientConnection:
    """The device status socket (c2c-api.md §3.14), opened as a device opens it.

    DuplexTLSConnection: websockets' reader thread and the caller share one TLS session, which
    OpenSSL allows one call at a time; without it about one opening in 650 lost its upgrade
    request and waited for the emulator's 20 s head deadline."""
    url = control.api_url.replace("https://", "wss://")
    kwargs.setdefault("open_timeout", HANDSHAKE_TIMEOUT_S)
    connection: ClientConnection = connect(
        f"{url}/devices/websocket?Authorization={quote('Bearer ' + token)}",
        ssl=ssl_context(control.ca_bundle), create_connection=DuplexTLSConnection, **kwargs)
    return connection


def create_asset(client: httpx.Client, device: PairedDevice, path: str = "/v2/devices/assets",
                 **body: Any) -> httpx.Response:
    return client.post(path, json=body, headers=device.headers)


def put_parts(client: httpx.Client, urls: list[str], data: bytes,
              filetype: str) -> list[httpx.Response]:
    chunk = -(-len(data) // len(urls)) if data else 0
    out = []
    for i, url in enumerate(urls):
        out.append(client.put(url, content=data[i * chunk:(i + 1) * chunk],
                           headers={"content-type": filetype, "x-amz-acl": "private"}))
    return out


def assert_detailed(response: httpx.Response, status: int, title: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and body["message"]
    error = body["errors"][0]
    assert error["code"] == status and error["status"] == status
    assert error["title"] and error["detail"]
    if title is not None:
        assert error["title"] == title and body["message"] == title
    return body

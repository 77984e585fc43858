"""Shared fixtures: one real emulator process per session, reset before each test."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx
import pytest

from harness.cloud.runner import EmulatorProcess
from harness.cloud.testing import (  # noqa: F401 - pytest fixtures
    PairedDevice,
    api,
    cloud,
    cloud_process,
    paired_device,
)
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

"""Reusable pytest fixtures for anything that needs a running cloud emulator.

Use from a conftest.py:  `from harness.cloud.testing import cloud, cloud_process, api, paired_device  # noqa: F401`
Fixtures: `cloud_process` (session, a real emulator subprocess), `cloud` (CloudControl,
state reset before each test), `api` (httpx client trusting the bench CA, sends
x-client-version), `paired_device` (a device paired through the real device-code flow).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.cloud.control import CloudControl
from harness.cloud.runner import EmulatorProcess
from harness.tls import ssl_context

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FIRMWARE = "1.4.0"


@dataclass
class PairedDevice:
    """Credentials and ids of a device paired through /v2/auth/device/code + approve + poll."""

    client_id: str
    client_secret: str
    access_token: str
    refresh_token: str
    device_id: str  # project device id (the one /_bench/v1/devices lists)
    device_uuid: str  # device_id of /v2/devices/me
    project_id: str
    name: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}", "x-client-version": FIRMWARE}


def api_client(api_url: str, ca_bundle: Path, **kwargs: Any) -> httpx.Client:
    """An httpx client for the device API that trusts only the bench CA."""
    headers = {"x-client-version": FIRMWARE, **kwargs.pop("headers", {})}
    return httpx.Client(base_url=api_url, verify=ssl_context(ca_bundle), headers=headers,
                        timeout=kwargs.pop("timeout", 60.0), **kwargs)


def pair_device(cloud: CloudControl, *, client_id: str | None = None,
                project_name: str = "Testbed", project_id: str | None = None) -> PairedDevice:
    """Run the real pairing flow over HTTPS and return the device's tokens."""
    client_id = client_id or f"c2c-bench-{uuid.uuid4()}"
    secret = cloud.client_secret()
    project_id = project_id or cloud.create_project(project_name)["id"]
    with api_client(cloud.api_url, cloud.ca_bundle) as http:
        form = {"client_id": client_id, "client_secret": secret, "scope": "asset_create offline"}
        code = http.post("/v2/auth/device/code", data=form)
        code.raise_for_status()
        body = code.json()
        cloud.approve(body["user_code"], project_id)
        token = http.post("/v2/auth/token", data={
            "grant_type": DEVICE_GRANT, "client_id": client_id, "client_secret": secret,
            "device_code": body["device_code"]})
        token.raise_for_status()
        tokens = token.json()
        me = http.get("/v2/devices/me",
                      headers={"Authorization": f"Bearer {tokens['access_token']}"})
        me.raise_for_status()
        info = me.json()
    return PairedDevice(client_id, secret, tokens["access_token"], tokens["refresh_token"],
                        info["id"], info["device_id"], project_id, info["name"])


@pytest.fixture(scope="session")
def cloud_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("cloud")) as process:
        yield process


@pytest.fixture
def cloud(cloud_process: EmulatorProcess) -> Iterator[CloudControl]:
    if cloud_process.proc is None or cloud_process.proc.poll() is not None:
        cloud_process.start()
    assert cloud_process.control is not None
    cloud_process.control.reset()
    yield cloud_process.control


@pytest.fixture
def api(cloud: CloudControl) -> Iterator[httpx.Client]:
    with api_client(cloud.api_url, cloud.ca_bundle) as client:
        yield client


@pytest.fixture
def paired_device(cloud: CloudControl) -> PairedDevice:
    return pair_device(cloud)

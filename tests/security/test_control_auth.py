"""The control plane is locked: every /_bench/v1 route answers 401 without the bench token.

The route list comes from the control API's own OpenAPI document and from the app's route
table, so a new route is covered the moment it exists (issue #17 point 1).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import httpx
import pytest

from harness.cloud import cli
from harness.cloud.control import CloudControl
from harness.cloud.openapi import SCHEMA
from harness.cloud.routes_control import control_routes
from harness.cloud.runner import EmulatorProcess
from harness.cloud.security import MAX_JSON_BODY
from harness.cloud.testing import PairedDevice, api_client
from harness.tls import ssl_context

OPERATIONS = [(method.upper(), path) for path, ops in SCHEMA["paths"].items() for method in ops]
ROUTES = [(method, route.path.removeprefix("/_bench/v1")) for route in control_routes()
          for method in sorted(route.methods or ()) if method != "HEAD"]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


@pytest.fixture
def anonymous(cloud: CloudControl) -> httpx.Client:
    with api_client(cloud.api_url, cloud.ca_bundle) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), OPERATIONS + ROUTES,
                         ids=[f"{m} {p}" for m, p in OPERATIONS + ROUTES])
def test_every_control_route_is_401_without_the_token(anonymous: httpx.Client, cloud: CloudControl,
                                                      method: str, path: str) -> None:
    url = "/_bench/v1" + concrete(path)
    body = {} if method in ("POST", "PUT", "PATCH") else None
    for headers in ({}, {"authorization": "Bearer not-the-token"},
                    {"cookie": "__Host-c2c-session-1=forged"}):
        answer = anonymous.request(method, url, json=body, headers=headers)
        assert answer.status_code == 401, (method, url, headers, answer.text)
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert cloud.state()["projects"] == 0  # nothing happened behind the refusals


def test_the_schema_lists_every_route() -> None:
    """A route the OpenAPI document forgets would escape the generated test above."""
    documented = {(m, re.sub(r"\{[^}]+\}", "{}", p)) for m, p in OPERATIONS}
    for method, path in ROUTES:
        shape = re.sub(r"\{[^}]+\}", "{}", path)
        if shape == "/devices/{}/{}":  # pause / resume / revoke share one route
            assert all(("POST", f"/devices/{{}}/{a}") in documented for a in ("pause", "resume", "revoke"))
            continue
        assert (method, shape) in documented, (method, path)


def test_token_file_is_0600_and_only_its_path_is_published(cloud_process: EmulatorProcess,
                                                           cloud: CloudControl) -> None:
    token_file = cloud_process.token_file
    assert token_file.parent == cloud_process.data_dir
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 40
    ready = cloud_process.ready_file.read_text()
    assert token not in ready and json.loads(ready)["token_file"] == str(token_file)
    assert token not in cloud_process.log_file.read_text(errors="replace")
    assert token not in repr(cloud.auth)


def test_bearer_token_opens_the_control_api(anonymous: httpx.Client, cloud: CloudControl) -> None:
    assert anonymous.get("/_bench/v1/state", auth=cloud.auth).status_code == 200
    assert anonymous.get("/_bench/openapi.json").status_code == 200  # the schema is public
    assert anonymous.get("/health").status_code == 200  # device API untouched


def test_control_bodies_are_json_only(anonymous: httpx.Client, cloud: CloudControl) -> None:
    answer = anonymous.post("/_bench/v1/projects", content=b'{"name": "x"}', auth=cloud.auth,
                            headers={"content-type": "text/plain"})
    assert answer.status_code == 415
    assert cloud.projects() == []


@pytest.mark.parametrize("host", ["evil.example", "rebind.attacker.test:443", "10.9.9.9"])
@pytest.mark.parametrize("path", ["/_bench/v1/state", "/pair", "/projects/x", "/login"])
def test_dns_rebinding_guard(anonymous: httpx.Client, cloud: CloudControl, host: str,
                             path: str) -> None:
    answer = anonymous.get(path, headers={"host": host}, auth=cloud.auth)
    assert answer.status_code == 421, answer.text


def test_restart_gets_a_new_token_and_the_client_follows(tmp_path: Path) -> None:
    with EmulatorProcess(tmp_path / "cloud") as emulator:
        first = emulator.token_file.read_text()
        control = emulator.control
        assert control is not None
        control.create_project("kept")
        emulator.restart()
        assert emulator.token_file.read_text() != first
        # The new client works; a client made before the restart re-reads the token file.
        assert [p["name"] for p in emulator.control.projects()] == ["kept"]
        with CloudControl(emulator.api_url, emulator.ca_bundle,
                          token_file=emulator.token_file) as late:
            late.auth._token = first.strip()  # type: ignore[union-attr]  # a stale token
            assert [p["name"] for p in late.projects()] == ["kept"]


def test_c2c_cloud_approve_reads_the_token_from_the_data_dir(
        cloud_process: EmulatorProcess, cloud: CloudControl, capsys: pytest.CaptureFixture[str]) -> None:
    secret = cloud.client_secret()
    with api_client(cloud.api_url, cloud.ca_bundle) as http:
        code = http.post("/v2/auth/device/code", data={
            "client_id": "cli-cam", "client_secret": secret, "scope": "asset_create offline"}).json()
    assert cli.main(["approve", code["user_code"], "--project", "CLI",
                     "--data-dir", str(cloud_process.data_dir)]) == 0
    assert "approved" in capsys.readouterr().out
    assert [c["state"] for c in cloud.pending_codes() if c["user_code"] == code["user_code"]] in (
        [], ["approved"])


def test_oversized_control_body_is_413(anonymous: httpx.Client, cloud: CloudControl) -> None:
    body = b'{"name": "' + b"x" * (MAX_JSON_BODY + 1) + b'"}'
    answer = anonymous.post("/_bench/v1/projects", content=body, auth=cloud.auth,
                            headers={"content-type": "application/json"})
    assert answer.status_code == 413
    with httpx.Client(verify=ssl_context(cloud.ca_bundle)) as fresh:
        assert fresh.get(cloud.api_url + "/health").status_code == 200


def test_the_token_lies_nowhere_in_the_data_dir_but_its_file(
        anonymous: httpx.Client, cloud: CloudControl, cloud_process: EmulatorProcess,
        paired_device: PairedDevice) -> None:
    """After control calls, a session, and the token misused on the device API and in a query,
    no file of the emulator (state, journal, log, blobs) holds it but DATA/bench-token."""
    token = cloud_process.token_file.read_text().strip()
    marker = "scan-marker-" + token[:4][::-1] + "-project"
    cloud.create_project(marker)  # proves the scan reads what the emulator wrote
    anonymous.post("/_bench/session", json={"token": token},
                   headers={"origin": cloud.api_url, "sec-fetch-site": "same-origin"})
    anonymous.get("/v2/devices/me", headers={"authorization": f"Bearer {token}"})
    anonymous.get(f"/v2/devices/me?access_token={token}", headers=paired_device.headers)
    anonymous.post("/_bench/v1/projects", json={"name": token})  # refused: 401, never stored
    cloud.journal()  # the journal is flushed to disk by the time it is read
    files = {str(p.relative_to(cloud_process.data_dir)): p.read_bytes()
             for p in cloud_process.data_dir.rglob("*")
             if p.is_file() and p != cloud_process.token_file}
    assert any(marker.encode() in data for data in files.values())
    assert [name for name, data in files.items() if token.encode() in data] == []

"""Control API, fault rules, journal redaction, plain-HTTP trap, OpenAPI schema."""

from __future__ import annotations

import os
import socket
import sqlite3
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import httpx
import pytest

from harness.cloud import control
from harness.cloud.control import CloudControl
from harness.cloud.runner import EmulatorProcess
from harness.cloud.testing import PairedDevice
from harness.errors import CloudError
from harness.protocols import Cloud

from .conftest import assert_detailed, create_asset, wait_until

HEADERS = {"content-type": "video/mp4", "x-amz-acl": "private"}


def new_upload(api: httpx.Client, device: PairedDevice, data: bytes) -> str:
    answer = create_asset(api, device, name="a.mp4", filetype="video/mp4", filesize=len(data))
    return answer.json()["upload_urls"][0]


@pytest.mark.parametrize(("kind", "status", "code"), [
    ("slowdown", 503, "SlowDown"), ("internal_error", 500, "InternalError"),
    ("request_timeout", 400, "RequestTimeout"), ("expired_url", 403, "AccessDenied"),
    ("too_many_requests", 429, "SlowDown"), ("unauthorized", 401, "Unauthorized"),
    # c2c-api.md §5.5's other classes, worded by the shared table (fault_responses.KINDS)
    ("service_unavailable", 503, "ServiceUnavailable"), ("incomplete_body", 400, "IncompleteBody"),
    ("bad_digest", 400, "BadDigest"), ("time_skewed", 403, "RequestTimeTooSkewed"),
    ("no_such_upload", 404, "NoSuchUpload"),
])
def test_s3_faults_then_recovery(api: httpx.Client, cloud: CloudControl,
                                 paired_device: PairedDevice, kind: str, status: int,
                                 code: str) -> None:
    data = os.urandom(100)
    url = new_upload(api, paired_device, data)
    cloud.add_fault({"target": "s3", "kind": kind, "count": 2, "retry_after": 3})
    for _ in range(2):
        answer = api.put(url, content=data, headers=HEADERS)
        assert answer.status_code == status
        assert ET.fromstring(answer.content).findtext("Code") == code
        if status in (429, 503):
            assert answer.headers["retry-after"] == "3"
    assert api.put(url, content=data, headers=HEADERS).status_code == 200
    assert cloud.faults()[0]["count"] == 0 and cloud.faults()[0]["hits"] == 2
    assert cloud.ledger()[0]["state"] == "complete"


def test_s3_drop_cuts_the_connection(api: httpx.Client, cloud: CloudControl,
                                     paired_device: PairedDevice) -> None:
    data = os.urandom(100)
    url = new_upload(api, paired_device, data)
    cloud.add_fault({"target": "s3", "kind": "drop", "path": "/s3/parts/"})
    with pytest.raises(httpx.TransportError):
        api.put(url, content=data, headers=HEADERS)
    assert api.put(url, content=data, headers=HEADERS).status_code == 200


def test_api_faults_match_path_and_method(api: httpx.Client, cloud: CloudControl,
                                          paired_device: PairedDevice) -> None:
    cloud.add_fault({"target": "api", "kind": "too_many_requests", "path": "^/v2/devices/me$",
                     "method": "GET", "count": 1, "retry_after": 7})
    cloud.add_fault({"target": "api", "kind": "unauthorized", "path": "heartbeat", "count": 1})
    cloud.add_fault({"target": "api", "kind": "internal_error", "path": "/v2/auth/token"})
    assert api.post("/v2/devices/heartbeat", headers=paired_device.headers).status_code == 401
    assert api.post("/v2/devices/heartbeat", headers=paired_device.headers).status_code == 204
    limited = api.get("/v2/devices/me", headers=paired_device.headers)
    assert_detailed(limited, 429, "Too Many Requests")
    assert limited.headers["retry-after"] == "7"
    assert api.get("/v2/devices/me", headers=paired_device.headers).status_code == 200
    assert_detailed(api.post("/v2/auth/token", data={}), 500)
    assert api.post("/v2/auth/token", data={}).status_code == 400


def test_api_drop_and_fault_listing(api: httpx.Client, cloud: CloudControl,
                                    paired_device: PairedDevice) -> None:
    fault_id = cloud.add_fault({"target": "api", "kind": "drop", "path": "devices/me"})
    assert [f["id"] for f in cloud.faults()] == [fault_id]
    with pytest.raises(httpx.TransportError):
        api.get("/v2/devices/me", headers=paired_device.headers)
    assert api.get("/v2/devices/me", headers=paired_device.headers).status_code == 200
    other = cloud.add_fault({"target": "api", "kind": "slowdown", "count": 5})
    cloud.remove_fault(other)
    assert [f["id"] for f in cloud.faults()] == [fault_id]
    with pytest.raises(CloudError, match="no such fault"):
        cloud.remove_fault(other)
    cloud.add_fault({"target": "api", "kind": "slowdown", "count": 5})
    cloud.clear_faults()
    assert cloud.faults() == []


@pytest.mark.parametrize("rule", [
    {"target": "db", "kind": "drop"}, {"target": "s3", "kind": "explode"},
    {"target": "s3", "kind": "drop", "count": 0}, {"target": "s3", "kind": "drop", "path": "("},
    {"target": "s3", "kind": "drop", "retry_after": -1},
])
def test_bad_fault_rules_are_refused(cloud: CloudControl, rule: dict) -> None:
    with pytest.raises(CloudError, match="fault"):
        cloud.add_fault(rule)


def test_journal_reads_every_page(api: httpx.Client, cloud: CloudControl,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """More rows than one page of GET /journal: all of them, in order, none twice."""
    monkeypatch.setattr(control, "JOURNAL_PAGE", 3)
    head = max((int(r["id"]) for r in cloud.journal()), default=0)
    for count in (6, 7):  # an exact multiple of the page, then one over
        for _ in range(count - len(cloud.journal(head))):
            api.get("/health")
        rows = cloud.journal(head)
        ids = [int(r["id"]) for r in rows]
        assert len(rows) == count and ids == sorted(set(ids))
        assert {r["path"] for r in rows} == {"/health"}


def test_journal_records_and_redacts(api: httpx.Client, cloud: CloudControl,
                                     cloud_process: EmulatorProcess,
                                     paired_device: PairedDevice) -> None:
    data = b"abc"
    url = new_upload(api, paired_device, data)
    assert api.put(url, content=data, headers=HEADERS).status_code == 200
    refreshed = api.post("/v2/auth/token", data={
        "grant_type": "refresh_token", "client_id": paired_device.client_id,
        "client_secret": paired_device.client_secret,
        "refresh_token": paired_device.refresh_token}).json()
    journal = cloud.journal()
    put = next(j for j in journal if j["method"] == "PUT")
    assert put["bytes_in"] == 3 and put["status"] == 200 and put["scheme"] == "https"
    assert "X-Amz-Signature=%5Bredacted%5D" in put["path"]
    me = next(j for j in journal if j["path"] == "/v2/devices/me")
    assert me["device_id"] == paired_device.device_id and me["client_version"] == "1.4.0"
    assert me["headers"]["authorization"] == "[redacted]" and me["client"].startswith("127.0.0.1:")
    secrets = [paired_device.access_token, paired_device.refresh_token,
               paired_device.client_secret, refreshed["access_token"],
               refreshed["refresh_token"], urlsplit(url).query.split("X-Amz-Signature=")[1]]
    text = str(journal)
    assert not [s for s in secrets if s in text]
    # Nor anywhere in the database files (tokens are kept as SHA-256 only).
    cloud.state()  # flushes the journal buffer
    blob = b"".join(p.read_bytes() for p in cloud_process.data_dir.glob("state.sqlite3*"))
    assert not [s for s in secrets[:5] if s.encode() in blob]
    with sqlite3.connect(cloud_process.data_dir / "state.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM tokens").fetchone()[0] >= 4
    since = journal[-1]["id"]
    api.get("/health")
    assert [j["path"] for j in cloud.journal(since)] == ["/health"]
    log = cloud_process.log_file.read_text()
    assert not [s for s in secrets[:5] if s in log]


def test_plain_http_listener_records_and_never_serves(cloud: CloudControl,
                                                      paired_device: PairedDevice) -> None:
    answer = httpx.get(f"{cloud.plain_http_url}/v2/devices/me?token=abc",
                       headers={"Authorization": f"Bearer {paired_device.access_token}",
                                "x-client-version": "1.4.0"})
    assert answer.status_code == 403 and "HTTPS required" in answer.text
    parts = urlsplit(cloud.plain_http_url)
    with socket.create_connection((parts.hostname, parts.port)) as raw:
        raw.sendall(b"\x16\x03\x01garbage")  # not HTTP at all
        raw.shutdown(socket.SHUT_WR)
        assert raw.recv(100).startswith(b"HTTP/1.1 403")
    attempts = wait_until(lambda: len(cloud.plain_http_attempts()) == 2 and
                          cloud.plain_http_attempts(), what="two recorded attempts")
    first = attempts[0]
    assert first["method"] == "GET" and first["path"] == "/v2/devices/me?token=%5Bredacted%5D"
    assert first["headers"]["authorization"] == "[redacted]"
    assert first["headers"]["x-client-version"] == "1.4.0"
    assert paired_device.access_token not in str(attempts)


def test_openapi_documents_every_control_path(api: httpx.Client) -> None:
    schema = api.get("/_bench/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    for path in ("/state", "/reset", "/settings", "/clients", "/projects", "/codes",
                 "/codes/{user_code}/approve", "/codes/{user_code}/deny", "/devices",
                 "/devices/{device_id}/pause", "/tokens/expire", "/clock/advance", "/faults",
                 "/journal", "/ledger", "/assets", "/plain-http", "/websockets"):
        assert path in schema["paths"], path


@pytest.mark.parametrize(("kind", "status"), [("service_unavailable", 503),
                                               ("time_skewed", 403), ("no_such_upload", 404)])
def test_shared_table_kinds_on_the_api_answer_detailed(api: httpx.Client, cloud: CloudControl,
                                                       paired_device: PairedDevice, kind: str,
                                                       status: int) -> None:
    cloud.add_fault({"target": "api", "kind": kind, "path": "^/v2/devices/me$"})
    answer = api.get("/v2/devices/me", headers=paired_device.headers)
    assert answer.status_code == status and answer.json()["code"] == status
    assert api.get("/v2/devices/me", headers=paired_device.headers).status_code == 200


def test_the_schema_names_every_fault_kind_and_each_is_taken(api: httpx.Client,
                                                              cloud: CloudControl) -> None:
    """The documented kinds are the emulator's (the 409 conflict kinds were missing)."""
    schema = api.get("/_bench/openapi.json").json()
    body = schema["paths"]["/faults"]["post"]["requestBody"]["content"]["application/json"]
    kinds = body["schema"]["properties"]["kind"]["enum"]
    assert {"conflict_slow_down", "conflict_invalid_client", "slow_down", "drop"} <= set(kinds)
    for kind in kinds:
        target = "api" if kind.startswith(("conflict_", "slow_")) else "s3"
        rule = {"target": target, "kind": kind}
        if kind == "slow_down":
            rule["path"] = "/v2/auth/token"
        assert cloud.add_fault(rule), kind
    assert sorted(f["kind"] for f in cloud.faults()) == sorted(kinds)


def test_settings_validation(cloud: CloudControl) -> None:
    assert cloud.settings()["device_code_lifetime"] == 120
    assert cloud.update_settings(device_code_lifetime=30)["device_code_lifetime"] == 30
    for bad, words in [({"nope": 1}, "unknown setting"), ({"device_code_lifetime": "x"}, "int"),
                       ({"device_code_lifetime": 500}, "1..120"),
                       ({"offset_sign": "maybe"}, "offset_sign"),
                       ({"honour_parts": 1}, "bool")]:
        with pytest.raises(CloudError, match=words):
            cloud.update_settings(**bad)
    cloud.reset()
    assert cloud.settings()["device_code_lifetime"] == 120


def test_control_errors_and_state(api: httpx.Client, cloud: CloudControl) -> None:
    with pytest.raises(CloudError, match="seconds"):
        cloud.advance_clock(-5)
    with pytest.raises(CloudError, match="name is required"):
        cloud.create_project("")
    with pytest.raises(CloudError, match="no project"):
        cloud.approve("123456", "missing")
    with pytest.raises(CloudError, match="no such device"):
        cloud.pause_device("missing")
    bad = api.post("/_bench/v1/projects", content=b"{oops",
                   headers={"content-type": "application/json"}, auth=cloud.auth)
    assert bad.status_code == 400 and "JSON" in bad.json()["error"]
    assert api.get("/_bench/v1/nothing", auth=cloud.auth).status_code == 404
    cloud.create_project("P")
    state = cloud.state()
    assert state["projects"] == 1 and state["clock_offset"] == 0
    cloud.advance_clock(10)
    assert cloud.state()["clock_offset"] == 10
    cloud.reset()
    assert cloud.state()["projects"] == 0 and cloud.state()["clock_offset"] == 0


def test_cloud_control_implements_the_protocol(cloud: CloudControl) -> None:
    assert isinstance(cloud, Cloud)


def test_token_calls_are_attributed_to_the_device(api: httpx.Client, cloud: CloudControl,
                                                  paired_device: PairedDevice) -> None:
    api.post("/v2/auth/token", data={
        "grant_type": "refresh_token", "client_id": paired_device.client_id,
        "client_secret": paired_device.client_secret,
        "refresh_token": paired_device.refresh_token})
    tokens = [j for j in cloud.journal() if j["path"] == "/v2/auth/token"]
    assert tokens and all(j["device_id"] == paired_device.device_id for j in tokens)


def test_oversized_json_body_is_413(api: httpx.Client, paired_device: PairedDevice) -> None:
    body = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    answer = api.post("/v2/devices/assets", content=body,
                      headers={**paired_device.headers, "content-type": "application/json"})
    assert_detailed(answer, 413)
    assert api.get("/health").status_code == 200


def test_unreachable_cloud_is_a_cloud_error(cloud: CloudControl) -> None:
    with CloudControl("https://127.0.0.1:9", cloud.ca_bundle) as dead, \
            pytest.raises(CloudError, match="unreachable"):
        dead.state()

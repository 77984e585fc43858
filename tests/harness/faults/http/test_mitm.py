"""mitmproxy 12 in reverse mode in front of a real HTTPS upstream, real TLS on loopback."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from harness.errors import ConfigError, FaultInjectionError
from harness.faults.http.addons import ErrorInjector, ErrorRule, FlowKiller, HeaderAudit
from harness.faults.http.interceptor import Interceptor, untrusted_interception
from harness.faults.http.runner import MitmProxy
from tests.waiting import wait_until as wait_for

from .conftest import Upstream


@pytest.fixture
def make_proxy(tmp_path: Path, tls_upstream: Upstream) -> Iterator[Callable[..., MitmProxy]]:
    started: list[MitmProxy] = []

    def make(addons: list[object], **options: object) -> MitmProxy:
        proxy = MitmProxy(f"reverse:{tls_upstream.url}@127.0.0.1:0", addons,
                          tmp_path / f"mitm{len(started)}",
                          ssl_verify_upstream_trusted_ca=str(tls_upstream.ca),
                          keep_host_header=True, **options)
        started.append(proxy)
        return proxy.start()

    yield make
    for proxy in started:
        proxy.stop()


def client_for(proxy: MitmProxy) -> httpx.Client:
    return httpx.Client(base_url=proxy.url, verify=ssl.create_default_context(cafile=proxy.ca_cert),
                        timeout=10)


def test_injected_503_reaches_client_then_upstream_answers(make_proxy, tls_upstream) -> None:
    injector = ErrorInjector([{"target": "s3", "kind": "slowdown", "method": "PUT",
                               "path": r"^/upload/", "count": 1}])
    proxy = make_proxy([injector], stream_large_bodies="64k")
    body = b"x" * 300_000  # above stream_large_bodies: injection must still win
    with client_for(proxy) as client:
        first = client.put("/upload/part1", content=body)
        second = client.put("/upload/part1", content=body)
    assert first.status_code == 503
    assert first.headers["content-type"] == "application/xml"
    assert "<Code>SlowDown</Code>" in first.text
    assert first.headers["retry-after"] == "1"
    assert second.status_code == 200
    # only the second PUT reached the upstream, with the full body and the device's Host
    assert [r["bytes"] for r in tls_upstream.received] == [len(body)]
    assert tls_upstream.received[0]["host"] == f"127.0.0.1:{proxy.port}"
    assert [(i.kind, i.status, i.upstream_saw_body) for i in injector.injections] == [
        ("slowdown", 503, False)]


@pytest.mark.parametrize(("kind", "status", "marker"), [
    ("internal_error", 500, "<Code>InternalError</Code>"),
    ("request_timeout", 400, "<Code>RequestTimeout</Code>"),
    ("expired_url", 403, "Request has expired"),
])
def test_s3_error_kinds(make_proxy, kind: str, status: int, marker: str) -> None:
    proxy = make_proxy([ErrorInjector([ErrorRule(kind=kind)])])
    with client_for(proxy) as client:
        response = client.put("/bucket/key", content=b"abc")
    assert response.status_code == status
    assert marker in response.text


def test_api_errors_detailed_and_retry_after(make_proxy) -> None:
    injector = ErrorInjector([
        ErrorRule(kind="unauthorized", target="api", path=r"^/v2/devices/"),
        ErrorRule(kind="too_many_requests", target="api", path=r"/parts", retry_after=7),
    ])
    proxy = make_proxy([injector])
    with client_for(proxy) as client:
        denied = client.post("/v2/devices/heartbeat", json={})
        limited = client.post("/v2/assets/1/realtime/parts", json={})
    assert denied.status_code == 401
    assert denied.json()["errors"][0]["title"] == "Not Authorized"
    assert "invalid_token" in denied.headers["www-authenticate"]
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"


def test_drop_closes_without_response(make_proxy, tls_upstream) -> None:
    proxy = make_proxy([ErrorInjector([ErrorRule(kind="drop", count=None)])])
    with client_for(proxy) as client, pytest.raises(httpx.TransportError):
        client.put("/x", content=b"abc")
    assert tls_upstream.received == []


def test_header_audit_sees_every_request_never_the_token(make_proxy) -> None:
    audit = HeaderAudit()
    proxy = make_proxy([audit])
    with client_for(proxy) as client:
        client.get("/v2/me", headers={"authorization": "Bearer s3cr3t-token",
                                      "x-client-version": "1.4.0"})
        client.put("/upload/a?X-Amz-Signature=abcdef0123&partNumber=1", content=b"12345",
                   headers={"content-type": "video/quicktime"})
        client.post("/v2/auth/token", data={"grant_type": "refresh_token"})
    wait_for(lambda: len(audit.records) == 3)
    me, put, token = audit.records
    assert (me.method, me.path, me.client_version, me.auth_scheme) == ("GET", "/v2/me", "1.4.0", "Bearer")
    assert "s3cr3t" not in repr(audit.records) and "abcdef0123" not in repr(audit.records)
    assert put.path == "/upload/a?X-Amz-Signature=[redacted]&partNumber=1"
    assert (put.content_type, put.content_length, put.body_length, put.length_matches) == (
        "video/quicktime", 5, 5, True)
    assert put.client_version is None and put.auth_scheme is None
    assert token.method == "POST" and token.tls_version is not None


def test_flow_killer_cuts_mid_body(make_proxy, tls_upstream) -> None:
    killer = FlowKiller(method="PUT", path=r"^/upload/", after_bytes=100_000)
    proxy = make_proxy([killer])
    with client_for(proxy) as client:
        with pytest.raises(httpx.TransportError):
            client.put("/upload/big", content=b"y" * 2_000_000)
        assert client.get("/after").status_code == 200  # next request goes through
    assert [k.bytes_forwarded for k in killer.kills] == [100_000]
    assert all(r["path"] != "/upload/big" or r["bytes"] <= 100_000 for r in tls_upstream.received)


def test_untrusting_client_refuses_interception(tmp_path, tls_upstream) -> None:
    interceptor = Interceptor()
    with untrusted_interception(tls_upstream.url, tls_upstream.ca, [interceptor], tmp_path) as proxy:
        strict = ssl.create_default_context(cafile=tls_upstream.ca)  # trusts the real server only
        with httpx.Client(verify=strict, timeout=5) as client, pytest.raises(httpx.ConnectError):
            client.get(f"{proxy.url}/v2/me")
        wait_for(lambda: interceptor.failed_handshakes)
        assert interceptor.requests_seen == []
        assert interceptor.verdict() == "refused"
        assert "trust" in (interceptor.failed_handshakes[0].error or "")
        # positive control: a client trusting the interceptor's CA gets through
        with httpx.Client(verify=ssl.create_default_context(cafile=proxy.ca_cert), timeout=5) as c:
            assert c.get(f"{proxy.url}/v2/me").status_code == 200
        assert interceptor.verdict() == "accepted"
        assert [r[2] for r in interceptor.requests_seen] == ["/v2/me"]


def test_update_options_thread_safe_and_rejects_unknown(make_proxy) -> None:
    proxy = make_proxy([])
    proxy.update_options(stream_large_bodies="1m")
    with pytest.raises(FaultInjectionError, match="no_such_option"):
        proxy.update_options(no_such_option=1)


def test_start_failure_names_reason(tmp_path, make_proxy) -> None:
    first = make_proxy([])
    clash = MitmProxy(f"reverse:https://127.0.0.1:1@127.0.0.1:{first.port}", [], tmp_path / "c")
    with pytest.raises(FaultInjectionError, match=r"did not start.*address already in use"):
        clash.start(timeout=10)


def test_bad_rules_named() -> None:
    with pytest.raises(ConfigError, match="unknown fault kind 'slow'"):
        ErrorRule(kind="slow")
    with pytest.raises(ConfigError, match="regex"):
        ErrorRule(kind="slowdown", path="(")
    with pytest.raises(ConfigError, match="bogus"):
        ErrorRule.from_dict({"kind": "slowdown", "bogus": 1})


def test_chunked_upload_still_gets_the_injected_error(make_proxy, tls_upstream) -> None:
    injector = ErrorInjector([ErrorRule(kind="internal_error", method="PUT")])
    proxy = make_proxy([injector], stream_large_bodies="16k")

    def chunks() -> Iterator[bytes]:  # no Content-Length: mitmproxy's "late" size check
        for _ in range(20):
            yield b"z" * 8192

    with client_for(proxy) as client:
        response = client.put("/upload/chunked", content=chunks())
    assert response.status_code == 500
    assert tls_upstream.received == []
    assert [i.upstream_saw_body for i in injector.injections] == [False]


def test_flow_killer_short_body_stored_but_never_acknowledged(make_proxy, tls_upstream) -> None:
    killer = FlowKiller(path=r"^/v2/", after_bytes=1_000_000, count=None)
    proxy = make_proxy([killer])
    with client_for(proxy) as client:
        for _ in range(2):
            with pytest.raises(httpx.TransportError):
                client.post("/v2/assets", json={"name": "A001.mov"})
    assert len(killer.kills) == 2
    wait_for(lambda: len(tls_upstream.received) == 2)
    assert [r["bytes"] for r in tls_upstream.received] == [19, 19]  # whole body got through

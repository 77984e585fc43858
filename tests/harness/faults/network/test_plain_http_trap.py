"""The plain-HTTP trap on the API's own address (C2C-SEC-01): a device that speaks http://
to the https:// host:port it was given is recorded and refused; TLS passes untouched."""

from __future__ import annotations

import ssl

import httpx

from harness.faults.network import NetworkLink
from harness.faults.network.proxy import plain_http_request
from harness.protocols import PlainHttpTrap
from tests.harness.faults.network.tls_server import TlsServer


def test_first_bytes_tell_http_from_tls() -> None:
    assert plain_http_request(b"GET /v2/devices/me?x=secret HTTP/1.1\r\nHost: a\r\n\r\n") == ("GET", "/v2/devices/me")
    assert plain_http_request(b"POST http://127.0.0.1:9/v2/auth/token HTTP/1.1\r\n") == ("POST", "/v2/auth/token")
    assert plain_http_request(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") is None  # a ClientHello
    assert plain_http_request(b"") is None
    assert plain_http_request(b"HELLO world") is None
    assert plain_http_request(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == ("PRI", "*")  # cleartext HTTP/2


def test_plain_http_to_the_api_port_is_recorded_and_refused(link: NetworkLink, tls: TlsServer) -> None:
    assert isinstance(link, PlainHttpTrap)
    assert link.plain_http_attempts() == []
    plain = link.device_api_url.replace("https://", "http://")
    answer = httpx.get(plain + "/v2/devices/me?token=abc", headers={"Authorization": "Bearer x" * 4}, timeout=10)
    assert answer.status_code == 403
    attempts = link.plain_http_attempts()
    assert len(attempts) == 1
    assert attempts[0]["method"] == "GET" and attempts[0]["path"] == "/v2/devices/me"
    assert "abc" not in str(attempts) and "Bearer" not in str(attempts)  # no query, no headers kept


def test_tls_is_untouched_by_the_trap(link: NetworkLink, tls: TlsServer) -> None:
    context = ssl.create_default_context(cafile=str(tls.cert))
    for _ in range(3):
        response = httpx.get(link.device_api_url + "/", verify=context, timeout=10)
        assert response.status_code == 200 and response.content == b"hello over tls"
    assert link.plain_http_attempts() == []

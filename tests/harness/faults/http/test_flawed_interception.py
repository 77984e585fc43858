"""Interceptors whose certificate is signed by the trusted CA but carries one flaw (C2C-SEC-02).

Real mitmproxy, real TLS on loopback: a client that verifies fully refuses each one; a client
that checks the chain but not the host name gets through the wrong-host one (the defect the
scenario exists to catch).
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from harness.errors import FaultInjectionError
from harness.faults.http.flawed_certs import WRONG_HOST, flawed_certificate
from harness.faults.http.interceptor import Interceptor, interception
from tests.waiting import wait_until as wait_for

from .conftest import Upstream


def _presented(port: int) -> x509.Certificate:
    """The certificate the interceptor shows, fetched without verification."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.mark.parametrize("flaw", ["wrong-host", "expired"])
def test_a_fully_verifying_client_refuses_each_flaw(tmp_path: Path, tls_upstream: Upstream, flaw: str) -> None:
    interceptor = Interceptor()
    with interception(tls_upstream.url, tls_upstream.ca, [interceptor], tmp_path, flaw=flaw,
                      ca_key=tls_upstream.ca_key) as proxy:
        strict = ssl.create_default_context(cafile=tls_upstream.ca)
        with httpx.Client(verify=strict, timeout=5) as client, pytest.raises(httpx.ConnectError) as info:
            client.get(f"{proxy.url}/v2/me")
        reason = "mismatch" if flaw == "wrong-host" else "expired"
        assert reason in str(info.value).lower()
        wait_for(lambda: interceptor.failed_handshakes)
        assert interceptor.requests_seen == [] and interceptor.verdict() == "refused"
        cert = _presented(proxy.port)
    ca = x509.load_pem_x509_certificate(tls_upstream.ca.read_bytes())
    assert cert.issuer == ca.subject, "signed by the CA the client trusts: only the flaw is wrong"
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    if flaw == "expired":
        assert cert.not_valid_after_utc < dt.datetime.now(dt.UTC)
        assert "localhost" in names.get_values_for_type(x509.DNSName)
    else:
        assert names.get_values_for_type(x509.DNSName) == [WRONG_HOST]
        assert names.get_values_for_type(x509.IPAddress) == []


def test_a_client_that_skips_the_host_name_gets_through(tmp_path: Path, tls_upstream: Upstream) -> None:
    """Positive control: the wrong-host interceptor is only refused because of the host name."""
    interceptor = Interceptor()
    with interception(tls_upstream.url, tls_upstream.ca, [interceptor], tmp_path, flaw="wrong-host",
                      ca_key=tls_upstream.ca_key) as proxy:
        lax = ssl.create_default_context(cafile=tls_upstream.ca)
        lax.check_hostname = False
        with httpx.Client(verify=lax, timeout=5) as client:
            assert client.get(f"{proxy.url}/v2/me").status_code == 200
    assert interceptor.verdict() == "accepted"
    assert [r[2] for r in interceptor.requests_seen] == ["/v2/me"]


def test_flaws_need_the_trusted_ca_key_and_a_known_name(tmp_path: Path, tls_upstream: Upstream) -> None:
    with pytest.raises(FaultInjectionError, match="ca_key"), \
            interception(tls_upstream.url, tls_upstream.ca, [], tmp_path, flaw="expired"):
        pass
    with pytest.raises(FaultInjectionError, match="unknown interception flaw 'self-signed'"), \
            interception(tls_upstream.url, tls_upstream.ca, [], tmp_path, flaw="self-signed"):
        pass
    with pytest.raises(FaultInjectionError, match="cannot load"):
        flawed_certificate("expired", ca_cert=tls_upstream.ca, ca_key=tmp_path / "missing.pem",
                           out=tmp_path / "x.pem")
    out = flawed_certificate("wrong-host", ca_cert=tls_upstream.ca, ca_key=tls_upstream.ca_key,
                             out=tmp_path / "w.pem")
    assert out.stat().st_mode & 0o777 == 0o600

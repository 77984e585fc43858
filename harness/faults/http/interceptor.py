"""TLS interception the device must refuse: the evidence for C2C-SEC-02.

A correct device talks to the cloud with certificate verification on, so when mitmproxy
sits in the path the device must abort the handshake and send nothing. The certificate it
is shown carries one flaw (`INTERCEPTION_FLAWS`): `untrusted-ca` (a brand-new CA in a fresh
temporary confdir), or, signed by the very CA the device trusts, `wrong-host` or `expired`
(harness.faults.http.flawed_certs) — those catch a device that checks the chain only. The `Interceptor` addon records what happened:
`failed_handshakes` (tls_failed_client, with mitmproxy's reason such as "does not trust the
proxy's certificate"), `established_handshakes`, and `requests_seen` — any request at all
means the device sent data through an interceptor it should have refused.

    interceptor = Interceptor()
    with interception(upstream, upstream_ca, [interceptor], workdir, flaw="expired",
                      ca_key=upstream_ca.with_name("ca-key.pem")) as proxy:
        device_api_url = proxy.url   # give this to the device, then let it try
    verdict = interceptor.verdict()  # "refused" | "accepted" | "no-attempt"
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import FaultInjectionError
from harness.faults.http.addons import redact_path
from harness.faults.http.flawed_certs import SIGNED_FLAWS, flawed_certificate
from harness.faults.http.runner import MitmProxy

INTERCEPTION_FLAWS = ("untrusted-ca", *SIGNED_FLAWS)


@dataclass(frozen=True)
class Handshake:
    at: float
    peer: str
    sni: str | None
    error: str | None


class Interceptor:
    """Records TLS handshakes from clients and any request that got through."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failed: list[Handshake] = []
        self._established: list[Handshake] = []
        self._requests: list[tuple[float, str, str]] = []

    @staticmethod
    def _handshake(data: Any) -> Handshake:
        conn = data.conn
        peer = f"{conn.peername[0]}:{conn.peername[1]}" if conn.peername else "?"
        return Handshake(time.time(), peer, conn.sni, conn.error)

    def tls_failed_client(self, data: Any) -> None:
        with self._lock:
            self._failed.append(self._handshake(data))

    def tls_established_client(self, data: Any) -> None:
        with self._lock:
            self._established.append(self._handshake(data))

    def requestheaders(self, flow: Any) -> None:
        with self._lock:
            self._requests.append((time.time(), flow.request.method,
                                   redact_path(flow.request.path)))

    @property
    def failed_handshakes(self) -> list[Handshake]:
        with self._lock:
            return list(self._failed)

    @property
    def established_handshakes(self) -> list[Handshake]:
        with self._lock:
            return list(self._established)

    @property
    def requests_seen(self) -> list[tuple[float, str, str]]:
        """(time, method, path) of every request that reached the interceptor."""
        with self._lock:
            return list(self._requests)

    def verdict(self) -> str:
        """`accepted` if any handshake completed or request arrived, `refused` if handshakes
        only failed, `no-attempt` if the device never connected (inconclusive)."""
        if self.requests_seen or self.established_handshakes:
            return "accepted"
        if self.failed_handshakes:
            return "refused"
        return "no-attempt"


@contextmanager
def interception(upstream_url: str, upstream_ca: Path, addons: list[Any], workdir: Path | None = None,
                 *, flaw: str = "untrusted-ca", ca_key: Path | None = None,
                 **options: Any) -> Iterator[MitmProxy]:
    """Reverse-proxy `upstream_url` through mitmproxy presenting a certificate with `flaw`.

    `untrusted-ca`: mitmproxy mints certificates from a fresh CA (own temp confdir).
    `wrong-host` / `expired`: one certificate signed by `upstream_ca` (the CA the device
    trusts; its key is `ca_key`) is shown for every connection.
    """
    if flaw not in INTERCEPTION_FLAWS:
        raise FaultInjectionError(f"unknown interception flaw {flaw!r}; known: {', '.join(INTERCEPTION_FLAWS)}")
    with tempfile.TemporaryDirectory(prefix="c2c-mitm-ca-", dir=workdir) as confdir:
        if flaw != "untrusted-ca":
            if ca_key is None:
                raise FaultInjectionError(f"a {flaw} interceptor needs the trusted CA's key (ca_key)")
            pem = flawed_certificate(flaw, ca_cert=upstream_ca, ca_key=ca_key, out=Path(confdir) / f"{flaw}.pem")
            options = {**options, "certs": [f"*={pem}"]}
        proxy = MitmProxy(f"reverse:{upstream_url}@127.0.0.1:0", addons, Path(confdir),
                          ssl_verify_upstream_trusted_ca=str(upstream_ca),
                          keep_host_header=True, **options)
        proxy.start()
        try:
            yield proxy
        finally:
            proxy.stop()


@contextmanager
def untrusted_interception(upstream_url: str, upstream_ca: Path, addons: list[Any],
                           workdir: Path | None = None, **options: Any) -> Iterator[MitmProxy]:
    """Reverse-proxy `upstream_url` through mitmproxy with a freshly minted CA (own temp confdir)."""
    with interception(upstream_url, upstream_ca, addons, workdir, **options) as proxy:
        yield proxy

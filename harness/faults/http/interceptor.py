"""TLS interception with a CA nobody trusts: the evidence for C2C-SEC-02.

A correct device talks to the cloud with certificate verification on, so when mitmproxy
sits in the path with a brand-new CA (fresh temporary confdir) the device must abort the
handshake and send nothing. The `Interceptor` addon records what happened:
`failed_handshakes` (tls_failed_client, with mitmproxy's reason such as "does not trust the
proxy's certificate"), `established_handshakes`, and `requests_seen` — any request at all
means the device sent data through an interceptor it should have refused.

    interceptor = Interceptor()
    with untrusted_interception(upstream, upstream_ca, [interceptor], workdir) as proxy:
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

from harness.faults.http.addons import redact_path
from harness.faults.http.runner import MitmProxy


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
def untrusted_interception(upstream_url: str, upstream_ca: Path, addons: list[Any],
                           workdir: Path | None = None, **options: Any) -> Iterator[MitmProxy]:
    """Reverse-proxy `upstream_url` through mitmproxy with a freshly minted CA (own temp confdir)."""
    with tempfile.TemporaryDirectory(prefix="c2c-mitm-ca-", dir=workdir) as confdir:
        proxy = MitmProxy(f"reverse:{upstream_url}@127.0.0.1:0", addons, Path(confdir),
                          ssl_verify_upstream_trusted_ca=str(upstream_ca),
                          keep_host_header=True, **options)
        proxy.start()
        try:
            yield proxy
        finally:
            proxy.stop()

"""Client TLS contexts, built once and shared: building one parses a CA bundle (certifi's
~150 certificates take 80 ms), and a certification builds hundreds of httpx clients.

`ssl_context` trusts only the bench CA (the emulator, the interceptors); `default_context` is
what httpx builds for `verify=True`, for the bench's own loopback clients (device status and
control APIs, Toxiproxy), which otherwise each loaded certifi: ~5 % of a bench worker's CPU.
"""

from __future__ import annotations

import functools
import os
import ssl
from pathlib import Path

import httpx


def ssl_context(ca_bundle: Path) -> ssl.SSLContext:
    """A client TLS context that trusts only the bench CA.

    One context per CA file version, shared: building one loads and parses the bundle (2 % of a
    bench worker's CPU when each client built its own). A new CA at the same path (a restarted
    emulator) has a new inode, size or mtime, so it gets a new context.
    """
    st = os.stat(ca_bundle)
    return _context_for(str(ca_bundle), (st.st_ino, st.st_size, st.st_mtime_ns))


@functools.lru_cache(maxsize=16)
def _context_for(ca_bundle: str, version: tuple[int, int, int]) -> ssl.SSLContext:
    del version  # part of the cache key only
    return ssl.create_default_context(cafile=ca_bundle)


@functools.cache
def default_context() -> ssl.SSLContext:
    """httpx's own default (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), built once per process."""
    return httpx.create_ssl_context()

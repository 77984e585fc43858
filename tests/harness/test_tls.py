"""Client TLS contexts are built once and shared (harness.tls): each build parses a CA bundle,
and a certification's bench worker builds hundreds of httpx clients."""

from __future__ import annotations

import shutil
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.bdd.declarations import probe_status_url
from harness.cloud.ca import ensure_certs
from harness.faults.network.client import ToxiproxyClient
from harness.tls import default_context, ssl_context


def test_a_tls_context_is_shared_per_ca_and_a_new_ca_at_the_same_path_gets_its_own(tmp_path: Path) -> None:
    ca = ensure_certs(tmp_path / "cloud").ca_cert
    first = ssl_context(ca)
    assert ssl_context(ca) is first  # built once: loading the bundle is the cost
    old = [c["serialNumber"] for c in first.get_ca_certs()]
    shutil.rmtree(tmp_path / "cloud" / "ca")
    ca = ensure_certs(tmp_path / "cloud").ca_cert  # a fresh emulator's new CA, same path
    fresh = ssl_context(ca)
    assert fresh is not first
    assert [c["serialNumber"] for c in fresh.get_ca_certs()] != old


def test_the_default_context_still_verifies_and_is_built_once() -> None:
    context = default_context()
    assert context is default_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs() or context.cert_store_stats()["x509_ca"]  # certifi or the OS store


def test_the_benchs_loopback_clients_load_no_bundle_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Toxiproxy clients and status probes were each loading certifi (80 ms): ~5 % of a worker."""
    default_context()  # built once for the process
    built: list[Any] = []
    real: Callable[..., ssl.SSLContext] = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(kwargs.get("cafile"))
        return real(*args, **kwargs)
    monkeypatch.setattr(ssl, "create_default_context", counting)
    for _ in range(3):
        ToxiproxyClient("http://127.0.0.1:9").close()
        assert probe_status_url("http://127.0.0.1:9/status.json", timeout=0.2) is None
    assert built == []

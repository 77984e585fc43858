"""The emulator's certificate names the address it serves (issue #17: a bench on the rig's LAN).

A camera on the LAN dials the emulator's LAN address and checks the certificate against it;
one that named only loopback would make every real camera fail TLS. 127.0.0.2 stands in for
the LAN address (another local address than the default 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
from cryptography import x509

from harness.cloud.ca import ensure_certs
from harness.cloud.runner import EmulatorProcess
from harness.tls import ssl_context


def names_in(cert: Path) -> set[str]:
    san = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    return {str(n.value) for n in san}


def test_a_new_name_reissues_only_the_server_certificate(tmp_path: Path) -> None:
    first = ensure_certs(tmp_path)
    assert names_in(first.server_cert) == {"localhost", "127.0.0.1", "::1"}
    ca, server = first.ca_cert.read_bytes(), first.server_cert.read_bytes()
    assert ensure_certs(tmp_path, ("0.0.0.0", "::")).server_cert.read_bytes() == server  # wildcards
    again = ensure_certs(tmp_path, ("10.1.2.3", "Bench-Rig.local", "[fd00::5]"))
    assert names_in(again.server_cert) == {"localhost", "127.0.0.1", "::1", "10.1.2.3",
                                           "bench-rig.local", str(ipaddress.ip_address("fd00::5"))}
    assert again.ca_cert.read_bytes() == ca  # devices keep trusting the same CA
    reissued = again.server_cert.read_bytes()
    assert reissued != server
    assert ensure_certs(tmp_path, ("10.1.2.3",)).server_cert.read_bytes() == reissued  # kept


def test_an_emulator_on_another_address_is_trusted_there(tmp_path: Path) -> None:
    with EmulatorProcess(tmp_path / "cloud", host="127.0.0.2") as emulator:
        assert emulator.api_url.startswith("https://127.0.0.2:")
        with httpx.Client(verify=ssl_context(emulator.ca_bundle), trust_env=False) as client:
            assert client.get(emulator.api_url + "/health").status_code == 200  # name checked
        assert "127.0.0.2" in names_in(emulator.ca_bundle.parent / "server.pem")

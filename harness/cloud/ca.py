"""Bench CA and server certificate, made once per data directory and reused after.

Devices under test trust `ca/ca.pem`; the emulator serves `ca/server.pem`. Private keys
are written 0600 and never leave the data directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CertPaths:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def bench_host_names() -> list[x509.GeneralName]:
    """The names every emulator certificate is valid for: loopback."""
    return [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]


def general_name(name: str) -> x509.GeneralName | None:
    """A Host name or address as a certificate name; None for a wildcard bind (0.0.0.0, ::)."""
    text = name.strip().strip("[]").lower()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return x509.DNSName(text) if text else None
    return None if address.is_unspecified else x509.IPAddress(address)


def wanted_names(extra: tuple[str, ...]) -> list[x509.GeneralName]:
    names = bench_host_names()
    for name in extra:
        general = general_name(name)
        if general is not None and general not in names:
            names.append(general)
    return names


def ensure_certs(data_dir: Path, extra_names: tuple[str, ...] = ()) -> CertPaths:
    """The CA and server certificate under DATA/ca, made unless they already exist.

    The server certificate names loopback plus `extra_names` (the `--host` the emulator binds
    and its `--allow-host` names): a camera on the rig's LAN checks the address it dials. When
    a later run serves a name the certificate lacks, only the server certificate is issued
    again, by the same CA, so devices that trust `ca/ca.pem` keep trusting the emulator.
    """
    ca_dir = Path(data_dir) / "ca"
    ca_dir.mkdir(parents=True, exist_ok=True)
    paths = CertPaths(
        ca_dir / "ca.pem", ca_dir / "ca-key.pem", ca_dir / "server.pem", ca_dir / "server-key.pem"
    )
    names = wanted_names(extra_names)
    if all(p.exists() for p in (paths.ca_cert, paths.ca_key, paths.server_cert, paths.server_key)):
        if set(names) <= set(_served_by(paths.server_cert)):
            return paths
        ca_cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{paths.ca_key} is not the bench CA's EC key")
        _issue_server(paths, ca_cert, ca_key, names)
        return paths

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "c2c-bench CA")])
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(paths.ca_key, _key_pem(ca_key), 0o600)
    _issue_server(paths, ca_cert, ca_key, names)
    _write(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return paths


def _served_by(cert_path: Path) -> list[x509.GeneralName]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(names)


def _issue_server(paths: CertPaths, ca_cert: x509.Certificate,
                  ca_key: ec.EllipticCurvePrivateKey, names: list[x509.GeneralName]) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(paths.server_key, _key_pem(server_key), 0o600)
    _write(paths.server_cert, server_cert.public_bytes(serialization.Encoding.PEM), 0o644)

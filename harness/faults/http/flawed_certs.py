"""Server certificates with one flaw each, for the TLS interceptor (C2C-SEC-02).

An untrusted CA is the easy case. A device can also verify the chain and still skip the
hostname or the validity period (embedded TLS stacks often ship `check_hostname = False`).
These certificates are signed by the CA the device trusts (the bench CA), so the chain is
good and only the named flaw is left for the device to catch:

- `wrong-host`: valid now, but names only `wrong-host.invalid` (no IP, no localhost);
- `expired`: names the emulator's hosts (`bench_host_names`), but expired yesterday.

    pem = flawed_certificate("expired", ca_cert=ca / "ca.pem", ca_key=ca / "ca-key.pem",
                             out=workdir / "expired.pem")   # cert + key, mitmproxy `certs`
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.cloud.ca import bench_host_names
from harness.errors import FaultInjectionError

# flaws a certificate signed by the trusted CA can carry; "untrusted-ca" needs no minting
SIGNED_FLAWS = ("wrong-host", "expired")
WRONG_HOST = "wrong-host.invalid"


def flawed_certificate(flaw: str, *, ca_cert: Path, ca_key: Path, out: Path) -> Path:
    """Write `out` (certificate then private key, PEM, 0600) signed by the CA at ca_cert/ca_key."""
    if flaw not in SIGNED_FLAWS:
        raise FaultInjectionError(f"unknown certificate flaw {flaw!r}; known: {', '.join(SIGNED_FLAWS)}")
    try:
        issuer = x509.load_pem_x509_certificate(Path(ca_cert).read_bytes())
        signer = serialization.load_pem_private_key(Path(ca_key).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise FaultInjectionError(
            f"a {flaw} certificate must be signed by the CA the device trusts; cannot load it "
            f"({ca_cert}, {ca_key}): {type(exc).__name__}") from None
    now = dt.datetime.now(dt.UTC)
    if flaw == "expired":
        host, names = "localhost", bench_host_names()
        not_before, not_after = now - dt.timedelta(days=30), now - dt.timedelta(days=1)
    else:
        host, names = WRONG_HOST, [x509.DNSName(WRONG_HOST)]
        not_before, not_after = now - dt.timedelta(days=1), now + dt.timedelta(days=30)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    try:
        cert = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        ).sign(signer, hashes.SHA256())  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise FaultInjectionError(f"cannot sign a {flaw} certificate with {ca_key}: {exc}") from None
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return out

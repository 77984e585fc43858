"""The seal that binds a certificate to the run that produced it.

A certificate is rebuilt from `results.json` by `c2c-certify report`, so the results file is
what must not change after the run. The plugin seals it at the end of the run (as Android
CTS binds each result folder to the device's fingerprint with a checksum file): the digest
of the profile it certified, the firmware, the digest of the emulator's whole request
journal, and a digest over the results records, all signed with Ed25519 by this bench's
own key. `report` recomputes every digest, checks the signature, and refuses results that
differ, so an edited verdict, measurement or firmware string cannot become a certificate.

The private key is the lab's: `C2C_SEAL_KEY_FILE`, or `~/.config/c2c-bench/seal.key`
(PEM, created 0600 on first use). The public key goes into every seal, and its
fingerprint (`key_id`) names the bench; verification trusts only the public key of the
key file it is given, so a results file re-signed with another key is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.errors import ConfigError

SCHEME = "c2c-seal/ed25519/1"
KEY_ENV = "C2C_SEAL_KEY_FILE"


class SealBroken(ConfigError):
    """results.json no longer matches the seal written at the end of its run."""


def canonical(value: Any) -> bytes:
    """One byte string per JSON value (sorted keys, no spaces), so digests are stable."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def journal_digest(page: Callable[[int], list[dict[str, Any]]]) -> tuple[str, int]:
    """SHA-256 over every journal row, paged from the start; (hex digest, rows)."""
    h = hashlib.sha256()
    since, rows = 0, 0
    while True:
        batch = page(since)
        if not batch:
            return h.hexdigest(), rows
        for row in batch:
            h.update(canonical(row) + b"\n")
        rows += len(batch)
        newest = max(int(r.get("id", 0)) for r in batch)
        if newest <= since:
            raise ConfigError(f"journal: paging did not advance past row {since}")
        since = newest


def profile_digest(path: Path | None, summary: Mapping[str, Any]) -> str:
    """The profile file's bytes when there is one (what the vendor wrote), plus its parsed summary."""
    h = hashlib.sha256()
    if path is not None and path.is_file():
        h.update(path.read_bytes())
    h.update(canonical(dict(summary)))
    return h.hexdigest()


def key_path() -> Path:
    explicit = os.environ.get(KEY_ENV)
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "c2c-bench" / "seal.key"


def bench_key(*, create: bool = True) -> Ed25519PrivateKey:
    """This bench's signing key (made on first use, readable by its owner only)."""
    path = key_path()
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        if not create:
            raise ConfigError(f"seal: no key file at {path} (set {KEY_ENV} to this bench's key file)") from None
        pem = _create_key(path)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"seal: key file {path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"seal: key file {path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def _create_key(path: Path) -> bytes:
    """Write a new key whole, or take the one a concurrent run wrote first (hard link: atomic, no overwrite)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600, a name of its own
    tmp = Path(name)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pem = path.read_bytes()  # another run made the lab's key first: use that one
    finally:
        tmp.unlink(missing_ok=True)
    return pem


def public_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(base64.b64decode(public_text(key))).hexdigest()[:16]


def _fields(device: Mapping[str, Any], run: Mapping[str, Any], results: Iterable[Mapping[str, Any]],
            bound: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "scheme": SCHEME,
        "firmware": str(device.get("firmware", "")),
        "profile_sha256": str(bound.get("profile_sha256", "")),
        "journal_sha256": str(bound.get("journal_sha256", "")),
        "journal_rows": int(bound.get("journal_rows", 0)),
        "device_sha256": digest(dict(device)),
        "run_sha256": digest({k: v for k, v in run.items() if k != "seal"}),
        "results_sha256": digest([dict(r) for r in results]),
    }


def seal(device: Mapping[str, Any], run: Mapping[str, Any], results: Iterable[Mapping[str, Any]],
         bound: Mapping[str, Any], *, key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
    """The seal for one run: every digest, the bench's public key, and its signature over them."""
    key = key if key is not None else bench_key()
    fields = _fields(device, run, results, bound)
    fields["public_key"] = public_text(key.public_key())
    fields["key_id"] = key_id(key.public_key())
    fields["signature"] = base64.b64encode(key.sign(canonical(fields))).decode("ascii")
    return fields


def verify(document: Mapping[str, Any], *, key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
    """Check a results document against its seal; return the seal or raise SealBroken naming what differs."""
    stored = document.get("seal")
    if not isinstance(stored, Mapping):
        raise SealBroken("results.json carries no seal: it was not written by a certification run")
    trusted = (key if key is not None else bench_key(create=False)).public_key()
    if stored.get("key_id") != key_id(trusted) or stored.get("public_key") != public_text(trusted):
        raise SealBroken(f"results.json was sealed by another bench (key {stored.get('key_id')}); "
                         f"verify it with that bench's key ({KEY_ENV})")
    fields = _fields(document.get("device", {}), document.get("run", {}), document.get("results", []), stored)
    changed = [name for name, value in fields.items() if stored.get(name) != value]
    if changed:
        raise SealBroken(f"results.json does not match its seal ({', '.join(changed)} changed after the run); "
                         "refusing to build a certificate from it")
    signed = {**fields, "public_key": stored["public_key"], "key_id": stored["key_id"]}
    try:
        trusted.verify(base64.b64decode(str(stored.get("signature", ""))), canonical(signed))
    except (InvalidSignature, ValueError):
        raise SealBroken("results.json's seal signature does not verify with this bench's key; "
                         "refusing to build a certificate") from None
    return dict(stored)

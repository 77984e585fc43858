from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from reference_device.credentials import CredentialStore, SecretRedactor, atomic_write
from reference_device.errors import DeviceError


def test_encrypted_at_rest_and_key_private(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "credentials.enc", tmp_path / "key")
    store.save({"client_secret": "top-secret-1234", "access_token": "acc-token-5678"})
    blob = (tmp_path / "credentials.enc").read_bytes()
    assert b"top-secret-1234" not in blob and b"acc-token-5678" not in blob
    assert os.stat(tmp_path / "key").st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "credentials.enc").st_mode & 0o777 == 0o600
    again = CredentialStore(tmp_path / "credentials.enc", tmp_path / "key")
    assert again.load()["access_token"] == "acc-token-5678"


def test_wipe_keeps_only_secret(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "c.enc", tmp_path / "key")
    store.save({"client_secret": "sec-abcdef", "access_token": "a-123456", "refresh_token": "r-123456"})
    store.wipe()
    assert store.load() == {"client_secret": "sec-abcdef"}
    store.wipe(keep=())
    assert store.load() == {}
    assert not (tmp_path / "c.enc").exists()


def test_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "c.enc", tmp_path / "key")
    store.save({"access_token": "a-123456"})
    (tmp_path / "key").unlink()
    other = CredentialStore(tmp_path / "c.enc", tmp_path / "key")
    with pytest.raises(DeviceError, match="unreadable") as err:
        other.load()
    assert "a-123456" not in str(err.value)


def test_atomic_write_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_redactor_filters_message_args_and_traceback(tmp_path: Path) -> None:
    red = SecretRedactor()
    red.add("Sup3rSecretToken")
    logger = logging.getLogger("test.redact")
    logger.propagate = False
    handler = logging.FileHandler(tmp_path / "log")
    handler.addFilter(red)
    logger.addHandler(handler)
    try:
        logger.warning("token is %s", "Sup3rSecretToken")
        try:
            raise ValueError("boom Sup3rSecretToken")
        except ValueError:
            logger.exception("failed")
    finally:
        handler.close()
        logger.removeHandler(handler)
    text = (tmp_path / "log").read_text()
    assert "Sup3rSecretToken" not in text
    assert text.count("[REDACTED]") >= 2

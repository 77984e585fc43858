"""A device console copied into a report never carries a token, however the device printed it."""

from __future__ import annotations

from harness.bdd.evidence import known_secrets
from harness.cloud.control import CloudControl
from harness.cloud.testing import PairedDevice, cloud, cloud_process, paired_device  # noqa: F401
from harness.redaction import redact


def test_tokens_printed_bare_are_redacted_by_value(cloud: CloudControl, paired_device: PairedDevice) -> None:  # noqa: F811
    """Real emulator, real pairing: the tokens it issued are known and removed wherever they appear."""
    console = (f"12:00:01 paired, got {paired_device.access_token}\n"
               f"12:00:02 saving refresh {paired_device.refresh_token} to flash\n"
               f"12:00:03 secret is {paired_device.client_secret}\n")
    assert redact(console) != redact(console, known_secrets(cloud))  # the shapes alone miss bare tokens
    clean = redact(console, known_secrets(cloud))
    for secret in (paired_device.access_token, paired_device.refresh_token, paired_device.client_secret):
        assert secret not in clean
    assert clean.count("[redacted]") == 3 and "saving refresh" in clean


def test_a_cloud_that_cannot_answer_leaves_the_shapes() -> None:
    class Gone(CloudControl):
        def __init__(self) -> None:  # no connection at all
            pass

        def client_secret(self) -> str:
            raise ConnectionError("emulator stopped")

    assert known_secrets(Gone()) == []
    assert redact("Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123") == "Authorization: Bearer [redacted]"

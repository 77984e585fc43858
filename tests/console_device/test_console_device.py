"""The console stand-in as a real process against the real emulator (issue #14).

It pairs by the device-code flow (asking for a new code by itself after a denial), uploads a
captured file intact and keeps it, seals its tokens (no token or secret readable in its state
or console), and after a SIGKILL of its process group comes back paired, without uploading
again what it already delivered.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cloud.control import CloudControl
from tests.console_device.sealed import SealedStore
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
CODE = re.compile(r"PAIRING CODE: (\d{6})")


class Running:
    """One launch of the stand-in; its console goes to a file the test reads."""

    def __init__(self, cloud: CloudControl, root: Path, client_id: str) -> None:
        self.cloud, self.root, self.client_id = cloud, root, client_id
        self.watch, self.state, self.console = root / "media", root / "state", root / "console.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "C2C_CONSOLE_SECRET": self.cloud.client_secret(), "PYTHONUNBUFFERED": "1"}
        env.pop("C2C_CONSOLE_DEFECT", None)
        argv = [sys.executable, "-m", "tests.console_device.device", "--api", self.cloud.api_url,
                "--ca", str(self.cloud.ca_bundle), "--watch", str(self.watch), "--state", str(self.state),
                "--client-id", self.client_id]
        with self.console.open("ab") as out:
            self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def text(self) -> str:
        return self.console.read_text(encoding="utf-8", errors="replace") if self.console.exists() else ""

    def codes(self) -> list[str]:
        return CODE.findall(self.text())

    def capture(self, name: str, data: bytes) -> Path:
        """Atomic drop into the watch folder, as the bench does."""
        self.watch.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.part"
        tmp.write_bytes(data)
        return tmp.replace(self.watch / name)


@pytest.fixture
def device(cloud: CloudControl, tmp_path: Path) -> Iterator[Running]:
    dev = Running(cloud, tmp_path, "console-test-1")
    dev.start()
    yield dev
    dev.kill()


def test_pairs_after_a_denial_uploads_intact_and_survives_a_power_cut(cloud: CloudControl,
                                                                        device: Running) -> None:
    first = wait_until(lambda: device.codes(), 30, "a pairing code on the console")[-1]
    cloud.deny(first)
    second = wait_until(lambda: [c for c in device.codes() if c != first], 30, "a new code after the denial")[-1]
    project = cloud.create_project("Console bench")
    cloud.approve(second, project["id"])
    dev_row = wait_until(lambda: next((d for d in cloud.devices() if d["client_id"] == device.client_id), None),
                         30, "the device in the cloud project")

    data = os.urandom(3 * 1024 * 1024 + 17)
    clip = device.capture("A001_C001.mov", data)

    def delivered() -> list[dict]:
        return [r for r in cloud.ledger(dev_row["id"]) if r["name"] == clip.name and r.get("completed_at")]
    row = wait_until(delivered, 60, "the clip to arrive complete")[0]
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    assert clip.read_bytes() == data  # local media is kept

    exposed = device.text() + "".join(p.read_text(errors="replace") for p in device.state.rglob("*") if p.is_file())
    for value in [cloud.client_secret(), *cloud.issued_tokens(dev_row["id"])]:
        assert value not in exposed

    device.kill()  # a power cut
    device.start()
    codes_before = len(device.codes())
    device.capture("A001_C002.jpg", b"\xff\xd8" + os.urandom(4096))
    wait_until(lambda: any(r["name"] == "A001_C002.jpg" and r.get("completed_at")
                           for r in cloud.ledger(dev_row["id"])), 60, "the next capture after the cut")
    assert len(device.codes()) == codes_before, "it asked for a new pairing code after the power cut"
    assert [r["name"] for r in cloud.ledger(dev_row["id"])].count(clip.name) == 1, "uploaded twice"


def test_sealed_tokens_refuse_another_secret_and_a_changed_byte(tmp_path: Path) -> None:
    store = SealedStore(tmp_path / "credentials.sealed", "secret-one")
    store.save({"access": "token-value-1234567890"})
    assert "token-value" not in (tmp_path / "credentials.sealed").read_text()
    assert store.load() == {"access": "token-value-1234567890"}
    assert SealedStore(tmp_path / "credentials.sealed", "secret-two").load() is None
    raw = bytearray((tmp_path / "credentials.sealed").read_bytes())
    at = raw.index(b'"ct": "') + 8
    raw[at] = ord("0") if raw[at] != ord("0") else ord("1")
    (tmp_path / "credentials.sealed").write_bytes(bytes(raw))
    assert store.load() is None

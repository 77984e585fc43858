"""The device as a real process: power cuts (SIGKILL of its process group) and secret scans."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import httpx

from reference_device.credentials import CredentialStore
from reference_device.testing import DeviceProcess
from tests.reference_device.conftest import device_config, sha256, wait_until

MIB = 1024 * 1024
CUTS = int(os.environ.get("C2C_TEST_CUTS", "20"))  # issue 3: 20 or more cuts
PART = 5 * MIB


def _control(dev: DeviceProcess, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    url = (dev.state_dir / "status-url").read_text().strip()
    return httpx.post(f"{url}/api/{action}", json=body or {}, timeout=10).json()


def _make_media(media: Path, rng: random.Random) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for i in range(3):
        p = media / f"clip{i}.bin"
        p.write_bytes(rng.randbytes(2 * PART + 300_000 + i))
        files[p.name] = p
    for i in range(6):
        p = media / f"still{i}.jpg"
        p.write_bytes(b"\xff\xd8" + rng.randbytes(20_000 + i) + b"\xff\xd9")
        files[p.name] = p
    return files


def _done(status: dict[str, Any] | None) -> int:
    return (status or {}).get("queue", {}).get("completed", 0)


def _progress(status: dict[str, Any] | None) -> int:
    return sum(f["bytes_done"] for f in (status or {}).get("files", []))


def _paired(dev: DeviceProcess, control: Any, project_id: str) -> None:
    st = dev.wait_for(lambda s: s["pairing"]["state"] in ("showing_code", "paired", "repair_needed"),
                      30, "pairing state")
    if st["pairing"]["state"] == "repair_needed":
        wait_until(lambda: (dev.state_dir / "status-url").exists(), 10, "status url")
        _control(dev, "pairing/start")
        st = dev.wait_for(lambda s: s["pairing"]["state"] == "showing_code", 30, "new code")
    if st["pairing"]["state"] == "showing_code":
        control.approve(st["pairing"]["user_code"], project_id)
        dev.wait_for(lambda s: s["pairing"]["state"] == "paired", 30, "paired")


def test_power_cuts_deliver_every_file_exactly_once(cloud: Any, control: Any, tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("C2C_TEST_SEED", "1234")))
    control.update_settings(access_token_lifetime=6)  # refreshes happen during the cuts
    # a metered link (8 MB/s) so the cuts land while the queue runs
    values = device_config(cloud, tmp_path, parallel_files=2, parallelism=3, part_size=PART,
                           quiet_period=0.3, max_upload_rate=8_000_000)
    files = _make_media(tmp_path / "media", rng)
    project = control.create_project("Cuts")
    dev = DeviceProcess(values, client_secret=control.client_secret())
    repairs = mid_queue = 0
    try:
        dev.start()
        _paired(dev, control, project["id"])
        total = sum(p.stat().st_size for p in files.values())
        # cuts spread over all but the last two parts' worth of bytes, so the status the bench
        # acts on still shows a running queue even when it answers late on a loaded machine
        span = total - 2 * PART
        for k in range(1, CUTS + 1):
            # cut at a random point of the running queue (mid-part, mid-refresh, mid-commit)
            target = span * k / (CUTS + 1) * rng.uniform(0.85, 1.0)
            st = dev.wait_for(lambda s, t=target: _progress(s) >= t, 60, f"progress before cut {k}")
            mid_queue += st["queue"]["remaining_count"] > 0
            dev.kill()
            dev.start()
            st = dev.wait_for(lambda s: s["pairing"]["state"] in ("paired", "repair_needed"), 30, "restart")
            if st["pairing"]["state"] == "repair_needed":
                repairs += 1
                _paired(dev, control, project["id"])
        dev.wait_for(lambda s: _done(s) == len(files), 120, "every file delivered")
        ledger = control.ledger()
        for name, path in files.items():
            rows = [r for r in ledger if r["name"] == name and r["state"] == "complete"]
            assert len(rows) == 1, f"{name} delivered {len(rows)} times"
            assert rows[0]["sha256"] == sha256(path), name
        duplicate = sum(r["bytes_duplicate"] for r in ledger)
        in_flight = values["parallel_files"]
        cuts = dev.starts - 1  # one start per cut; a re-pair after a cut mid-refresh starts nothing
        assert cuts == CUTS and mid_queue == CUTS, f"cuts={cuts} mid_queue={mid_queue} repairs={repairs}"
        # resumed, never restarted: no asset re-created with bytes on it (a cut between the
        # create answer and its commit may leave one empty asset behind, as on Frame.io)
        assert all(r["bytes_received"] == 0 for r in ledger if r["state"] != "complete"), ledger
        # re-sent = every byte that reached the cloud beyond the files themselves: duplicate
        # parts plus parts cut mid-body. At most one part per in-flight file per cut on
        # average; never a restart from zero.
        received = sum(r["bytes_received"] for r in ledger)
        resent = received - total
        assert duplicate <= resent, (duplicate, resent)
        assert resent <= cuts * in_flight * PART, (resent, cuts)
        print(f"cuts={cuts} repairs={repairs} duplicate={duplicate} extra={received - total}"
              f" assets={len(ledger)}")
        assert repairs <= 1
    finally:
        dev.kill()


def test_no_cleartext_secret_in_state_logs_or_argv(cloud: Any, control: Any, tmp_path: Path) -> None:
    values = device_config(cloud, tmp_path)
    (tmp_path / "media" / "a.jpg").write_bytes(b"\xff\xd8" + os.urandom(500) + b"\xff\xd9")
    secret = control.client_secret()
    project = control.create_project("Secrets")
    dev = DeviceProcess(values, client_secret=secret)
    try:
        dev.start()
        _paired(dev, control, project["id"])
        dev.wait_for(lambda s: _done(s) == 1, 30, "upload")
        cmdline = Path(f"/proc/{dev.proc.pid}/cmdline").read_bytes()  # type: ignore[union-attr]
        assert secret.encode() not in cmdline
        status = dev.status()
    finally:
        dev.stop()
    store = CredentialStore(dev.state_dir / "credentials.enc", dev.state_dir / "key")
    creds = store.load()
    needles = [secret, creds["access_token"], creds["refresh_token"]]
    assert all(needles) and creds["client_secret"] == secret
    scanned = 0
    for path in [*dev.state_dir.rglob("*"), dev.config_path]:
        if path.is_file() and path.name != "key":
            data = path.read_bytes()
            scanned += 1
            for needle in needles:
                assert needle.encode() not in data, f"cleartext secret in {path.name}"
    assert scanned >= 4
    assert (dev.state_dir / "device.log").stat().st_size > 0
    text = json.dumps(status)
    assert not any(n in text for n in needles)

"""A finished run's scratch (kept beside its reports for the logs) holds none of the emulator's secrets."""

from __future__ import annotations

from pathlib import Path

from harness.bdd.session import start_cloud
from harness.cloud.runner import SECRET_FILES


def test_closing_the_bench_cloud_forgets_its_secrets_and_keeps_its_logs(tmp_path: Path) -> None:
    data = tmp_path / "cloud"
    cloud, close = start_cloud(data)
    secret = cloud.client_secret()
    present = [name for name in SECRET_FILES if (data / name).exists()]
    assert "bench-client.toml" in present and "bench-token" in present and "ca/ca-key.pem" in present
    close()
    assert not [name for name in SECRET_FILES if (data / name).exists()]
    assert (data / "emulator.log").exists() and (data / "ca" / "ca.pem").exists()
    leaked = [str(p.relative_to(data)) for p in data.rglob("*")
              if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaked, leaked

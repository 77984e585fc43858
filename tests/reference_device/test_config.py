from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from reference_device.config import load_config
from reference_device.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "device.toml"
    path.write_text(text)
    return path


def _base(tmp_path: Path) -> str:
    return f'state_dir = "{tmp_path / "state"}"\nmedia_dirs = ["{tmp_path / "media"}"]\n'


def test_defaults_and_persisted_client_id(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, _base(tmp_path)), env={})
    assert cfg.api_url == "https://api.frame.io"
    uuid.UUID(cfg.client_id)
    again = load_config(_write(tmp_path, _base(tmp_path)), env={})
    assert again.client_id == cfg.client_id
    assert (cfg.state_dir / "client_id").read_text().strip() == cfg.client_id


def test_http_api_url_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, _base(tmp_path) + 'api_url = "http://127.0.0.1:1"\n'), env={})
    assert err.value.field == "api_url"
    assert "http://" in str(err.value)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('firmware_version = "1.00"', "firmware_version"),
        ('mode = "sometimes"', "mode"),
        ("parallelism = 0", "parallelism"),
        ("part_size = 1024", "part_size"),
        ('parallelism = "many"', "parallelism"),
        ("bogus = 1", "bogus"),
        ('ca_bundle = "/nonexistent/ca.pem"', "ca_bundle"),
        ("realtime = 3", "realtime"),
    ],
)
def test_broken_field_named(tmp_path: Path, line: str, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, _base(tmp_path) + line + "\n"), env={})
    assert err.value.field == field


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(_write(tmp_path, "state_dir = \n"), env={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", env={})


def test_env_and_overrides(tmp_path: Path) -> None:
    env = {"C2C_DEVICE_PARALLELISM": "7", "C2C_DEVICE_REALTIME": "true",
           "C2C_CLIENT_SECRET": "s3cr3t-value", "C2C_DEVICE_FILETYPE_PRIORITIES": "mov=5,.jpg=1"}
    cfg = load_config(_write(tmp_path, _base(tmp_path) + "parallelism = 2\n"), env=env,
                      overrides={"mode": "manual", "parallelism": None})
    assert cfg.parallelism == 7
    assert cfg.realtime is True
    assert cfg.mode == "manual"
    assert cfg.client_secret == "s3cr3t-value"
    assert cfg.filetype_priorities == {".mov": 5, ".jpg": 1}
    assert "s3cr3t-value" not in repr(cfg)


def test_secret_file_toml(tmp_path: Path) -> None:
    secret_file = tmp_path / "bench-client.toml"
    secret_file.write_text('client_id_prefix = "x"\nclient_secret = "abc-secret"\n')
    cfg = load_config(_write(tmp_path, _base(tmp_path) + f'client_secret_file = "{secret_file}"\n'), env={})
    assert cfg.client_secret == "abc-secret"
    secret_file.write_text("nothing = 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, _base(tmp_path) + f'client_secret_file = "{secret_file}"\n'), env={})
    assert err.value.field == "client_secret_file"
    assert "abc-secret" not in str(err.value)


def test_state_dir_private(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, _base(tmp_path)), env={})
    assert os.stat(cfg.state_dir).st_mode & 0o077 == 0

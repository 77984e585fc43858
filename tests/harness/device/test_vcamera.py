"""{vcamera_dir}: the harness makes the tethered virtual camera's card (exactly one JPEG)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from harness.device.profile import load_profile, parse_profile
from harness.device.software import SoftwareDevice, make_vcamera_card
from harness.errors import ConfigError


def _device(data: dict, tmp_path: Path) -> SoftwareDevice:
    return SoftwareDevice(parse_profile(data), api_url="https://127.0.0.1:1", ca_bundle=tmp_path / "ca.pem",
                          client_secret=lambda: "secret", workdir=tmp_path / "dev", seed=3)


def _profile(env: dict[str, str]) -> dict:
    return {"name": "cam", "kind": "camera", "firmware": "1.0.0",
            "launch": {"command": ["{python}", "-c", "pass"], "env": env}}


def test_card_holds_exactly_one_real_jpeg_and_is_reused(tmp_path: Path) -> None:
    card = tmp_path / "card"
    jpg = make_vcamera_card(card, seed=1)
    assert [p.name for p in card.iterdir()] == [jpg.name] and jpg.suffix.lower() == ".jpg"
    with Image.open(jpg) as img:
        assert img.format == "JPEG"
    assert make_vcamera_card(card, seed=1) == jpg  # a device restart keeps the same card
    assert [p.name for p in card.iterdir()] == [jpg.name]


def test_a_card_with_other_files_is_refused_by_name(tmp_path: Path) -> None:
    card = tmp_path / "card"
    card.mkdir()
    (card / "a.jpg").write_bytes(b"x")
    (card / "b.JPG").write_bytes(b"y")
    with pytest.raises(ConfigError, match=r"exactly one JPEG.*a\.jpg.*b\.JPG"):
        make_vcamera_card(card, seed=1)


def test_placeholder_is_filled_only_for_profiles_that_use_it(tmp_path: Path) -> None:
    dev = _device(_profile({"VCAMERADIR": "{vcamera_dir}"}), tmp_path / "a")
    assert dev.values()["vcamera_dir"] == str(dev.vcamera_dir)
    assert len(list(dev.vcamera_dir.glob("*.JPG"))) == 1
    plain = _device(_profile({"X": "1"}), tmp_path / "b")
    assert not plain.vcamera_dir.exists()


def test_reference_profile_tethers_a_virtual_camera(tmp_path: Path) -> None:
    profile = load_profile("reference")
    assert "tether" in profile.capabilities
    assert profile.launch is not None and profile.launch.env["VCAMERADIR"] == "{vcamera_dir}"
    assert any("[sources.tether]" in body for body in profile.launch.files.values())

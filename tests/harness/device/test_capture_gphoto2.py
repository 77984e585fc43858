"""Gphoto2Capture against libgphoto2's virtual camera, and its error mapping through real
worker subprocesses (stand-in interpreters that hang, crash or answer with an error code)."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from harness.device.capture_gphoto2 import (
    CameraBusy,
    CameraNotFound,
    CameraTriggerError,
    Gphoto2Capture,
)
from harness.errors import ConfigError, FaultInjectionError
from harness.faults.media import MediaKit


@pytest.fixture
def vcam(tmp_path: Path) -> Path:
    vdir = tmp_path / "vcam"
    MediaKit(seed=4, stash_dir=tmp_path / "stash").generate(["jpg"], vdir)
    return vdir


def _fake_python(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_detects_the_virtual_camera(vcam: Path) -> None:
    assert Gphoto2Capture(vcamera_dir=vcam).detect() == [
        {"model": "Nikon DSC D750", "port": "usb:001,001"}
    ]


def test_captures_return_names_and_identical_bytes(vcam: Path, tmp_path: Path) -> None:
    src = next(vcam.glob("*.JPG"))
    frames = Gphoto2Capture(vcamera_dir=vcam).capture(3, download_dir=tmp_path / "dl")
    assert [f.name for f in frames] == ["GPH_0099.JPG", "GPH_0101.JPG", "GPH_0103.JPG"]
    assert all(f.camera_path.startswith("/store_00010001/DCIM/") for f in frames)
    want = hashlib.sha256(src.read_bytes()).hexdigest()
    assert all(f.local is not None and f.local.is_file() and f.sha256 == want for f in frames)


def test_more_than_26_captures_in_one_call(vcam: Path) -> None:
    frames = Gphoto2Capture(vcamera_dir=vcam).capture(28)
    assert len(frames) == 28


def test_camera_filter_that_matches_nothing(vcam: Path) -> None:
    with pytest.raises(CameraNotFound, match="camera='Other Body'"):
        Gphoto2Capture(vcamera_dir=vcam, camera="Other Body").capture(1)


def test_bad_virtual_camera_dirs_refused_before_libgphoto2_crashes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Gphoto2Capture(vcamera_dir=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no \.jpg"):
        Gphoto2Capture(vcamera_dir=tmp_path / "empty")


def test_hung_worker_is_killed_at_the_timeout(tmp_path: Path) -> None:
    cap = Gphoto2Capture(timeout=0.5, python=_fake_python(tmp_path, "exec sleep 30"))
    with pytest.raises(CameraTriggerError, match=r"did not answer within 0\.5 s"):
        cap.capture(1)


def test_crashed_worker_is_reported_with_its_signal(tmp_path: Path) -> None:
    cap = Gphoto2Capture(python=_fake_python(tmp_path, "kill -SEGV $$"))
    with pytest.raises(CameraTriggerError, match="SIGSEGV"):
        cap.capture(1)


@pytest.mark.parametrize(
    ("code", "error", "match"),
    [
        (-53, CameraBusy, "another program holds it"),
        (-110, CameraBusy, "stayed busy"),
        (-105, CameraNotFound, "no camera"),
        (-7, CameraTriggerError, "capture failed"),
    ],
)
def test_worker_error_codes_map_to_bench_errors(
    tmp_path: Path, code: int, error: type, match: str
) -> None:
    answer = json.dumps({"ok": False, "code": code, "error": f"[{code}] boom"})
    cap = Gphoto2Capture(python=_fake_python(tmp_path, f"cat >/dev/null; echo '{answer}'"))
    with pytest.raises(error, match=match) as info:
        cap.capture(1)
    assert isinstance(info.value, FaultInjectionError)
    assert info.value.code == code


def test_worker_without_an_answer(tmp_path: Path) -> None:
    cap = Gphoto2Capture(python=_fake_python(tmp_path, "echo oops >&2; exit 1"))
    with pytest.raises(CameraTriggerError, match=r"no answer.*oops"):
        cap.capture(1)

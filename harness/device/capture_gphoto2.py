"""`Gphoto2Capture`: fire the shutter of a camera on the bench through libgphoto2.

For devices whose capture must be physically triggered (a native C2C camera, or a
tethered rig), the harness presses the shutter over PTP/USB. Every gphoto2 call runs in
a short-lived worker subprocess because (1) `VCAMERADIR` (libgphoto2's virtual camera)
must be set before `gphoto2` is imported, (2) libgphoto2 holds the USB claim for the
life of a process, so a worker that exits always frees the camera for the device, and
(3) a wedged camera or a libgphoto2 segfault costs a killed worker, not the harness.

    cap = Gphoto2Capture(port="usb:001,004", timeout=30)
    frames = cap.capture(3)                      # -> [CapturedFrame(folder, name, ...)]
    [f.name for f in frames]                     # the captured file names on the card

The worker speaks JSON: a request on stdin, one answer on stdout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.children import spawn
from harness.errors import ConfigError, FaultInjectionError

REPO_ROOT = Path(__file__).resolve().parents[2]
BUSY, CLAIM, NOT_FOUND, USB_FIND = -110, -53, -105, -52


class CameraTriggerError(FaultInjectionError):
    """The bench could not make the camera capture; `code` is the libgphoto2 result if any."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class CameraNotFound(CameraTriggerError):
    """No camera (or not the configured one) is connected."""


class CameraBusy(CameraTriggerError):
    """The camera stayed busy (-110) or another program holds its USB interface (-53)."""


@dataclass(frozen=True)
class CapturedFrame:
    folder: str
    name: str
    size: int | None = None
    local: Path | None = None  # set when download_dir was given
    sha256: str | None = None

    @property
    def camera_path(self) -> str:
        return f"{self.folder.rstrip('/')}/{self.name}"


class Gphoto2Capture:
    """Triggers captures on one camera, real (USB/PTP-IP) or virtual (vcamera_dir)."""

    def __init__(
        self,
        *,
        camera: str | None = None,
        port: str | None = None,
        vcamera_dir: Path | None = None,
        timeout: float = 30.0,
        busy_retries: int = 20,
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        if timeout <= 0:
            raise ConfigError(f"gphoto2 capture timeout must be > 0, got {timeout}")
        if vcamera_dir is not None:
            vdir = Path(vcamera_dir)
            # A missing VCAMERADIR segfaults libgphoto2; an empty one fails every capture.
            if not vdir.is_dir():
                raise ConfigError(
                    f"vcamera_dir {str(vdir)!r} does not exist (libgphoto2 would crash)"
                )
            if not any(p.suffix.lower() == ".jpg" for p in vdir.iterdir()):
                raise ConfigError(
                    f"vcamera_dir {str(vdir)!r} holds no .jpg: the virtual camera cannot capture"
                )
        self.camera = camera
        self.port = port
        self.vcamera_dir = Path(vcamera_dir) if vcamera_dir is not None else None
        self.timeout = timeout
        self.busy_retries = busy_retries
        self.extra_env = dict(env or {})
        self.python = python

    def detect(self) -> list[dict[str, str]]:
        """Cameras libgphoto2 sees: [{"model", "port"}]."""
        cameras: list[dict[str, str]] = self._run({"action": "detect"})["cameras"]
        return cameras

    def capture(self, count: int = 1, *, download_dir: Path | None = None) -> list[CapturedFrame]:
        """Capture `count` frames; with download_dir, also fetch each frame (for hashing)."""
        if count < 1:
            raise ConfigError(f"capture count must be >= 1, got {count}")
        request: dict[str, Any] = {"action": "capture", "count": count}
        if download_dir is not None:
            Path(download_dir).mkdir(parents=True, exist_ok=True)
            request["download_dir"] = str(download_dir)
        answer = self._run(request, timeout=self.timeout * count)
        return [
            CapturedFrame(
                f["folder"],
                f["name"],
                f.get("size"),
                Path(f["local"]) if f.get("local") else None,
                f.get("sha256"),
            )
            for f in answer["files"]
        ]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "VCAMERADIR"}
        env.update(self.extra_env)
        if self.vcamera_dir is not None:
            env["VCAMERADIR"] = str(self.vcamera_dir)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        return env

    def _run(self, request: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        request = {
            **request,
            "camera": self.camera,
            "port": self.port,
            "busy_retries": self.busy_retries,
        }
        limit = timeout or self.timeout
        try:
            proc = spawn(
                [self.python, "-m", "harness.device.capture_gphoto2", "--worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env(),
                cwd=str(REPO_ROOT),
                start_new_session=True,
                text=True,
            )
        except OSError as exc:
            raise CameraTriggerError(
                f"cannot start the gphoto2 worker ({self.python}): {exc}"
            ) from exc
        try:
            out, err = proc.communicate(json.dumps(request), timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise CameraTriggerError(
                f"camera did not answer within {limit:g} s (gphoto2 worker killed); is it asleep or wedged?"
            ) from None
        if proc.returncode < 0:
            raise CameraTriggerError(
                f"gphoto2 worker crashed with signal {-proc.returncode} ({signal.Signals(-proc.returncode).name}); "
                f"stderr: {err.strip()[-300:]}"
            )
        try:
            answer = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise CameraTriggerError(
                f"gphoto2 worker gave no answer (rc {proc.returncode}); stderr: {err.strip()[-300:]}"
            ) from None
        if not isinstance(answer, dict):
            raise CameraTriggerError(f"gphoto2 worker answered {type(answer).__name__}, not an object")
        if not answer.get("ok"):
            code = answer.get("code")
            message = answer.get("error", "unknown error")
            if code in (NOT_FOUND, USB_FIND):
                raise CameraNotFound(f"no camera: {message}", code=code)
            if code == CLAIM:
                raise CameraBusy(
                    f"could not claim the camera's USB interface: another program holds it "
                    f"(gvfs-gphoto2-volume-monitor? the device itself?): {message}",
                    code=code,
                )
            if code == BUSY:
                raise CameraBusy(
                    f"camera stayed busy after {self.busy_retries} retries: {message}", code=code
                )
            raise CameraTriggerError(f"capture failed: {message}", code=code)
        return answer


# --- worker (runs in the subprocess) -------------------------------------------------------
def _worker(request: dict[str, Any]) -> dict[str, Any]:
    import hashlib

    import gphoto2 as gp

    def call(fn: Any, *args: Any) -> Any:
        delay = 0.01
        for attempt in range(int(request.get("busy_retries", 20)) + 1):
            try:
                return fn(*args)
            except gp.GPhoto2Error as exc:
                if exc.code != BUSY or attempt == request.get("busy_retries", 20):
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")

    cameras = [{"model": m, "port": p} for m, p in call(gp.Camera.autodetect).items()]
    if request["action"] == "detect":
        return {"ok": True, "cameras": cameras}
    wanted = [
        c
        for c in cameras
        if (not request.get("camera") or c["model"] == request["camera"])
        and (not request.get("port") or c["port"] == request["port"])
    ]
    if not wanted:
        return {
            "ok": False,
            "code": NOT_FOUND,
            "error": f"none of {cameras} matches camera={request.get('camera')!r} "
            f"port={request.get('port')!r}",
        }

    def open_camera() -> Any:
        cam = gp.Camera()
        if request.get("camera") or request.get("port"):
            abilities, ports = gp.CameraAbilitiesList(), gp.PortInfoList()
            abilities.load()
            ports.load()
            cam.set_abilities(abilities[abilities.lookup_model(wanted[0]["model"])])
            cam.set_port_info(ports[ports.lookup_path(wanted[0]["port"])])
        call(cam.init)
        return cam

    cam = open_camera()
    files: list[dict[str, Any]] = []
    reinits = 0
    dl = Path(request["download_dir"]) if request.get("download_dir") else None
    while len(files) < int(request["count"]):
        wedged = False
        try:
            path = call(cam.capture, gp.GP_CAPTURE_IMAGE)
        except gp.GPhoto2Error as exc:
            # -1/-3: the session is wedged (the virtual camera after 26 captures): new session.
            if exc.code not in (-1, -3) or reinits >= 3:
                raise
            wedged = True
        if wedged:  # outside `except`, so no traceback keeps the old Camera alive
            reinits += 1
            cam.exit()
            del cam  # the old Camera must be freed before the next init()
            cam = open_camera()
            continue
        entry: dict[str, Any] = {"folder": path.folder, "name": path.name}
        if dl is not None:
            camera_file = call(cam.file_get, path.folder, path.name, gp.GP_FILE_TYPE_NORMAL)
            data = bytes(
                memoryview(camera_file.get_data_and_size())
            )  # camera_file stays referenced
            del camera_file
            local = dl / f"{len(files):04d}_{path.name}"
            local.write_bytes(data)
            entry.update(local=str(local), size=len(data), sha256=hashlib.sha256(data).hexdigest())
        files.append(entry)
    cam.exit()
    return {"ok": True, "files": files, "reinits": reinits}


def _worker_main() -> int:
    try:
        request = json.loads(sys.stdin.read())
    except ValueError as exc:
        print(json.dumps({"ok": False, "error": f"bad request: {exc}"}))
        return 2
    try:
        answer = _worker(request)
    except Exception as exc:
        code = getattr(exc, "code", None)
        text = getattr(exc, "string", None) or str(exc)
        answer = {
            "ok": False,
            "code": code,
            "error": f"[{code}] {text}" if code is not None else text,
        }
    print(json.dumps(answer), flush=True)
    return 0 if answer.get("ok") else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        raise SystemExit(_worker_main())
    print(
        "usage: python -m harness.device.capture_gphoto2 --worker  (JSON request on stdin)",
        file=sys.stderr,
    )
    raise SystemExit(2)

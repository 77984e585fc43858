"""The camera adapter: every libgphoto2 call the tether source makes, behind one small class.

Why an adapter: libgphoto2's virtual camera can show the happy path and "busy" (-110),
but not "could not claim the USB device" (-53) or an unplugged cable. Tests drive those
through a fake that implements `CameraAdapter`; the real `Gphoto2Camera` is used on the
virtual camera and on benches.

`gphoto2` is imported lazily, inside `Gphoto2Camera.open()`: the wheel picks its port
drivers at import time from `VCAMERADIR`, so a process that wants the virtual camera
must have that variable in its environment before the first import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

# libgphoto2 result codes we act on (gphoto2/gphoto2-result.h, gphoto2-port-result.h).
GP_ERROR = -1
GP_ERROR_NO_MEMORY = -3
GP_ERROR_NOT_SUPPORTED = -6
GP_ERROR_IO = -7
GP_ERROR_TIMEOUT = -10
GP_ERROR_IO_READ = -34
GP_ERROR_IO_WRITE = -35
GP_ERROR_IO_USB_FIND = -52
GP_ERROR_IO_USB_CLAIM = -53
GP_ERROR_MODEL_NOT_FOUND = -105
GP_ERROR_FILE_NOT_FOUND = -108
GP_ERROR_CAMERA_BUSY = -110

DISCONNECT_CODES = frozenset(
    {
        GP_ERROR_IO,
        GP_ERROR_IO_READ,
        GP_ERROR_IO_WRITE,
        GP_ERROR_IO_USB_FIND,
        GP_ERROR_MODEL_NOT_FOUND,
        GP_ERROR_TIMEOUT,
    }
)


class CameraError(Exception):
    """A libgphoto2 failure with its result code; `kind` says what the source should do."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message

    @property
    def kind(self) -> str:
        """busy | claim | disconnected | session | error."""
        if self.code == GP_ERROR_CAMERA_BUSY:
            return "busy"
        if self.code == GP_ERROR_IO_USB_CLAIM:
            return "claim"
        if self.code in DISCONNECT_CODES:
            return "disconnected"
        if self.code in (GP_ERROR, GP_ERROR_NO_MEMORY):
            return "session"  # the session is wedged (e.g. virtual camera store full): re-init
        return "error"


@dataclass(frozen=True)
class CameraPath:
    folder: str
    name: str

    @property
    def full(self) -> str:
        return f"{self.folder.rstrip('/')}/{self.name}"


@dataclass(frozen=True)
class CameraEvent:
    kind: str  # file_added | timeout | capture_complete | other
    path: CameraPath | None = None


@dataclass(frozen=True)
class CameraFileInfo:
    size: int
    mtime: int


class CameraAdapter(Protocol):
    """What the tether source needs from a camera. Every method raises `CameraError`."""

    def open(self) -> dict[str, Any]:
        """Detect and initialise; returns {"model", "port"}."""
        ...

    def close(self) -> None: ...
    def wait_event(self, timeout_ms: int) -> CameraEvent: ...
    def list_files(self) -> list[CameraPath]: ...
    def file_info(self, path: CameraPath) -> CameraFileInfo: ...
    def download(self, path: CameraPath) -> bytes: ...
    def delete(self, path: CameraPath) -> None: ...
    def trigger(self) -> None: ...


class Gphoto2Camera:
    """`CameraAdapter` on python-gphoto2. Not thread-safe: the caller serialises calls."""

    def __init__(self, model: str | None = None, port: str | None = None) -> None:
        self.model = model
        self.port = port
        self._gp: Any = None
        self._cam: Any = None

    def _call(self, fn: Any, *args: Any) -> Any:
        # Raise outside the `except` so no traceback keeps the gphoto2 Camera alive: the
        # virtual camera only resets when the old Camera is freed before the next init().
        try:
            return fn(*args)
        except self._gp.GPhoto2Error as exc:
            code, text = exc.code, exc.string
        del fn
        raise CameraError(code, text)

    def open(self) -> dict[str, Any]:
        if self._gp is None:
            vdir = os.environ.get("VCAMERADIR")
            if vdir is not None and not os.path.isdir(vdir):
                # libgphoto2's virtual camera segfaults on a missing directory.
                raise CameraError(GP_ERROR_MODEL_NOT_FOUND, f"VCAMERADIR {vdir!r} is not a directory")
            try:
                import gphoto2
            except ImportError as exc:
                raise CameraError(
                    GP_ERROR_NOT_SUPPORTED,
                    f"python-gphoto2 is not installed ({exc}); pip install gphoto2",
                ) from None

            self._gp = gphoto2
        gp = self._gp
        found = self._call(gp.Camera.autodetect)
        cameras = [(name, addr) for name, addr in found.items()]
        if self.model or self.port:
            cameras = [
                c
                for c in cameras
                if (not self.model or c[0] == self.model) and (not self.port or c[1] == self.port)
            ]
        if not cameras:
            raise CameraError(GP_ERROR_MODEL_NOT_FOUND, "no camera detected")
        model, port = cameras[0]
        cam = gp.Camera()
        if self.model or self.port:
            abilities = gp.CameraAbilitiesList()
            abilities.load()
            ports = gp.PortInfoList()
            ports.load()
            cam.set_abilities(abilities[abilities.lookup_model(model)])
            cam.set_port_info(ports[ports.lookup_path(port)])
        self._call(cam.init)
        self._cam = cam
        return {"model": model, "port": port}

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.exit()
            except Exception:
                pass  # an unplugged camera cannot be exited cleanly; dropping it is enough
            del cam  # free it now: libgphoto2 releases the port (and vusb state) on unref

    def _camera(self) -> Any:
        if self._cam is None:
            raise CameraError(GP_ERROR_IO, "camera not open")
        return self._cam

    def wait_event(self, timeout_ms: int) -> CameraEvent:
        gp = self._gp
        etype, edata = self._call(self._camera().wait_for_event, timeout_ms)
        if etype == gp.GP_EVENT_FILE_ADDED:
            return CameraEvent("file_added", CameraPath(edata.folder, edata.name))
        if etype == gp.GP_EVENT_TIMEOUT:
            return CameraEvent("timeout")
        if etype == gp.GP_EVENT_CAPTURE_COMPLETE:
            return CameraEvent("capture_complete")
        return CameraEvent("other")

    def list_files(self) -> list[CameraPath]:
        cam = self._camera()
        out: list[CameraPath] = []
        stack = ["/"]
        while stack:
            folder = stack.pop()
            for name, _ in self._call(cam.folder_list_files, folder).items():
                out.append(CameraPath(folder, name))
            for name, _ in self._call(cam.folder_list_folders, folder).items():
                stack.append(f"{folder.rstrip('/')}/{name}")
        return sorted(out, key=lambda p: p.full)

    def file_info(self, path: CameraPath) -> CameraFileInfo:
        info = self._call(self._camera().file_get_info, path.folder, path.name)
        return CameraFileInfo(size=int(info.file.size), mtime=int(info.file.mtime))

    def download(self, path: CameraPath) -> bytes:
        gp = self._gp
        camera_file = self._call(
            self._camera().file_get, path.folder, path.name, gp.GP_FILE_TYPE_NORMAL
        )
        # Keep `camera_file` referenced until the copy is done: a temporary CameraFile can be
        # freed before memoryview() copies it, giving wrong bytes (dependency-probes §1.5).
        data = bytes(memoryview(self._call(camera_file.get_data_and_size)))
        del camera_file
        return data

    def delete(self, path: CameraPath) -> None:
        self._call(self._camera().file_delete, path.folder, path.name)

    def trigger(self) -> None:
        self._call(self._camera().trigger_capture)

    # For tests and bench tools: the raw python-gphoto2 Camera (no locking, no mapping).
    @property
    def raw(self) -> Any:
        return self._cam

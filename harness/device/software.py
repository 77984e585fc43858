"""SoftwareDevice: any device a vendor can run on Linux, driven from its profile alone.

    device = SoftwareDevice(profile, api_url=network.device_api_url, ca_bundle=cloud.ca_bundle,
                            client_secret=cloud.client_secret, workdir=tmp)
    device.start()                     # launch (power on) and wait for it to be up
    device.capture([Path("A001.mov")]) # atomic copy into the watch folder
    device.power().cycle()             # SIGKILL the process group, boot again

The client secret reaches the device only through its environment or a 0600 file;
it is never in argv, logs or exceptions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from harness.device.operator import OperatorPrompt
from harness.device.ports import PortReservation
from harness.device.profile import DeviceProfile, default_values, placeholders_in, render_template
from harness.errors import (
    ConfigError,
    DeviceFailure,
    DeviceTimeout,
    MediaError,
    OperatorUnavailable,
)
from harness.faults.power import (
    HeldPower,
    LabgridSuppliedProcess,
    ManualPower,
    ProcessGroupPower,
    relay_power,
)
from harness.protocols import DeviceNamespace, Power
from harness.timeline import Timeline
from harness.tls import default_context

# Device.control() action names -> local API paths (CONTRACTS §4)
CONTROL_PATHS = {"cancel_pairing": "pairing/cancel", "start_pairing": "pairing/start"}
SAFE_NAME = re.compile(r"^[^/\\\x00]+$")
STACK_DUMP_TIMEOUT = 10.0
# How long a console-only device must stay up after its first output to count as booted.
BOOT_SETTLE_S = 0.5
# Python's faulthandler: a header per thread, then its frames (other threads may log between lines)
_STACK_HEADER = re.compile(r"^(?:Current thread|Thread) 0x[0-9a-fA-F]+\b.*\(most recent call first\):$")
_STACK_FRAME = re.compile(r'^  (?:File ".*", line \d+ in .*|<no Python frame>|\.\.\.|Garbage-collecting)$')


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll until `predicate()` is truthy; DeviceTimeout naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise DeviceTimeout(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def stack_dump_lines(text: str) -> str:
    """The faulthandler dump out of console text: thread headers and frames, nothing else."""
    kept: list[str] = []
    for line in text.splitlines():
        if _STACK_HEADER.match(line):
            if kept:
                kept.append("")
            kept.append(line)
        elif _STACK_FRAME.match(line) and kept:
            kept.append(line)
    return "\n".join(kept) + ("\n" if kept else "")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def profile_placeholders(profile: DeviceProfile) -> set[str]:
    """Every placeholder the profile's launch command, env and files use."""
    if profile.launch is None:
        return set()
    launch = profile.launch
    templates = [*launch.command, *launch.env.values(), *launch.files, *launch.files.values(), launch.cwd or ""]
    return set().union(*(placeholders_in(t) for t in templates))


def make_vcamera_card(directory: Path, seed: int) -> Path:
    """The virtual camera's card for {vcamera_dir}: exactly one generated JPEG.

    libgphoto2's virtual camera serves the JPEG(s) in $VCAMERADIR as every frame it shoots;
    it needs exactly one, so anything else already there is refused rather than guessed at.
    """
    from harness.faults.media.manifest import MediaKit

    directory.mkdir(parents=True, exist_ok=True)
    existing = [p for p in directory.iterdir() if not p.name.startswith(".")]
    if existing:
        jpgs = [p for p in existing if p.suffix.lower() in {".jpg", ".jpeg"}]
        if len(jpgs) == 1 and len(existing) == 1:
            return jpgs[0]
        raise ConfigError(f"{{vcamera_dir}} {directory} must hold exactly one JPEG, found {sorted(p.name for p in existing)}")
    with MediaKit(seed=seed, stash_dir=directory.parent / ".vcamera-stash") as kit:
        entry = kit.generate(["jpg"], directory)[0]
    return Path(entry["path"])


class SoftwareDevice:
    """Implements harness.protocols.Device for a profile with a [launch] command."""

    def __init__(
        self,
        profile: DeviceProfile,
        *,
        api_url: str,
        ca_bundle: Path,
        client_secret: Callable[[], str],
        workdir: Path,
        client_id: str | None = None,
        timeline: Timeline | None = None,
        prompt: OperatorPrompt | None = None,
        plain_http_url: str = "",
        seed: int = 1,
        on_power_loss: Callable[[], None] | None = None,
        namespace: DeviceNamespace | None = None,
    ) -> None:
        if profile.launch is None:
            raise ConfigError(f"profile {profile.name}: SoftwareDevice needs a [launch] command")
        self.profile = profile
        self.name = profile.name
        self.kind = profile.kind
        self.firmware = profile.firmware
        self.timeline = timeline or Timeline()
        self.prompt = prompt or OperatorPrompt(interactive=False)
        self.workdir = workdir
        self.state_dir = workdir / "state"
        self.media_dir = workdir / "media"
        self.incoming_dir = workdir / "incoming"  # same filesystem as media_dir: rename is atomic
        self.console_log = workdir / "console.log"
        self._launch_mark = 0  # console bytes written before the latest launch
        for d in (self.state_dir, self.media_dir, self.incoming_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.client_id = client_id or f"c2c-bench-{profile.name}-{uuid.uuid4().hex[:8]}"
        self._secret = client_secret
        self._status_port = PortReservation()  # kept across power cuts: see harness/device/ports.py
        self.status_port = self._status_port.port
        self.namespace = namespace  # a packet-level link's namespace the device runs in, if any
        if namespace is not None:
            namespace.bridge_local_port(self.status_port)
            if plain_http_url:
                namespace.bridge_host_url(plain_http_url)
        self.api_url = api_url
        self.ca_bundle = ca_bundle
        self.plain_http_url = plain_http_url
        self.on_power_loss = on_power_loss
        self.vcamera_dir = workdir / "vcamera"
        if "vcamera_dir" in profile_placeholders(profile):
            make_vcamera_card(self.vcamera_dir, seed)
        self._power = self._make_power()
        self._http = httpx.Client(timeout=5.0, verify=default_context())

    # --- placeholders and launch -------------------------------------------------------------
    def values(self, *, with_secret: bool = False) -> dict[str, str | int]:
        """Placeholder values; the secret only when rendering env and files."""
        values = default_values(
            api_url=self.api_url, ca_bundle=str(self.ca_bundle), media_dir=str(self.media_dir),
            state_dir=str(self.state_dir), client_id=self.client_id, status_port=self.status_port,
            plain_http_url=self.plain_http_url, vcamera_dir=str(self.vcamera_dir),
        )
        if with_secret:
            values["client_secret"] = self._secret()
        return values

    def argv(self) -> list[str]:
        assert self.profile.launch is not None
        return [render_template(a, self.values(), where=f"profile {self.name} command") for a in self.profile.launch.command]

    def _write_files(self) -> None:
        """Write [launch.files] (mode 0600: they may hold the client secret)."""
        assert self.profile.launch is not None
        secret_values = self.values(with_secret=True)
        for path_t, content_t in self.profile.launch.files.items():
            path = Path(render_template(path_t, self.values(), where=f"profile {self.name} files"))
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(render_template(content_t, secret_values, where=f"profile {self.name} files"))

    def _before_on(self) -> None:
        """Mark where this launch's console output starts, then write the device's files."""
        try:
            self._launch_mark = self.console_log.stat().st_size
        except FileNotFoundError:
            self._launch_mark = 0
        self._write_files()

    def console_since_launch(self) -> str:
        """What the device printed since its latest launch (a code printed before a power cut is stale)."""
        try:
            with self.console_log.open("rb") as fh:
                fh.seek(self._launch_mark)
                return fh.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _make_power(self) -> Power:
        spec = self.profile.power
        if spec.driver in ("process", "labgrid"):
            assert self.profile.launch is not None
            secret_values = self.values(with_secret=True)
            env = {k: render_template(v, secret_values, where=f"profile {self.name} env.{k}")
                   for k, v in self.profile.launch.env.items()}
            cwd_t = self.profile.launch.cwd
            cwd = Path(render_template(cwd_t, self.values())) if cwd_t else self.workdir
            prefix = self.namespace.exec_prefix() if self.namespace is not None else []
            if spec.driver == "labgrid":  # labgrid switches the supply, the bench boots the group
                assert spec.env is not None
                return LabgridSuppliedProcess(
                    [*prefix, *self.argv()], env_file=Path(spec.env), group_file=self.workdir / "labgrid-device.group",
                    target=spec.target, driver=spec.name, off_time=spec.off_time, env=env, cwd=cwd,
                    console=self.console_log, timeline=self.timeline, before_on=self._before_on,
                    after_off=self.on_power_loss)
            return ProcessGroupPower([*prefix, *self.argv()], env=env, cwd=cwd, console=self.console_log,
                                     timeline=self.timeline, off_time=spec.off_time, before_on=self._before_on,
                                     after_off=self.on_power_loss)
        if spec.driver == "relay":
            assert spec.port is not None and spec.channel is not None
            return relay_power(spec.port, spec.channel, spec.board, self.timeline, spec.off_time)
        return ManualPower(self.prompt.confirm if self.prompt.interactive else None)

    # --- Device protocol ---------------------------------------------------------------------
    def start(self) -> None:
        self._power.on()
        assert self.profile.launch is not None
        self.wait_ready(self.profile.launch.ready_timeout)

    def wait_ready(self, timeout: float) -> None:
        """Up = the status page answers, or (no status) the console has spoken and the process
        is still alive BOOT_SETTLE_S later: a device that prints an error and exits must not
        count as booted because its last words reached the console first."""
        spoke_at: list[float] = []

        def ready() -> bool:
            if isinstance(self._power, ProcessGroupPower) and not self._power.is_on():
                raise DeviceFailure(f"{self.name} exited during boot (code {self._power.exit_code()}): {self.console_tail()}")
            if self.profile.status.driver == "http-json":
                return self.status() is not None
            if not spoke_at and self.console_log.exists() and self.console_log.stat().st_size > 0:
                spoke_at.append(time.monotonic())
            return bool(spoke_at) and time.monotonic() - spoke_at[0] >= BOOT_SETTLE_S
        wait_for(ready, timeout, f"{self.name} to boot")

    def stop(self) -> None:
        self._power.off()

    def power(self) -> Power:
        return self._power

    def status_url(self) -> str | None:
        if self.profile.status.driver != "http-json" or not self.profile.status.url:
            return None
        return render_template(self.profile.status.url, self.values())

    def status(self) -> dict[str, Any] | None:
        url = self.status_url()
        if url is None:
            return None
        try:
            r = self._http.get(url)
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        try:
            data = r.json()
        except json.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None

    @property
    def has_status(self) -> bool:
        return self.profile.status.driver != "none"

    def console_text(self) -> str:
        try:
            return self.console_log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def console_tail(self, lines: int = 20) -> str:
        return "\n".join(self.console_text().splitlines()[-lines:])

    def pairing_code(self, timeout: float) -> str:
        source = self.profile.pairing.source
        if source == "status":
            def code() -> str | None:
                st = self.status() or {}
                pairing = st.get("pairing") or {}
                if pairing.get("state") == "showing_code" and pairing.get("user_code"):
                    return str(pairing["user_code"])
                return None
            return str(wait_for(code, timeout, f"{self.name} to show a pairing code"))
        if source == "console":
            rx = re.compile(self.profile.pairing.regex or "")
            def from_console() -> str | None:
                matches = rx.findall(self.console_since_launch())
                return str(matches[-1]) if matches else None
            return str(wait_for(from_console, timeout, f"{self.name} to print a pairing code"))
        return self.prompt.ask(f"Type the pairing code {self.name} shows")

    def capture(self, files: Sequence[Path]) -> list[Path]:
        driver = self.profile.capture.driver
        if driver == "watch-folder":
            return [self._drop(Path(f)) for f in files]
        if driver == "command":
            out = []
            for f in files:
                argv = [render_template(a, {**self.values(), "file": str(f)}) for a in self.profile.capture.command]
                done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
                if done.returncode != 0:
                    raise DeviceFailure(f"capture command for {f.name} failed ({done.returncode}): {done.stderr[-400:]}")
                out.append(f)
            return out
        if driver == "operator":
            if not self.prompt.confirm(f"Record {', '.join(p.name for p in files)} on {self.name}. Done?"):
                raise OperatorUnavailable("capture not performed by the operator")
            return list(files)
        raise OperatorUnavailable(f"capture driver {driver!r} is driven by its own module (tethered camera)")

    def watch_folder(self) -> Path:
        return Path(render_template(self.profile.capture.folder, self.values()))

    def _drop(self, src: Path) -> Path:
        """Write to a temporary name outside the watch folder, then rename in (atomic)."""
        if not SAFE_NAME.match(src.name):
            raise MediaError(f"capture: file name {src.name!r} cannot be placed in a folder")
        folder = self.watch_folder()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = self.incoming_dir / f".{uuid.uuid4().hex}.part"
        try:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        except FileNotFoundError as exc:
            raise MediaError(f"capture: source file {src} does not exist") from exc
        dest = folder / src.name
        os.replace(tmp, dest)
        self.timeline.record("device", "capture", "mark", file=src.name)
        return dest

    def control(self, action: str, **args: Any) -> bool:
        if self.profile.control.driver != "local-api" or not self.profile.control.url:
            return False
        base = render_template(self.profile.control.url, self.values())
        path = CONTROL_PATHS.get(action, action)
        try:
            r = self._http.post(base.rstrip("/") + "/" + path, json=args)
        except httpx.HTTPError:
            return False
        if r.status_code == 404:
            return False
        if r.status_code >= 400:
            raise DeviceFailure(f"{self.name} refused control action {action!r}: HTTP {r.status_code} {r.text[:200]}")
        return True

    def inspect_paths(self) -> list[Path]:
        paths = [Path(render_template(t, self.values())) for t in self.profile.inspect]
        return [*paths, self.console_log]

    # --- StackDumps protocol -----------------------------------------------------------------
    def stack_dump_path(self) -> Path:
        """Where the device writes its dump: the profile's stack_dump_file, else its console."""
        launch = self.profile.launch
        if launch is not None and launch.stack_dump_file:
            return Path(render_template(launch.stack_dump_file, self.values(), where=f"profile {self.name} stack_dump_file"))
        return self.console_log

    def dump_stacks(self, timeout: float = STACK_DUMP_TIMEOUT) -> str:
        """Signal the device to dump every thread's stack; the dump, secrets redacted.

        '' when the profile names no stack_dump_signal (or the device is not a process the
        bench started). DeviceFailure when the process is not running; DeviceTimeout when no
        complete dump appeared within `timeout`.
        """
        launch = self.profile.launch
        power = self._power
        if launch is None or launch.stack_dump_signal is None or not isinstance(power, ProcessGroupPower):
            return ""
        pid = power.pid
        if pid is None or not power.is_on():
            raise DeviceFailure(f"{self.name} is not running (exit code {power.exit_code()}): no stacks to dump")
        path = self.stack_dump_path()
        offset = _size(path)
        try:
            os.kill(pid, getattr(signal, launch.stack_dump_signal))
        except ProcessLookupError:
            raise DeviceFailure(f"{self.name} exited before its stacks could be dumped") from None
        self.timeline.record("device", "stack dump", "mark", signal=launch.stack_dump_signal)
        seen = {"size": -1}

        def complete() -> str | None:
            # faulthandler writes the whole dump at once: a header, then no growth for one poll
            size = _size(path)
            settled, seen["size"] = size == seen["size"], size
            text = _read_from(path, offset)
            return text if settled and any(_STACK_HEADER.match(line) for line in text.splitlines()) else None

        text = wait_for(complete, timeout, f"{self.name} to dump its thread stacks ({launch.stack_dump_signal})")
        return self._redact(stack_dump_lines(text))

    def _redact(self, text: str) -> str:
        from harness.redaction import redact  # the report's one definition of a token's shape

        try:
            secrets = [self._secret()]
        except Exception:  # the cloud is gone: token shapes are still redacted
            secrets = []
        return redact(text, secrets)

    def close(self) -> None:
        """Power off, then let go of what the supply holds (labgrid's drivers, a relay's port lock)."""
        try:
            self.stop()
        finally:
            if isinstance(self._power, HeldPower):
                self._power.close()
            self._http.close()
            self._status_port.release()

"""Run the reference device as a real process in its own process group.

Used by tests, harness code and benchmarks: `DeviceProcess(config).start()`, then
`status()` / `wait_for(...)`, `kill()` (a power cut: SIGKILL of the whole group) and
`stop()` (SIGTERM). The client secret goes through the environment, never argv.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

StatusPredicate = Callable[[dict[str, Any]], bool]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def write_config(path: Path, values: Mapping[str, Any]) -> Path:
    """Write a flat device config TOML (secrets are refused: pass them via env)."""
    if "client_secret" in values:
        raise ValueError("client_secret must not be written to a config file by the harness")
    lines = [f"{key} = {_toml_value(v)}" for key, v in values.items() if v is not None]
    path.write_text("\n".join(lines) + "\n")
    return path


class DeviceProcess:
    """The reference device as a subprocess; `config` is a TOML path or a dict of fields."""

    def __init__(
        self,
        config: Path | Mapping[str, Any],
        *,
        client_secret: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(config, Mapping):
            state_dir = Path(config["state_dir"])
            state_dir.mkdir(parents=True, exist_ok=True)
            values = dict(config)
            values.setdefault("status_file", str(state_dir / "status.json"))
            self.status_file: Path | None = Path(values["status_file"])
            self.config_path = write_config(state_dir.parent / f"{state_dir.name}.toml", values)
            self.state_dir = state_dir
        else:
            import tomllib

            self.config_path = Path(config)
            data = tomllib.loads(self.config_path.read_text())
            self.state_dir = Path(data["state_dir"])
            sf = data.get("status_file")
            self.status_file = Path(sf) if sf else None
        self.client_secret = client_secret
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def output_path(self) -> Path:
        return self.state_dir / "process.out"

    def start(self) -> None:
        if self.is_running():
            return
        env = dict(os.environ)
        env.update(self.extra_env)
        if self.client_secret:
            env["C2C_CLIENT_SECRET"] = self.client_secret
        # what a killed run left behind describes a dead process: a wait on the new one must
        # not be answered by the old status snapshot or reach for the old status port
        for stale in (self.status_file, self.state_dir / "status-url"):
            if stale is not None:
                stale.unlink(missing_ok=True)
        out = open(self.output_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reference_device", "run", "--config", str(self.config_path)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, start_new_session=True,
            )
        finally:
            out.close()
        self.starts += 1

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Power cut: SIGKILL the whole process group, no chance to clean up."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """Graceful stop (SIGTERM), then SIGKILL after `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def status(self) -> dict[str, Any] | None:
        """The last c2c-status/1 snapshot the device wrote (None before the first)."""
        if self.status_file is None:
            return None
        try:
            data = json.loads(self.status_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def wait_for(self, predicate: StatusPredicate, timeout: float, what: str = "condition") -> dict[str, Any]:
        """Poll the status until `predicate` holds; raise TimeoutError naming `what`."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            status = self.status()
            if status is not None:
                last = status
                if predicate(status):
                    return status
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"device exited with {self.proc.returncode} while waiting for {what}:\n"
                                   + self.tail())
            time.sleep(0.1)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last status: "
                           f"{json.dumps({k: (last or {}).get(k) for k in ('pairing', 'queue', 'token')})}")

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.output_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    def __enter__(self) -> DeviceProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.is_running():
            self.kill()

"""`EmulatorProcess`: the emulator as a real subprocess in its own process group.

`kill()` is a power cut (SIGKILL to the group); `restart()` brings it back on the same
ports with the same data directory, so devices reconnect to the same URL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from harness.children import spawn
from harness.cloud.control import CloudControl
from harness.cloud.settings import CloudSettings, dump_toml
from harness.errors import CloudError, ConfigError
from harness.tls import ssl_context


class EmulatorProcess:
    def __init__(self, data_dir: Path, settings: dict[str, Any] | None = None, *,
                 host: str = "127.0.0.1", start_timeout: float = 30.0) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.settings = dict(settings or {})
        CloudSettings().updated(self.settings)  # refuse bad settings before starting anything
        self.host = host
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}
        self._ports: tuple[int, int] = (0, 0)
        self.control: CloudControl | None = None

    # --- facts ----------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return str(self.ready["api_url"])

    @property
    def plain_http_url(self) -> str:
        return str(self.ready["plain_http_url"])

    @property
    def ca_bundle(self) -> Path:
        return Path(self.ready["ca_bundle"])

    @property
    def client_secret_file(self) -> Path:
        return Path(self.ready["client_secret_file"])

    @property
    def token_file(self) -> Path:
        """The bench token of this run (0600): what the control API wants as its bearer."""
        return Path(self.ready["token_file"])

    @property
    def ready_file(self) -> Path:
        return self.data_dir / "ready.json"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "emulator.log"

    # --- life cycle -------------------------------------------------------------------------
    def start(self) -> EmulatorProcess:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "harness.cloud.cli", "serve", "--data-dir", str(self.data_dir),
               "--host", self.host, "--port", str(self._ports[0]),
               "--http-port", str(self._ports[1]), "--ready-file", str(self.ready_file)]
        if self.settings:
            settings_file = self.data_dir / "settings.toml"
            settings_file.write_text(dump_toml(self.settings), encoding="utf-8")
            cmd += ["--settings", str(settings_file)]
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = spawn(cmd, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, start_new_session=True,
                              cwd=str(Path(__file__).resolve().parents[2]))
        finally:
            log.close()
        try:
            self._wait_ready()
        except BaseException:  # a Ctrl-C during start-up too: the emulator is in its own session,
            self.kill()        # so nothing else would stop it
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CloudError(f"cloud emulator exited with {self.proc.returncode}; see "
                                 f"{self.log_file}: {self._log_tail()}")
            if self.ready_file.exists():
                try:
                    self.ready = json.loads(self.ready_file.read_text(encoding="utf-8"))
                except ValueError:
                    self.ready = {}
                if self.ready.get("pid") == self.proc.pid and self._healthy():
                    break
            time.sleep(0.05)
        else:
            self.kill()
            raise CloudError(f"cloud emulator not ready within {self.start_timeout}s; "
                             f"see {self.log_file}")
        self._ports = (int(self.api_url.rsplit(":", 1)[1]),
                       int(self.plain_http_url.rsplit(":", 1)[1]))
        if self.control is not None:
            self.control.close()
        self.control = CloudControl(self.api_url, self.ca_bundle,
                                    plain_http_url=self.plain_http_url,
                                    client_secret_file=self.client_secret_file,
                                    token_file=self.token_file)

    def _healthy(self) -> bool:
        try:
            response = httpx.get(f"{self.ready['api_url']}/health",
                                 verify=ssl_context(Path(self.ready["ca_bundle"])), timeout=2)
        except (httpx.HTTPError, OSError, KeyError):
            return False
        return response.status_code == 200

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """Power cut: SIGKILL the whole process group, no cleanup."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """Orderly stop (SIGTERM, then SIGKILL after `timeout`)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass

    def restart(self, *, hard: bool = True) -> None:
        self.kill() if hard else self.stop()
        self.start()

    def close(self) -> None:
        if self.control is not None:
            self.control.close()  # an idle keep-alive connection would slow the orderly stop
            self.control = None
        self.stop()

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# What in a data dir only the emulator may read: the client secret, the bench token, the CA's
# and server's private keys, the S3 signing key (relative to the data dir).
SECRET_FILES = ("bench-client.toml", "bench-token", "ca/ca-key.pem", "ca/server-key.pem", "s3-signing.key")


def forget_secrets(data_dir: Path) -> list[str]:
    """Delete the secrets of a data dir that will not be served again (a finished certification's
    scratch, kept for its logs and state): what was removed, relative to `data_dir`."""
    removed = []
    for name in SECRET_FILES:
        path = data_dir / name
        if path.exists():
            path.unlink()
            removed.append(name)
    return removed


__all__ = ["SECRET_FILES", "ConfigError", "EmulatorProcess", "forget_secrets"]

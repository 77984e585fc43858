"""The harness's own Toxiproxy API client, and a runner for a real `toxiproxy-server`.

toxiproxy-python 0.1.1 has no timeouts, a process-global endpoint and swallows 5xx; this
client has per-instance endpoints, timeouts, PATCH updates, and raises
`FaultInjectionError` with the server's message for every non-2xx. It speaks to our
`ToxiproxyServer` and to a real `toxiproxy-server` alike.

    with ToxiproxyClient(server.api_url) as api:
        proxy = api.create_proxy("cam", upstream="127.0.0.1:9000")
        api.add_toxic("cam", "latency", attributes={"latency": 50, "jitter": 10})
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from harness.children import spawn
from harness.errors import FaultInjectionError
from harness.faults.network.server import ToxiproxyServer
from harness.tls import default_context

DEFAULT_TIMEOUT = 10.0


class ToxiproxyClient:
    """A small typed client for one Toxiproxy API endpoint."""

    def __init__(self, api_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.api_url, timeout=timeout, headers={"User-Agent": "c2c-bench"},
            verify=default_context(),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ToxiproxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise FaultInjectionError(
                f"toxiproxy API {method} {path} at {self.api_url} failed: {type(exc).__name__}: {exc}"
            ) from None
        if response.status_code >= 300:
            try:
                message = response.json().get("error") or response.text.strip()
            except ValueError:
                message = response.text.strip()
            raise FaultInjectionError(
                f"toxiproxy API {method} {path}: HTTP {response.status_code}: {message or '(no body)'}"
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise FaultInjectionError(
                f"toxiproxy API {method} {path}: answer is not JSON: {response.text[:200]!r}"
            ) from None

    # --- server -----------------------------------------------------------------------
    def version(self) -> str:
        return str(self._call("GET", "/version")["version"])

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")

    # --- proxies ----------------------------------------------------------------------
    def proxies(self) -> dict[str, dict[str, Any]]:
        return dict(self._call("GET", "/proxies"))

    def get_proxy(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/proxies/{name}"))

    def create_proxy(
        self, name: str, upstream: str, listen: str = "127.0.0.1:0", *, enabled: bool = True
    ) -> dict[str, Any]:
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        return dict(self._call("POST", "/proxies", body))

    def update_proxy(
        self,
        name: str,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> dict[str, Any]:
        body = {
            k: v
            for k, v in (("listen", listen), ("upstream", upstream), ("enabled", enabled))
            if v is not None
        }
        return dict(self._call("PATCH", f"/proxies/{name}", body))

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{name}")

    def populate(self, proxies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        answer = self._call("POST", "/populate", list(proxies))
        return list(answer.get("proxies") or [])

    # --- toxics -----------------------------------------------------------------------
    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/proxies/{proxy}/toxics"))

    def get_toxic(self, proxy: str, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/proxies/{proxy}/toxics/{name}"))

    def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes or {},
        }
        if name:
            body["name"] = name
        return dict(self._call("POST", f"/proxies/{proxy}/toxics", body))

    def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        attributes: dict[str, int] | None = None,
        toxicity: float | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = attributes
        if toxicity is not None:
            body["toxicity"] = toxicity
        return dict(self._call("PATCH", f"/proxies/{proxy}/toxics/{name}", body))

    def plain_http(self, proxy: str) -> list[dict[str, Any]]:
        """Plain-HTTP requests the proxy trapped (our server's extension; a real
        toxiproxy-server has none and answers 404: FaultInjectionError)."""
        return list(self._call("GET", f"/proxies/{proxy}/plain_http") or [])

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")


def our_server_command() -> list[str]:
    """Our server as a subprocess (same flags as the real one)."""
    return [sys.executable, "-m", "harness.faults.network.server"]


def _child_env() -> dict[str, str]:
    """This checkout importable in the child, whatever its working directory."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def find_toxiproxy_server() -> Path | None:
    """A real `toxiproxy-server` on PATH (or $TOXIPROXY_SERVER), else None."""
    explicit = os.environ.get("TOXIPROXY_SERVER")
    if explicit and Path(explicit).is_file() and os.access(explicit, os.X_OK):
        return Path(explicit)
    found = shutil.which("toxiproxy-server")
    return Path(found) if found else None


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now (the real server cannot bind port 0 and report it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ToxiproxyProcess:
    """Runs a Toxiproxy server as a subprocess (`toxiproxy-server` or `c2c-toxiproxy`).

    `command` is the program and leading arguments; `-host`/`-port`/`-seed` are appended.
    """

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        seed: int | None = None,
        log_path: Path | None = None,
    ) -> None:
        if command is None:
            binary = find_toxiproxy_server()
            if binary is None:
                raise FaultInjectionError("no toxiproxy-server on PATH (set TOXIPROXY_SERVER)")
            command = [str(binary)]
        self.command = list(command)
        self.host = host
        self.port = port
        self.seed = seed
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        if self._proc is None or self.port is None:
            raise FaultInjectionError("toxiproxy process is not running")
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> ToxiproxyProcess:
        """Start and wait until `/version` answers. Raises FaultInjectionError."""
        if self.port is None:
            self.port = free_port(self.host)
        argv = [*self.command, "-host", self.host, "-port", str(self.port)]
        if self.seed is not None:
            argv += ["-seed", str(self.seed)]
        sink = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._proc = spawn(
                argv,
                stdout=sink,
                stderr=sink,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=_child_env(),
            )
        except OSError as exc:
            raise FaultInjectionError(f"cannot start {argv[0]}: {exc}") from None
        finally:
            if sink is not subprocess.DEVNULL:
                sink.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        with ToxiproxyClient(self.api_url, timeout=1.0) as probe:
            while True:
                if self._proc.poll() is not None:
                    code = self._proc.returncode
                    self._proc = None
                    raise FaultInjectionError(f"{argv[0]} exited with status {code} at start")
                try:
                    probe.version()
                    return self
                except FaultInjectionError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise FaultInjectionError(
                            f"{argv[0]} did not answer on {self.host}:{self.port} within {timeout} s"
                        ) from None
                    time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)

    def __enter__(self) -> ToxiproxyProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def launch_toxiproxy(
    *, prefer_real: bool = True, seed: int | None = None
) -> ToxiproxyServer | ToxiproxyProcess:
    """A running Toxiproxy API: a real `toxiproxy-server` if one is on PATH, else ours.

    Both have `.api_url` and `.stop()`, so the same harness code drives either.
    """
    if prefer_real and find_toxiproxy_server() is not None:
        return ToxiproxyProcess(seed=seed).start()
    return ToxiproxyServer(seed=seed).start()

"""Our client against our server in-process and as a subprocess (the real-server code path)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import FaultInjectionError
from harness.faults.network import launch_toxiproxy
from harness.faults.network.client import (
    ToxiproxyClient,
    ToxiproxyProcess,
    find_toxiproxy_server,
    free_port,
    our_server_command,
)
from harness.faults.network.server import ToxiproxyServer, build_parser
from tests.harness.faults.network.conftest import EchoServer, can_connect, port_of, recv_exact

OUR_SERVER = our_server_command()


def exercise(api: ToxiproxyClient, echo: EchoServer) -> None:
    """The same calls the harness makes, whichever server answers."""
    assert api.version() == "2.12.0"
    proxy = api.create_proxy("cam", echo.address)
    port = port_of(proxy["listen"])
    toxic = api.add_toxic("cam", "latency", stream="upstream", attributes={"latency": 10})
    assert toxic["name"] == "latency_upstream"
    assert api.update_toxic("cam", "latency_upstream", attributes={"jitter": 2})["attributes"] == {
        "latency": 10,
        "jitter": 2,
    }
    assert api.get_toxic("cam", "latency_upstream")["toxicity"] == 1
    assert [t["name"] for t in api.toxics("cam")] == ["latency_upstream"]
    assert api.update_proxy("cam", enabled=False)["enabled"] is False
    assert not can_connect(port)
    api.reset()
    assert api.get_proxy("cam")["toxics"] == [] and can_connect(port)
    with pytest.raises(FaultInjectionError, match="HTTP 409: proxy already exists"):
        api.create_proxy("cam", echo.address)
    with pytest.raises(FaultInjectionError, match="HTTP 404: toxic not found"):
        api.remove_toxic("cam", "nope")
    made = api.populate([{"name": "two", "upstream": echo.address, "listen": "127.0.0.1:0"}])
    assert [p["name"] for p in made] == ["two"]
    assert set(api.proxies()) == {"cam", "two"}
    api.delete_proxy("two")
    api.delete_proxy("cam")
    assert api.proxies() == {}


def test_client_in_process(server: ToxiproxyServer, echo: EchoServer) -> None:
    with ToxiproxyClient(server.api_url) as api:
        exercise(api, echo)


def test_client_raises_on_bind_error_with_server_message(
    server: ToxiproxyServer, echo: EchoServer
) -> None:
    with ToxiproxyClient(server.api_url) as api:
        first = api.create_proxy("a", echo.address)
        with pytest.raises(
            FaultInjectionError, match=r"HTTP 500: listen tcp .*address already in use"
        ):
            api.create_proxy("b", echo.address, listen=first["listen"])


def test_client_unreachable_server_is_a_bench_failure() -> None:
    with (
        ToxiproxyClient(f"http://127.0.0.1:{free_port()}", timeout=1) as api,
        pytest.raises(FaultInjectionError, match="failed"),
    ):
        api.version()


def test_subprocess_runner_drives_the_console_server(echo: EchoServer, tmp_path: Path) -> None:
    with (
        ToxiproxyProcess(OUR_SERVER, seed=3, log_path=tmp_path / "toxiproxy.log") as proc,
        ToxiproxyClient(proc.api_url) as api,
    ):
        url = proc.api_url
        exercise(api, echo)
        port = port_of(api.create_proxy("x", echo.address)["listen"])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"hi")
            assert recv_exact(conn, 2) == b"hi"
    assert not can_connect(port)  # the process and its proxies are gone
    with (
        ToxiproxyClient(url, timeout=1) as gone,
        pytest.raises(FaultInjectionError, match="failed"),
    ):
        gone.version()
    with pytest.raises(FaultInjectionError, match="not running"):
        _ = proc.api_url


def test_subprocess_runner_reports_a_failing_binary() -> None:
    with pytest.raises(FaultInjectionError, match="exited with status"):
        ToxiproxyProcess([sys.executable, "-c", "raise SystemExit(3)"]).start(timeout=10)


def test_cli_flags_version_and_config(tmp_path: Path, echo: EchoServer) -> None:
    out = subprocess.run([*OUR_SERVER, "-version"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "toxiproxy-server version 2.12.0"
    args = build_parser().parse_args(["-host", "0.0.0.0", "--port", "0", "-seed", "5"])
    assert (args.host, args.port, args.seed) == ("0.0.0.0", 0, 5)
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps([{"name": "from_config", "upstream": echo.address, "listen": "127.0.0.1:0"}])
    )
    with ToxiproxyServer(config=config) as srv, ToxiproxyClient(srv.api_url) as api:
        assert api.get_proxy("from_config")["enabled"] is True
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with ToxiproxyServer(config=broken) as srv, ToxiproxyClient(srv.api_url) as api:
        assert api.proxies() == {}  # logged, not fatal (like Go)


def test_launch_prefers_real_binary_only_when_present(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("TOXIPROXY_SERVER", raising=False)
    assert find_toxiproxy_server() is None
    launched = launch_toxiproxy()
    try:
        assert isinstance(launched, ToxiproxyServer)
        assert ToxiproxyClient(launched.api_url).version() == "2.12.0"
    finally:
        launched.stop()
    fake = tmp_path / "toxiproxy-server"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    assert find_toxiproxy_server() == fake


def test_cli_refuses_a_taken_port_clearly() -> None:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        out = subprocess.run(
            [*OUR_SERVER, "-host", "127.0.0.1", "-port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr


def test_in_process_server_reports_a_taken_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        with pytest.raises(FaultInjectionError, match=f"could not listen on 127.0.0.1:{port}"):
            ToxiproxyServer(port=port).start()

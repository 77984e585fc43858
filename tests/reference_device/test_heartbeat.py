"""The presence thread: it outlives a bad answer, beats at once after pairing again, and no
server that goes silent can hold it (the presence stall).

Fakes for tokens and API (the real socket and heartbeat paths are covered end to end in
test_engine_e2e.py and by the certification scenarios); HTTP-heartbeat mode, so the timing
under test is the loop's own. The stall tests use a real TLS server on loopback and the real
websockets client: the blocking is in the TLS read, which no fake would reproduce.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cloud.ca import ensure_certs
from reference_device.config import DeviceConfig
from reference_device.heartbeat import Presence
from tests.waiting import wait_until


class FakeTokens:
    def __init__(self) -> None:
        self.paired = True

    def call(self, fn: Any) -> Any:
        return fn("token")

    def access_token(self) -> str:
        return "token"


class FakeApi:
    def __init__(self, ca_bundle: Path | None = None) -> None:
        self.beats = 0
        self.ca_bundle = ca_bundle

    def heartbeat(self, token: str) -> None:
        self.beats += 1

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_bundle))


def _presence(tmp_path: Path, identify: Any) -> tuple[Presence, FakeTokens, FakeApi, threading.Event]:
    config = DeviceConfig(state_dir=tmp_path, websocket=False, heartbeat_interval=120.0, me_poll_interval=0.0)
    tokens, api, stop = FakeTokens(), FakeApi(), threading.Event()
    presence = Presence(config, api, tokens, stop, identify=identify,  # type: ignore[arg-type]
                        device_id=lambda: "dev-1", on_status=lambda status: None)
    return presence, tokens, api, stop


def test_an_unexpected_error_does_not_end_presence(tmp_path: Path) -> None:
    calls = {"n": 0}

    def identify() -> dict[str, Any]:
        calls["n"] += 1
        raise RuntimeError("a cloud answer the device did not expect")

    presence, _tokens, api, stop = _presence(tmp_path, identify)
    presence.start()
    try:
        wait_until(lambda: calls["n"] >= 2, 10, "identify to be retried after it raised")
        assert presence._thread is not None and presence._thread.is_alive()
        assert api.beats >= 1
    finally:
        stop.set()
        presence.join()


def test_a_device_paired_again_beats_at_once(tmp_path: Path) -> None:
    presence, tokens, api, stop = _presence(tmp_path, lambda: {})
    presence.start()
    try:
        wait_until(lambda: api.beats == 1, 10, "the first heartbeat")
        tokens.paired = False  # logout
        wait_until(lambda: not presence.connected or api.beats > 1, 10, "presence to notice the logout")
        tokens.paired = True  # paired again: the next beat must not wait out heartbeat_interval (120 s)
        wait_until(lambda: api.beats == 2, 10, "a heartbeat right after pairing again")
    finally:
        stop.set()
        presence.join()


# --- the presence stall: a server that completes TLS and then says nothing ------------------
class SilentTlsServer:
    """Loopback TLS 1.3 server: handshakes, reads the websocket upgrade, never answers or hangs up.

    What a stalled cloud (or proxy) looks like to the device. TLS 1.3 matters: the server's
    session tickets make the client socket readable, so websockets' reader thread sits in a
    TLS read that closing the socket does not wake.
    """

    def __init__(self, ca_dir: Path) -> None:
        self.certs = ensure_certs(ca_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(self.certs.server_cert, self.certs.server_key)
        self.ctx = ctx
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upgrades = 0
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, name="silent-tls", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                tls = self.ctx.wrap_socket(conn, server_side=True)
                if b"upgrade: websocket" in tls.recv(65536).lower():
                    self.upgrades += 1
                self.held.append(tls)  # open and silent until the test ends
            except OSError:
                conn.close()

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent_server(tmp_path: Path) -> Iterator[SilentTlsServer]:
    server = SilentTlsServer(tmp_path / "tls")
    yield server
    server.close()


def _socket_presence(tmp_path: Path, server: SilentTlsServer, **kw: Any) -> tuple[Presence, FakeApi, threading.Event]:
    config = DeviceConfig(state_dir=tmp_path / "state", websocket=True, api_url=f"https://127.0.0.1:{server.port}",
                          ca_bundle=server.certs.ca_cert, request_timeout=1.0, heartbeat_interval=120.0,
                          me_poll_interval=600.0)
    api, stop = FakeApi(server.certs.ca_cert), threading.Event()
    presence = Presence(config, api, FakeTokens(), stop, identify=lambda: {},  # type: ignore[arg-type]
                        device_id=lambda: "dev-1", on_status=lambda status: None, **kw)
    return presence, api, stop


def test_a_server_that_never_answers_the_upgrade_cannot_hold_presence(
    tmp_path: Path, silent_server: SilentTlsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The stall: the opening handshake times out (open_timeout 1 s here) and presence falls
    back to HTTP heartbeats. Before the fix websockets joined its reader, blocked in a TLS
    read, without a timeout: no heartbeat ever came."""
    caplog.set_level(logging.INFO, logger="reference_device.heartbeat")
    presence, api, stop = _socket_presence(tmp_path, silent_server)
    presence.start()
    try:
        wait_until(lambda: silent_server.upgrades >= 1, 10, "the device to ask for the status socket")
        wait_until(lambda: api.beats >= 1, 10, "an HTTP heartbeat after the silent socket timed out")
        assert "status socket failed (TimeoutError)" in caplog.text
    finally:
        stop.set()
        presence.join(10)
    assert presence._thread is not None and not presence._thread.is_alive()


def test_the_watchdog_names_the_call_presence_is_blocked_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A dependency that blocks without a bound: the watchdog logs the presence thread's stack."""
    caplog.set_level(logging.INFO, logger="reference_device.heartbeat")
    release = threading.Event()

    class BlockingApi(FakeApi):
        def heartbeat(self, token: str) -> None:
            release.wait(30)  # the stand-in for a call without a timeout
            self.beats += 1

    config = DeviceConfig(state_dir=tmp_path, websocket=False, heartbeat_interval=120.0, me_poll_interval=600.0)
    api, stop = BlockingApi(), threading.Event()
    presence = Presence(config, api, FakeTokens(), stop, identify=lambda: {},  # type: ignore[arg-type]
                        device_id=lambda: "dev-1", on_status=lambda status: None, stall_after=1.0)
    presence.start()
    try:
        wait_until(lambda: presence.stalls == 1, 10, "the watchdog to report the stall")
        warning = next(r.getMessage() for r in caplog.records if "presence: no beat for" in r.getMessage())
        assert "in heartbeat" in warning and "release.wait(30)" in warning and "_http_beat" in warning
        release.set()
        wait_until(lambda: "presence: moving again" in caplog.text, 10, "the watchdog to see presence move again")
        assert api.beats == 1 and presence.stalls == 1  # one warning per stall, not one a second
    finally:
        release.set()
        stop.set()
        presence.join()

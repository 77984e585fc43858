"""Real-time status: the Phoenix status websocket, or HTTP heartbeats (c2c-api.md §3.6, §3.14).

With `websocket` on, the device keeps a socket to /devices/websocket (token in the query,
TLS verified, x-client-version header), joins `devices:<id>` and beats every
`socket_heartbeat_interval`. If the socket fails it falls back to POST /v2/devices/heartbeat
every `heartbeat_interval` and tries the socket again later. `status_updated` pushes and a
periodic GET /v2/devices/me feed the cloud status (online / paused).

Nothing here may wait without a bound: every network call has a timeout, and the socket is
shut down (not only closed) when it ends, so a server that accepts TLS and then never
answers cannot hold the presence thread. The socket's TLS session is read by websockets'
reader thread while this one writes: DuplexTLSConnection keeps the two out of each other's
way (OpenSSL allows one call at a time; without it an upgrade request was sometimes lost).
A watchdog logs the presence thread's stack when it has not moved for `stall_after` seconds,
so a stall names its blocked call.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from reference_device.api import ApiClient
from reference_device.config import DeviceConfig
from reference_device.duplex_tls import DuplexTLSConnection
from reference_device.errors import AuthError, DeviceError, RetryableError, UploadError
from reference_device.retry import Backoff
from reference_device.tokens import TokenManager

log = logging.getLogger(__name__)
Identify = Callable[[], dict[str, Any] | None]


class Presence:
    """Keeps the device online and learns the cloud status; runs in its own thread."""

    def __init__(
        self,
        config: DeviceConfig,
        api: ApiClient,
        tokens: TokenManager,
        stop: threading.Event,
        *,
        identify: Identify,
        device_id: Callable[[], str | None],
        on_status: Callable[[str], None],
        stall_after: float | None = None,
    ) -> None:
        self.config = config
        self.api = api
        self.tokens = tokens
        self.stop = stop
        self.identify = identify
        self.device_id = device_id
        self.on_status = on_status
        self.kind = "websocket" if config.websocket else "heartbeat"
        self.connected = False
        self.last_beat_at = 0.0
        self.socket_failures = 0
        self._next_socket_try = 0.0
        self._last_me = 0.0
        self._ref = 0
        self._thread: threading.Thread | None = None
        self._ws: ClientConnection | None = None
        self.backoff = Backoff(max(1.0, config.backoff_base), max(60.0, config.backoff_cap))
        # longer than any one bounded call (connect + read timeout): past it, something waits unbounded
        self.stall_after = stall_after if stall_after is not None else max(30.0, config.request_timeout + 15.0)
        self._tick = time.monotonic()
        self.stalls = 0

    def snapshot(self) -> dict[str, Any]:
        return {"connected": self.connected, "kind": self.kind, "last_beat_at": int(self.last_beat_at)}

    def start(self) -> None:
        self._tick = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="presence", daemon=True)
        self._thread.start()
        threading.Thread(target=self._watchdog, name="presence-watchdog", daemon=True).start()

    def _alive(self) -> None:
        """The presence loop moved: every loop turn and wait is at most a second or two."""
        self._tick = time.monotonic()

    def _watchdog(self) -> None:
        """Log the presence thread's stack once when it has not moved for `stall_after` s."""
        warned = False
        while not self.stop.wait(1.0):
            thread = self._thread
            if thread is None or not thread.is_alive():
                continue
            idle = time.monotonic() - self._tick
            if idle >= self.stall_after and not warned:
                warned = True
                frame = sys._current_frames().get(thread.ident or -1)
                stack = "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)\n"
                log.warning("presence: no beat for %.0f s; the presence thread is blocked in:\n%s",
                            idle, stack.rstrip())
                self.stalls += 1  # counted once the warning is out (tests wait on the count)
            elif idle < self.stall_after and warned:
                warned = False
                log.info("presence: moving again")

    def join(self, timeout: float = 5.0) -> None:
        ws = self._ws
        if ws is not None:
            try:
                ws.close()
            except Exception:
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    # --- loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            self._alive()
            try:
                self._step()
                failures = 0
            except Exception as exc:  # the status thread must outlive any one bad answer
                self.connected = False
                failures += 1
                wait = min(60.0, 2.0 ** min(failures - 1, 6))
                log.warning("presence: %s; retrying in %.0fs", exc if isinstance(exc, DeviceError)
                            else f"{type(exc).__name__}: {exc}", wait)
                deadline = time.monotonic() + wait
                while not self.stop.is_set() and time.monotonic() < deadline:
                    self._alive()  # a backoff is not a stall
                    self.stop.wait(min(1.0, deadline - time.monotonic()))

    def _step(self) -> None:
        if not self.tokens.paired:
            # a new grant starts afresh: the socket is tried at once after pairing again
            self.connected = False
            self.socket_failures = 0
            self._next_socket_try = 0.0
            self.stop.wait(0.5)
            return
        if self.config.websocket and time.time() >= self._next_socket_try and self.device_id():
            try:
                self._socket_session()
            except (OSError, TimeoutError, WebSocketException, DeviceError, ValueError) as exc:
                self.socket_failures += 1
                wait = self.backoff.delay(min(self.socket_failures, 6))
                self._next_socket_try = time.time() + wait
                log.warning("status socket failed (%s) %s; HTTP heartbeats for %.0fs",
                            type(exc).__name__, str(exc)[:200], wait)
            finally:
                self.connected = False
                self._ws = None
            return
        self._http_beat()
        deadline = time.time() + self.config.heartbeat_interval
        while not self.stop.is_set() and time.time() < deadline and self.tokens.paired:
            self._alive()
            if self.config.websocket and time.time() >= self._next_socket_try and self.device_id():
                break
            self._maybe_identify()
            self.stop.wait(min(1.0, max(0.05, deadline - time.time())))

    def _maybe_identify(self) -> None:
        if time.time() - self._last_me >= self.config.me_poll_interval:
            self._last_me = time.time()
            try:
                self.identify()
            except (UploadError, AuthError) as exc:
                log.info("identify (GET /v2/devices/me) failed: %s", exc)
            except Exception as exc:  # never blamed on the socket
                log.warning("identify (GET /v2/devices/me) failed: %s: %s", type(exc).__name__, exc)

    def _http_beat(self) -> None:
        self.kind = "heartbeat"
        try:
            self.tokens.call(self.api.heartbeat)
            self.last_beat_at = time.time()
            self.connected = True
        except (RetryableError, UploadError, AuthError) as exc:
            self.connected = False
            log.info("heartbeat failed: %s", exc)

    # --- Phoenix websocket -----------------------------------------------------------------
    def _send(self, ws: ClientConnection, topic: str, event: str, payload: dict[str, Any]) -> str:
        self._ref += 1
        ref = str(self._ref)
        ws.send(json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref}))
        return ref

    def socket_url(self, token: str) -> str:
        parts = urlsplit(self.config.api_url)
        return f"wss://{parts.netloc}/devices/websocket?Authorization={quote('Bearer ' + token)}"

    def _socket_session(self) -> None:
        token = self.tokens.access_token()
        topic = f"devices:{self.device_id()}"
        ws = connect(
            self.socket_url(token),
            ssl=self.api.ssl_context(),
            additional_headers={"x-client-version": self.config.firmware_version},
            open_timeout=min(10.0, self.config.request_timeout),
            ping_interval=None,
            close_timeout=2,
            create_connection=DuplexTLSConnection,
        )
        self._ws = ws
        with ws:
            join_ref = self._send(ws, topic, "phx_join", {})
            deadline = time.time() + 10
            while True:
                self._alive()
                if time.time() >= deadline:  # other messages, but never the join reply
                    raise TimeoutError("no reply to phx_join")
                msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.time())))
                if msg.get("ref") == join_ref and msg.get("event") == "phx_reply":
                    if (msg.get("payload") or {}).get("status") != "ok":
                        raise DeviceError("status socket join refused")
                    break
                self._handle(msg)
            self.kind = "websocket"
            self.connected = True
            self.last_beat_at = time.time()
            self.socket_failures = 0
            log.info("status socket joined")
            interval = self.config.socket_heartbeat_interval
            next_beat = time.time() + interval
            pending: str | None = None
            # a logout or a cancelled pairing forgets the tokens: the socket opened with that
            # grant closes too (the cloud would keep counting its beats as the device's)
            while not self.stop.is_set() and self.tokens.paired:
                self._alive()
                if time.time() >= next_beat:
                    if pending is not None:
                        raise TimeoutError("no heartbeat reply")
                    pending = self._send(ws, "phoenix", "heartbeat", {})
                    next_beat = time.time() + interval
                self._maybe_identify()
                try:
                    raw = ws.recv(timeout=max(0.05, min(1.0, next_beat - time.time())))
                except TimeoutError:
                    continue
                msg = json.loads(raw)
                if pending is not None and msg.get("ref") == pending:
                    pending = None
                    self.last_beat_at = time.time()
                    continue
                self._handle(msg)

    def _handle(self, msg: dict[str, Any]) -> None:
        event = msg.get("event")
        payload = msg.get("payload") or {}
        if event == "status_updated" and isinstance(payload, dict):
            status = payload.get("status")
            if status is None and "paused" in payload:
                status = "paused" if payload["paused"] else "online"
            if isinstance(status, str):
                log.info("cloud status pushed: %s", status)
                self.on_status(status)
        elif event == "phx_error" or event == "phx_close":
            raise DeviceError(f"status socket {event}")

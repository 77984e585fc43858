"""Defects the old checks let pass because they asked the device, or guessed, instead of the
witness (issue #19 points 7-10): each passed the bench before and must fail its item now.

- made-up-code: shows a six-digit code the cloud never issued (AUTH-01 only compared the
  length). It cannot pair at all, so its quick run is its own scenario: every scenario
  that pairs would stop at the approval.
- wrong-verification-uri: offers verification_uri (no code in it) as the complete URI
  (AUTH-02 accepted any non-empty value).
- ignores-slow-down: keeps its 5 s poll pace after slow_down (AUTH-04 passed on the
  bench's own approval: the device row appears when the bench approves).
- beats-once: one heartbeat after pairing, then silence (SOCK-01's `or [0.0]` made one
  beat a gap of 0). Caught only after a silence over the 300 s limit is seen: its quick run
  is its own scenario (~330 s, like no-heartbeat's).
- plain-http-to-api-port: one request over http:// to its own API host:port, never to
  the plain listener it is not told about (SEC-01 only watched that listener).
- exports-secret-base64: writes the client secret base64-encoded to a support export
  (SEC-03 searched for the raw value only).
- hides-refresh-token: keeps the refresh token in a state file under a key no token
  regex knows (SEC-04 searched for two shapes only).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.mutants.patching import Mutant, replace, state_dir


def _made_up_code() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def set_(self: Any, state: str, **fields: Any) -> None:
            code = str(fields.get("user_code") or "")
            if code.isdigit() and len(code) == 6:
                fields["user_code"] = f"{(int(code) + 500_000) % 1_000_000:06d}"  # six digits, never issued
            orig(self, state, **fields)
        return set_
    replace("reference_device.pairing:PairingStatus.set", wrap)


def _wrong_verification_uri() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def set_(self: Any, state: str, **fields: Any) -> None:
            if fields.get("verification_uri_complete"):
                fields["verification_uri_complete"] = fields.get("verification_uri")  # the code is not in it
            orig(self, state, **fields)
        return set_
    replace("reference_device.pairing:PairingStatus.set", wrap)


def _ignores_slow_down() -> None:
    replace("reference_device.pairing:SLOW_DOWN_STEP", lambda orig: 0.0)


def _beats_once() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def run(self: Any) -> None:
            while not self.stop.is_set() and not self.tokens.paired:
                self.stop.wait(0.5)
            if not self.stop.is_set():
                self._http_beat()  # one heartbeat, then the status goes silent
            self.stop.wait()
        return run
    replace("reference_device.heartbeat:Presence._run", wrap)


def _plain_http_to_api_port() -> None:
    import httpx

    sent = threading.Event()

    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def create_asset(self: Any, token: str, body: dict[str, Any]) -> Any:
            if not sent.is_set():  # a "connectivity check" built as http:// from the https:// API address
                sent.set()
                plain = self.config.api_url.replace("https://", "http://", 1).rstrip("/")

                def check() -> None:
                    try:
                        httpx.get(plain + "/v2/devices/me", headers={"x-client-version": "1.0.0"}, timeout=2)
                    except httpx.HTTPError:
                        pass
                # beside the create, not before it: a TLS port leaves a plain request hanging up to its
                # 2 s timeout, which delayed the prioritised file's create and failed OPT-04 (a second
                # defect, found by the full matrix); the defect is the request, not the wait
                threading.Thread(target=check, daemon=True, name="plain-http-check").start()
            return orig(self, token, body)
        return create_asset
    replace("reference_device.api:ApiClient.create_asset", wrap)


def _exports_secret_base64() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def init_secret(self: Any) -> None:
            orig(self)
            secret = getattr(self.config, "client_secret", None) or os.environ.get("C2C_CLIENT_SECRET", "")
            encoded = base64.b64encode(secret.encode()).decode()  # an encoding, not a protection
            (Path(self.config.state_dir) / "support-export.txt").write_text(f"credentials: {encoded}\n")
        return init_secret
    replace("reference_device.engine:Engine._init_secret", wrap)


def _hides_refresh_token() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def accept(self: Any, answer: dict[str, Any], *args: Any, **kw: Any) -> None:
            orig(self, answer, *args, **kw)  # a refresh passes refresh_count: keep the signature
            path = state_dir(self) / "session-cache.json"
            path.write_text(json.dumps({"grant": {"rt": str(answer.get("refresh_token", ""))}}))
        return accept
    replace("reference_device.tokens:TokenManager.accept", wrap)


WITNESS_MUTANTS: tuple[Mutant, ...] = (
    Mutant("made-up-code", "C2C-AUTH-01", "shows a six-digit pairing code the cloud never issued",
           "reference_device.pairing:PairingStatus.set", _made_up_code, quick_k="sixdigit",
           # the other pairing scenarios read the shown code too: the URL built from it (AUTH-02)
           # and the new code after a pairing error (AUTH-04)
           also=("C2C-AUTH-02", "C2C-AUTH-04")),
    Mutant("wrong-verification-uri", "C2C-AUTH-02", "offers verification_uri (without the code) as the complete URI",
           "reference_device.pairing:PairingStatus.set", _wrong_verification_uri),
    Mutant("ignores-slow-down", "C2C-AUTH-04", "keeps its poll interval after slow_down",
           "reference_device.pairing:SLOW_DOWN_STEP", _ignores_slow_down, quick_k="slow_down"),
    Mutant("beats-once", "C2C-SOCK-01", "one heartbeat after pairing, then no real-time status at all",
           "reference_device.heartbeat:Presence._run", _beats_once, quick_k="realtime",
           # as no-heartbeat's (tests/mutants/table.py): after its one beat the presence thread,
           # the device's only ear, is gone
           also=("C2C-NET-01", "C2C-NETW-04", "C2C-PROJ-01", "C2C-QA-03", "C2C-QA-04", "C2C-WF-08")),
    Mutant("plain-http-to-api-port", "C2C-SEC-01", "sends one request over http:// to its own API host:port",
           "reference_device.api:ApiClient.create_asset", _plain_http_to_api_port),
    Mutant("exports-secret-base64", "C2C-SEC-03", "writes the client secret, base64-encoded, to a support export",
           "reference_device.engine:Engine._init_secret", _exports_secret_base64),
    Mutant("hides-refresh-token", "C2C-SEC-04", 'keeps the refresh token in a state file as {"rt": ...}',
           "reference_device.tokens:TokenManager.accept", _hides_refresh_token),
)


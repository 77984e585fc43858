"""Malformed answers in the cloud's place: what a captive portal or a broken proxy sends a device.

`AnswerGarbler` is an `ErrorInjector` (so one mitmproxy addon serves both `http:` error kinds
and these) that also knows `GARBLE_KINDS`. Two modes:

- `answer` kinds reply instead of the cloud; the request never reaches it (a hotel portal's
  HTML 200, an empty 200, truncated JSON, a 50 MB body, a status the contract does not list,
  an answer that never comes). Nothing is consumed upstream: a refresh token stays valid.
- `rewrite` kinds let the cloud answer and then spoil its JSON (wrong types, missing fields,
  upload URLs with the wrong scheme or port). The cloud did the work: on token refresh the
  old pair is spent, so these are for the resource endpoints.

`trusted_path` runs the garbler in mitmproxy presenting leaves minted from the bench CA the
device already trusts, so ANY device (one we did not write, console-only too) reads the
garbled answers as the cloud's.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, FaultInjectionError
from harness.faults.http.addons import _RULE_KEY, ErrorInjector, redact_path
from harness.faults.http.runner import MitmProxy

PORTAL = b"<html><head><title>Guest Wi-Fi</title></head><body>Please accept the terms.</body></html>"
HUGE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class GarbleKind:
    """One malformed answer: `answer` (in the cloud's place) or `rewrite` (of its JSON)."""

    mode: str
    status: int
    content_type: str
    what: str


GARBLE_KINDS: dict[str, GarbleKind] = {
    "html-200": GarbleKind("answer", 200, "text/html", "a captive portal's HTML page, status 200"),
    "empty-200": GarbleKind("answer", 200, "application/json", "an empty body, status 200"),
    "truncated-json": GarbleKind("answer", 200, "application/json", "JSON cut off mid-object"),
    "huge-200": GarbleKind("answer", 200, "application/json", "a 50 MB JSON object (size= bytes)"),
    "html-403": GarbleKind("answer", 403, "text/html", "a portal's HTML page, status 403"),
    "unlisted-status": GarbleKind("answer", 418, "text/plain", "a status the contract does not list"),
    "hang": GarbleKind("answer", 0, "", "no answer; the connection is closed after seconds="),
    "wrong-types": GarbleKind("rewrite", 200, "application/json", "every field of the real answer mistyped"),
    "missing-fields": GarbleKind("rewrite", 200, "application/json", "the real answer emptied to {}"),
    "http-upload-urls": GarbleKind("rewrite", 200, "application/json", "upload URLs turned http://"),
    "dead-upload-urls": GarbleKind("rewrite", 200, "application/json", "upload URLs sent to port 1"),
}


def _mistype(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return "yes"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return 7
    if isinstance(value, list):
        return {"items": value}
    return [value]


def _spoil_urls(body: Any, fix: Callable[[str], str]) -> Any:
    if isinstance(body, dict) and isinstance(body.get("upload_urls"), list):
        return {**body, "upload_urls": [fix(u) if isinstance(u, str) else u for u in body["upload_urls"]]}
    return body


REWRITES: dict[str, Callable[[Any], Any]] = {
    "wrong-types": lambda body: {k: _mistype(v) for k, v in body.items()} if isinstance(body, dict) else 7,
    "missing-fields": lambda body: {},
    "http-upload-urls": lambda body: _spoil_urls(body, lambda u: u.replace("https://", "http://", 1)),
    "dead-upload-urls": lambda body: _spoil_urls(body, lambda u: re.sub(r"^(https?://[^/:]+)(:\d+)?", r"\1:1", u)),
}


@dataclass
class GarbleRule:
    """Garble matching answers. `path` is a regex searched in the path (query included),
    `request_body` one searched in the request body (e.g. `refresh_token`: a refresh, not a
    device-code poll, on the same endpoint), `count` how many requests to hit (None: every
    one until removed)."""

    kind: str
    path: str | None = None
    method: str | None = None
    request_body: str | None = None
    count: int | None = 1
    size: int = HUGE_BYTES
    seconds: float = 30.0
    hits: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    _body: re.Pattern[bytes] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in GARBLE_KINDS:
            raise ConfigError(f"unknown garble kind {self.kind!r}; known: {', '.join(GARBLE_KINDS)}")
        if self.count is not None and self.count < 1:
            raise ConfigError(f"garble rule count must be >= 1 or None, got {self.count}")
        if self.size < 16 or self.seconds <= 0:
            raise ConfigError(f"garble rule needs size >= 16 and seconds > 0 (got {self.size}, {self.seconds})")
        try:
            self._pattern = re.compile(self.path) if self.path else None
            self._body = re.compile(self.request_body.encode()) if self.request_body else None
        except re.error as exc:
            raise ConfigError(f"garble rule path or body is not a valid regex ({self.path!r}, "
                              f"{self.request_body!r}): {exc}") from None

    @property
    def spec(self) -> GarbleKind:
        return GARBLE_KINDS[self.kind]

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        if self._body is not None and self._body.search(body) is None:
            return False
        return self._pattern is None or self._pattern.search(path) is not None

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.hits >= self.count

    def answer_body(self) -> bytes:
        """The bytes an `answer` kind sends."""
        if self.kind in ("html-200", "html-403"):
            return PORTAL
        if self.kind == "truncated-json":
            return b'{"id": "9a28c1", "upload_urls": ["https://'
        if self.kind == "huge-200":
            return b'{"id": "' + b"x" * (self.size - 10) + b'"}'
        if self.kind == "unlisted-status":
            return b"I'm a teapot"
        return b""


@dataclass(frozen=True)
class Garbled:
    """One answer the garbler spoiled (path redacted: signed URLs carry secrets)."""

    at: float
    method: str
    path: str
    kind: str


_GARBLE_KEY = "c2c_bench_garble"


class AnswerGarbler(ErrorInjector):
    """ErrorInjector plus GARBLE_KINDS; rules and records are read and changed under a lock."""

    def __init__(self) -> None:
        super().__init__()
        self._garble_lock = threading.Lock()
        self._garble_rules: list[GarbleRule] = []
        self._garbled: list[Garbled] = []

    def garble(self, rule: GarbleRule) -> GarbleRule:
        with self._garble_lock:
            self._garble_rules.append(rule)
        return rule

    def stop_garbling(self, rule: GarbleRule) -> None:
        with self._garble_lock:
            self._garble_rules = [r for r in self._garble_rules if r is not rule]

    def clear(self) -> None:
        with self._garble_lock:
            self._garble_rules.clear()
        super().clear()

    @property
    def garbled(self) -> list[Garbled]:
        with self._garble_lock:
            return list(self._garbled)

    def _take_garble(self, method: str, path: str, body: bytes) -> GarbleRule | None:
        with self._garble_lock:
            for rule in self._garble_rules:
                if not rule.exhausted and rule.matches(method, path, body):
                    rule.hits += 1
                    self._garbled.append(Garbled(time.time(), method, redact_path(path), rule.kind))
                    return rule
        return None

    # -- mitmproxy hooks ------------------------------------------------------------------
    # Garble rules are matched once the request body is in (`request`): a rule may look at it.
    # A flow an error rule already took (in `requestheaders`) is left to the ErrorInjector.
    def request(self, flow: Any) -> None:
        if flow.metadata.get(_RULE_KEY) is not None:
            super().request(flow)
            return
        body = b"" if flow.request.stream else (flow.request.raw_content or b"")
        rule = self._take_garble(flow.request.method, flow.request.path, body)
        if rule is None:
            return
        flow.metadata[_GARBLE_KEY] = rule
        if rule.spec.mode != "answer":
            return
        if rule.kind == "hang":  # held, then the connection is closed without an answer
            flow.intercept()
            asyncio.get_running_loop().call_later(rule.seconds, _close, flow)
            return
        from mitmproxy import http

        flow.response = http.Response.make(rule.spec.status, rule.answer_body(),
                                           {"content-type": rule.spec.content_type})

    def response(self, flow: Any) -> None:
        rule: GarbleRule | None = flow.metadata.get(_GARBLE_KEY)
        if rule is None:
            super().response(flow)
            return
        answer = flow.response
        if rule.spec.mode != "rewrite" or answer is None or not 200 <= answer.status_code < 300:
            return
        try:
            body = json.loads(answer.content or b"")
        except ValueError:
            return  # not JSON already: nothing to spoil
        answer.content = json.dumps(REWRITES[rule.kind](body)).encode()
        answer.headers["content-type"] = "application/json"


def _close(flow: Any) -> None:
    if flow.killable:
        flow.kill()


def garble_fault(injector: Any, kind: str, params: dict[str, Any]) -> Callable[[], None]:
    """Start garble `kind` on `injector` (an AnswerGarbler) with vocabulary parameters
    (count, path, method, body, size, seconds); returns how to stop it. The `http:garble-KIND`
    vocabulary faults are this function."""
    if not isinstance(injector, AnswerGarbler):
        raise ConfigError(f"http:garble-{kind} needs an AnswerGarbler on the device's path, "
                          f"got {type(injector).__name__}")
    unknown = set(params) - {"count", "path", "method", "body", "size", "seconds", "duration"}
    if unknown:
        raise ConfigError(f"http:garble-{kind}: unknown parameter(s) {', '.join(sorted(unknown))}")
    count = params.get("count")
    rule = GarbleRule(kind=kind, path=params.get("path"), method=params.get("method"),
                      request_body=params.get("body"),
                      count=None if count is None else int(count),
                      size=int(params.get("size", HUGE_BYTES)), seconds=float(params.get("seconds", 30.0)))
    injector.garble(rule)
    return lambda: injector.stop_garbling(rule)


def trusted_confdir(confdir: Path, ca_cert: Path, ca_key: Path) -> Path:
    """Make `confdir` a mitmproxy confdir whose CA is the bench CA (key + certificate)."""
    try:
        pem = Path(ca_key).read_bytes() + Path(ca_cert).read_bytes()
    except OSError as exc:
        raise FaultInjectionError(f"the garbling path needs the bench CA and its key: {exc}") from None
    confdir.mkdir(parents=True, exist_ok=True)
    target = confdir / "mitmproxy-ca.pem"
    target.write_bytes(pem)
    target.chmod(0o600)
    return confdir


@contextmanager
def trusted_path(upstream_url: str, ca_cert: Path, addons: list[Any],
                 workdir: Path | None = None, **options: Any) -> Iterator[MitmProxy]:
    """Reverse-proxy `upstream_url` through mitmproxy showing certificates from the CA the
    device trusts (`ca_cert`, its key `ca-key.pem` beside it): the device cannot tell it
    from the cloud, so what the addons answer is what the device reads."""
    with tempfile.TemporaryDirectory(prefix="c2c-garble-", dir=workdir) as tmp:
        confdir = trusted_confdir(Path(tmp), Path(ca_cert), Path(ca_cert).with_name("ca-key.pem"))
        proxy = MitmProxy(f"reverse:{upstream_url}@127.0.0.1:0", addons, confdir,
                          ssl_verify_upstream_trusted_ca=str(ca_cert), keep_host_header=True, **options)
        proxy.start()
        try:
            yield proxy
        finally:
            proxy.stop()

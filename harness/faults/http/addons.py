"""mitmproxy addons that inject HTTP faults and watch what the device sends.

Each addon is a small class whose methods are named after mitmproxy hooks. They are
thread-safe where the harness reads or changes them from its own thread while the proxy
runs: rules are added/cleared and records are read under a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.cloud.fault_responses import TARGETS, check_kind, error_response
from harness.errors import ConfigError

log = logging.getLogger(__name__)

_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|"
    r"access_token|refresh_token|token|client_secret|code|device_code)=)[^&#]*")


def redact_path(path: str) -> str:
    """The path with signed-URL signatures and tokens in the query replaced by [redacted]."""
    return _SECRET_QUERY.sub(r"\1[redacted]", path)


_RULE_KEY = "c2c_bench_rule"
_IN_FLIGHT_DONE = "c2c_bench_rule_done"


@dataclass
class ErrorRule:
    """Answer matching requests with an error instead of forwarding them.

    Same fields as the emulator's fault rule (CONTRACTS.md §2): `target` picks the error
    shape (s3 XML or api JSON), `path` is a regex searched in the request path (with
    query), `count` is how many requests to hit (None = every matching request).
    """

    kind: str
    target: str = "s3"
    path: str | None = None
    method: str | None = None
    count: int | None = 1
    retry_after: float | None = None
    hits: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_kind(self.kind)
        if self.target not in TARGETS:
            raise ConfigError(f"unknown fault target {self.target!r}; known: {', '.join(TARGETS)}")
        if self.count is not None and self.count < 1:
            raise ConfigError(f"fault rule count must be >= 1 or None, got {self.count}")
        try:
            self._pattern = re.compile(self.path) if self.path else None
        except re.error as exc:
            raise ConfigError(f"fault rule path is not a valid regex ({self.path!r}): {exc}") from None

    @classmethod
    def from_dict(cls, rule: dict[str, Any]) -> ErrorRule:
        """Build from the emulator's rule shape `{target, path?, method?, count, kind, retry_after?}`."""
        known = {"kind", "target", "path", "method", "count", "retry_after"}
        unknown = set(rule) - known - {"id"}
        if unknown:
            raise ConfigError(f"unknown fault rule field(s): {', '.join(sorted(unknown))}")
        if "kind" not in rule:
            raise ConfigError("fault rule needs a 'kind'")
        return cls(**{k: v for k, v in rule.items() if k in known})

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return self._pattern is None or self._pattern.search(path) is not None

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.hits >= self.count


@dataclass(frozen=True)
class Injection:
    """One request that got an injected fault."""

    at: float
    method: str
    path: str
    kind: str
    status: int | None
    upstream_saw_body: bool  # True when the body was streamed upstream before the error


_UNSET = object()


class ErrorInjector:
    """Injects API-style and S3-style errors by rule.

    The response is set in `request`, after mitmproxy buffered the whole body and before
    anything went upstream. A body above `stream_large_bodies` would already be upstream by
    then and the injected answer silently ignored (fault-injection.md §3.10), and turning
    streaming off per flow does not stick, so while any rule is armed the injector switches
    `stream_large_bodies` off for the whole proxy and restores it once the rules are spent.
    A flow streamed anyway (chunked body racing a new rule) gets the error in `response`
    instead, recorded with `upstream_saw_body=True`.
    """

    def __init__(self, rules: Iterable[ErrorRule | dict[str, Any]] = ()) -> None:
        self._lock = threading.Lock()
        self._rules: list[ErrorRule] = []
        self._injections: list[Injection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._options: Any = None
        self._saved_stream: Any = _UNSET
        self._in_flight = 0
        for rule in rules:
            self.add(rule)

    def add(self, rule: ErrorRule | dict[str, Any]) -> ErrorRule:
        parsed = rule if isinstance(rule, ErrorRule) else ErrorRule.from_dict(rule)
        with self._lock:
            self._rules.append(parsed)
        self._on_loop(self._sync_streaming)
        return parsed

    def remove(self, rule: ErrorRule) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r is not rule]
        self._on_loop(self._sync_streaming)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
        self._on_loop(self._sync_streaming)

    @property
    def rules(self) -> list[ErrorRule]:
        with self._lock:
            return list(self._rules)

    @property
    def injections(self) -> list[Injection]:
        with self._lock:
            return list(self._injections)

    def _armed(self) -> bool:
        with self._lock:
            return self._in_flight > 0 or any(not r.exhausted for r in self._rules)

    def _take(self, method: str, path: str) -> ErrorRule | None:
        with self._lock:
            for rule in self._rules:
                if not rule.exhausted and rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    # -- streaming switch (runs on the proxy's loop) --------------------------------------
    def _on_loop(self, fn: Callable[[], None], timeout: float = 5.0) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # not running yet: `running` syncs
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn()
            return

        async def call() -> None:
            fn()

        with contextlib.suppress(RuntimeError):  # loop stopping
            asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)

    def _sync_streaming(self) -> None:
        options = self._options
        if options is None:
            return
        if self._armed():
            if self._saved_stream is _UNSET and options.stream_large_bodies:
                self._saved_stream = options.stream_large_bodies
                options.update(stream_large_bodies=None)
        elif self._saved_stream is not _UNSET:
            saved, self._saved_stream = self._saved_stream, _UNSET
            options.update(stream_large_bodies=saved)

    # -- hooks ----------------------------------------------------------------------------
    def running(self) -> None:
        from mitmproxy import ctx

        self._loop = asyncio.get_running_loop()
        self._options = ctx.options
        self._sync_streaming()

    def done(self) -> None:
        self._loop = None

    def requestheaders(self, flow: Any) -> None:
        rule = self._take(flow.request.method, flow.request.path)
        if rule is None:
            return
        flow.metadata[_RULE_KEY] = rule
        with self._lock:
            self._in_flight += 1

    def _flow_finished(self, flow: Any) -> None:
        """Once the matched body is fully read, streaming may come back for new flows."""
        if _IN_FLIGHT_DONE in flow.metadata:
            return
        flow.metadata[_IN_FLIGHT_DONE] = True
        with self._lock:
            self._in_flight -= 1
        self._sync_streaming()

    def error(self, flow: Any) -> None:
        if flow.metadata.get(_RULE_KEY) is not None:
            self._flow_finished(flow)

    def request(self, flow: Any) -> None:
        rule: ErrorRule | None = flow.metadata.get(_RULE_KEY)
        if rule is None:
            return
        self._flow_finished(flow)
        streamed = bool(flow.request.stream)
        if rule.kind == "drop":
            if flow.killable:
                flow.kill()
            self._record(flow, rule, None, streamed)
        elif not streamed:
            flow.response = self._response(flow, rule, streamed)

    def response(self, flow: Any) -> None:
        rule: ErrorRule | None = flow.metadata.get(_RULE_KEY)
        if rule is not None and rule.kind != "drop" and flow.request.stream:
            flow.response = self._response(flow, rule, True)

    def _response(self, flow: Any, rule: ErrorRule, streamed: bool) -> Any:
        from mitmproxy import http

        status, body, headers = error_response(rule.target, rule.kind, flow.request.path,
                                               retry_after=rule.retry_after)
        self._record(flow, rule, status, streamed)
        return http.Response.make(status, body, headers)

    def _record(self, flow: Any, rule: ErrorRule, status: int | None, streamed: bool) -> None:
        injection = Injection(time.time(), flow.request.method, redact_path(flow.request.path),
                              rule.kind, status, streamed)
        with self._lock:
            self._injections.append(injection)


@dataclass(frozen=True)
class RequestRecord:
    """What a request carried, never a secret: the Authorization scheme only, not the token."""

    at: float
    method: str
    path: str
    host: str
    http_version: str
    client_version: str | None
    auth_scheme: str | None
    user_agent: str | None
    content_type: str | None
    content_length: int | None
    body_length: int | None  # bytes mitmproxy saw; None when streamed
    length_matches: bool | None
    tls_version: str | None
    sni: str | None


class HeaderAudit:
    """Records every request's protocol-relevant headers (x-client-version, auth, lengths)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._pending: dict[str, dict[str, Any]] = {}

    @property
    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def requestheaders(self, flow: Any) -> None:
        req = flow.request
        auth = req.headers.get("authorization")
        declared = req.headers.get("content-length")
        with self._lock:
            self._pending[flow.id] = {
                "at": req.timestamp_start or time.time(),
                "method": req.method,
                "path": redact_path(req.path),
                "host": req.host_header or req.host,
                "http_version": req.http_version,
                "client_version": req.headers.get("x-client-version"),
                "auth_scheme": auth.split(" ", 1)[0] if auth else None,
                "user_agent": req.headers.get("user-agent"),
                "content_type": req.headers.get("content-type"),
                "content_length": int(declared) if declared and declared.isdigit() else None,
                "tls_version": flow.client_conn.tls_version,
                "sni": flow.client_conn.sni,
            }

    def request(self, flow: Any) -> None:
        self._finish(flow)

    def error(self, flow: Any) -> None:
        self._finish(flow)  # killed or broken flows are audited too

    def _finish(self, flow: Any) -> None:
        with self._lock:
            fields = self._pending.pop(flow.id, None)
        if fields is None:
            return
        streamed = bool(flow.request.stream)
        body = None if streamed else len(flow.request.raw_content or b"")
        declared = fields["content_length"]
        matches = None if body is None else (declared or 0) == body
        record = RequestRecord(body_length=body, length_matches=matches, **fields)
        with self._lock:
            self._records.append(record)


@dataclass(frozen=True)
class Kill:
    """One flow FlowKiller cut: how many request bytes got through before the cut."""

    at: float
    method: str
    path: str
    bytes_forwarded: int


class FlowKiller:
    """Cuts matching requests mid-body: after `after_bytes` request bytes the client
    connection is aborted (TCP RST) and the upstream has received exactly those bytes.
    A body shorter than `after_bytes` reaches the upstream whole and the client is cut
    before any response: the "stored but never acknowledged" case a device must survive.

    mitmproxy cannot kill a flow while its body is in transit (`flow.kill()` only takes
    effect after the body ends), so the stream function aborts the client transport itself.
    """

    def __init__(self, *, path: str | None = None, method: str | None = None,
                 after_bytes: int = 0, count: int | None = 1) -> None:
        if after_bytes < 0:
            raise ConfigError(f"after_bytes must be >= 0, got {after_bytes}")
        try:
            self._pattern = re.compile(path) if path else None
        except re.error as exc:
            raise ConfigError(f"FlowKiller path is not a valid regex ({path!r}): {exc}") from None
        self.method = method
        self.after_bytes = after_bytes
        self.count = count
        self._lock = threading.Lock()
        self._kills: list[Kill] = []
        self._armed = 0
        self._proxyserver: Any = None

    @property
    def kills(self) -> list[Kill]:
        with self._lock:
            return list(self._kills)

    def running(self) -> None:
        from mitmproxy import ctx

        self._proxyserver = ctx.master.addons.get("proxyserver")

    def _arm(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        if self._pattern is not None and self._pattern.search(path) is None:
            return False
        with self._lock:
            if self.count is not None and self._armed >= self.count:
                return False
            self._armed += 1
            return True

    def requestheaders(self, flow: Any) -> None:
        if not self._arm(flow.request.method, flow.request.path):
            return
        flow.request.stream = self._cutter(flow)

    def request(self, flow: Any) -> None:
        # A body shorter than after_bytes ended before the cut: kill it now instead.
        cut = flow.metadata.get("c2c_bench_cut")
        if cut is not None and not cut["done"]:
            cut["done"] = True
            self._abort(flow, cut["sent"])

    def _cutter(self, flow: Any) -> Callable[[bytes], bytes]:
        state = {"sent": 0, "done": False}
        flow.metadata["c2c_bench_cut"] = state

        def cut(chunk: bytes) -> bytes:
            if state["done"]:
                return b""
            room = self.after_bytes - state["sent"]
            if len(chunk) < room or (not chunk and room > 0):
                state["sent"] += len(chunk)
                return chunk
            forwarded = chunk[: max(room, 0)]
            state["sent"] += len(forwarded)
            state["done"] = True
            self._abort(flow, state["sent"])
            return forwarded

        return cut

    def _abort(self, flow: Any, sent: int) -> None:
        with self._lock:
            self._kills.append(Kill(time.time(), flow.request.method,
                                    redact_path(flow.request.path), sent))
        handler = (self._proxyserver.connections.get(flow.client_conn.id)
                   if self._proxyserver is not None else None)
        transport = None
        if handler is not None:
            with contextlib.suppress(AttributeError, KeyError):
                transport = handler.transports[handler.client].writer.transport
        if transport is not None:
            transport.abort()
        elif flow.killable:
            log.warning("FlowKiller: client transport not found; killing the flow instead")
            flow.kill()

"""The proxy collection and the rules of its API (check order, messages, populate/reset).

Every method takes already-decoded JSON and raises `ApiError(status, message)` with the
exact strings of Toxiproxy v2.12.0, so api.py only translates HTTP.
"""

from __future__ import annotations

import random
from typing import Any

from harness.faults.network.listen import ListenError, resolve_listen
from harness.faults.network.proxy import Proxy
from harness.faults.network.toxics import (
    TOXIC_TYPES,
    Toxic,
    ToxicSpecError,
    go_json_kind,
    parse_attributes,
    parse_direction,
)


class ApiError(Exception):
    """An API failure: HTTP `status` and Toxiproxy's message."""

    def __init__(self, status: int, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra or {}


def bad_body(detail: str) -> ApiError:
    return ApiError(400, f"bad request body: {detail}")


def _field(body: dict[str, Any], key: str, kind: type, struct: str, go_type: str) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise bad_body(
            f"json: cannot unmarshal {go_json_kind(value).split(' ')[0]} into Go struct field "
            f"{struct}.{key} of type {go_type}"
        )
    return value


def _object(body: Any, struct: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_body(
            f"json: cannot unmarshal {go_json_kind(body).split(' ')[0]} into Go value of type {struct}"
        )
    return body


def _same_listen(current: str, requested: str) -> bool:
    """2.12.0: `localhost:P` for a proxy bound on `127.0.0.1:P` is not a change."""
    if current == requested:
        return True
    try:
        _, host_a, port_a = resolve_listen(current)
        _, host_b, port_b = resolve_listen(requested)
    except ListenError:
        return False
    return host_a == host_b and port_a == port_b and port_b != 0


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class ProxyRegistry:
    """All proxies of one server. Runs on the server's event loop only."""

    def __init__(self, seed: int | None = None, *, metrics: bool = False) -> None:
        self.rng = random.Random(seed)
        self.proxies: dict[str, Proxy] = {}
        self.metrics = metrics  # /metrics exists only with -proxy-metrics, like Go

    def metrics_text(self) -> str:
        """Prometheus text: received (read from a link's source) and sent (written) bytes."""
        lines = []
        for metric, index, help_text in (
            ("toxiproxy_proxy_received_bytes_total", 0, "The total bytes received from the source"),
            ("toxiproxy_proxy_sent_bytes_total", 1, "The total bytes sent to the destination"),
        ):
            lines.append(f"# HELP {metric} {help_text}")
            lines.append(f"# TYPE {metric} counter")
            for name in sorted(self.proxies):
                proxy = self.proxies[name]
                for direction, totals in proxy.byte_totals.items():
                    labels = {
                        "direction": direction,
                        "listener": proxy.listen,
                        "proxy": proxy.name,
                        "upstream": proxy.upstream,
                    }
                    text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
                    lines.append(f"{metric}{{{text}}} {totals[index]}")
        return "\n".join(lines) + "\n"

    # --- proxies ----------------------------------------------------------------------
    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(404, "proxy not found")
        return proxy

    def index(self) -> dict[str, Any]:
        return {name: self.proxies[name].to_json() for name in sorted(self.proxies)}

    @staticmethod
    def _proxy_fields(body: Any, where: str = "") -> tuple[str, str, str, bool]:
        body = _object(body, "proxy.Proxy")
        name = _field(body, "name", str, "Proxy", "string") or ""
        upstream = _field(body, "upstream", str, "Proxy", "string") or ""
        listen = _field(body, "listen", str, "Proxy", "string") or ""
        enabled = _field(body, "enabled", bool, "Proxy", "bool")
        if not name:
            raise ApiError(400, f"missing required field: name{where}")
        if not upstream:
            raise ApiError(400, f"missing required field: upstream{where}")
        return name, upstream, listen, True if enabled is None else enabled

    async def create(self, body: Any) -> Proxy:
        name, upstream, listen, enabled = self._proxy_fields(body)
        if name in self.proxies:
            raise ApiError(409, "proxy already exists")
        proxy = Proxy(name, listen, upstream, self.rng)
        if enabled:
            await self._start(proxy)
        self.proxies[name] = proxy
        return proxy

    async def _start(self, proxy: Proxy) -> None:
        try:
            await proxy.start()
        except ListenError as exc:
            raise ApiError(500, str(exc)) from None

    async def update(self, name: str, body: Any) -> Proxy:
        proxy = self.get(name)
        body = _object(body, "proxy.Proxy")
        listen = _field(body, "listen", str, "Proxy", "string")
        upstream = _field(body, "upstream", str, "Proxy", "string")
        enabled = _field(body, "enabled", bool, "Proxy", "bool")
        moved = (listen is not None and not _same_listen(proxy.listen, listen)) or (
            upstream is not None and upstream != proxy.upstream
        )
        if moved:
            was_enabled = proxy.enabled
            await proxy.stop()
            proxy.release()
            if listen is not None:
                proxy.listen = listen
            if upstream is not None:
                proxy.upstream = upstream
            if was_enabled and enabled is not False:
                await self._start(proxy)
        if enabled is True and not proxy.enabled:
            await self._start(proxy)
        elif enabled is False and proxy.enabled:
            await proxy.stop()
        return proxy

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        await proxy.stop()
        proxy.release()
        del self.proxies[name]

    async def populate(self, body: Any) -> list[Proxy]:
        if not isinstance(body, list):
            raise ApiError(
                400,
                f"bad request body: json: cannot unmarshal {go_json_kind(body).split(' ')[0]} "
                "into Go value of type []proxy.Proxy",
                {"proxies": None},
            )
        entries = []
        for number, raw in enumerate(body, start=1):
            try:
                entries.append(self._proxy_fields(raw, f" at proxy {number}"))
            except ApiError as exc:
                exc.extra = {"proxies": None}
                raise
        done: list[Proxy] = []
        for name, upstream, listen, enabled in entries:
            try:
                existing = self.proxies.get(name)
                if existing is not None:
                    if _same_listen(existing.listen, listen) and existing.upstream == upstream:
                        done.append(existing)
                        continue
                    await existing.stop()
                    del self.proxies[name]
                proxy = Proxy(name, listen, upstream, self.rng)
                if enabled:
                    await self._start(proxy)
                self.proxies[name] = proxy
                done.append(proxy)
            except ApiError as exc:
                exc.extra = {"proxies": [p.to_json() for p in done]}
                raise
        return done

    async def reset(self) -> None:
        failure: ApiError | None = None
        for proxy in list(self.proxies.values()):
            if not proxy.enabled:
                try:
                    await self._start(proxy)
                except ApiError as exc:
                    failure = failure or exc
            for toxic in proxy.all_toxics():
                self._remove(proxy, toxic)
        if failure is not None:
            raise failure

    # --- toxics -----------------------------------------------------------------------
    def add_toxic(self, proxy_name: str, body: Any) -> Toxic:
        proxy = self.get(proxy_name)
        body = _object(body, "toxics.ToxicWrapper")
        stream = body.get("stream", "downstream")
        if stream is None:
            stream = "downstream"
        if not isinstance(stream, str):
            raise bad_body(
                f"json: cannot unmarshal {go_json_kind(stream).split(' ')[0]} into Go struct field "
                "ToxicWrapper.stream of type string"
            )
        toxic_type = _field(body, "type", str, "ToxicWrapper", "string") or ""
        name = _field(body, "name", str, "ToxicWrapper", "string") or ""
        toxicity = _field(body, "toxicity", float, "ToxicWrapper", "float32")
        direction = parse_direction(stream)
        if direction is None:
            raise ApiError(400, "stream was invalid, can be either upstream or downstream")
        if not name:
            name = f"{toxic_type}_{stream}"
        if toxic_type not in TOXIC_TYPES:
            raise ApiError(400, "invalid toxic type")
        if proxy.find_toxic(name) is not None:
            raise ApiError(409, "toxic already exists")
        try:
            attributes = parse_attributes(toxic_type, body.get("attributes"))
        except ToxicSpecError as exc:
            raise bad_body(str(exc)) from None
        toxic = Toxic(
            name=name,
            type=toxic_type,
            stream=stream,
            direction=direction,
            toxicity=1.0 if toxicity is None else float(toxicity),
            attributes=attributes,
        )
        proxy.toxics[direction].append(toxic)
        proxy.chain_changed(direction)
        return toxic

    def get_toxic(self, proxy_name: str, toxic_name: str) -> Toxic:
        toxic = self.get(proxy_name).find_toxic(toxic_name)
        if toxic is None:
            raise ApiError(404, "toxic not found")
        return toxic

    def update_toxic(self, proxy_name: str, toxic_name: str, body: Any) -> Toxic:
        proxy = self.get(proxy_name)
        toxic = self.get_toxic(proxy_name, toxic_name)
        body = _object(body, "toxics.ToxicWrapper")
        toxicity = _field(body, "toxicity", float, "ToxicWrapper", "float32")
        try:
            attributes = parse_attributes(toxic.type, body.get("attributes"), toxic.attributes)
        except ToxicSpecError as exc:
            raise bad_body(str(exc)) from None
        toxic.attributes = attributes
        if toxicity is not None:
            toxic.toxicity = float(toxicity)
        toxic.version += 1
        proxy.chain_changed(toxic.direction)
        return toxic

    def remove_toxic(self, proxy_name: str, toxic_name: str) -> None:
        proxy = self.get(proxy_name)
        self._remove(proxy, self.get_toxic(proxy_name, toxic_name))

    @staticmethod
    def _remove(proxy: Proxy, toxic: Toxic) -> None:
        held = []
        if toxic.type == "timeout":
            held = [c for c in proxy.connections if c.links[toxic.direction].holds(toxic)]
        proxy.toxics[toxic.direction].remove(toxic)
        proxy.chain_changed(toxic.direction)
        for conn in held:  # the bytes it swallowed would corrupt the stream: end it
            conn.close()

    async def close(self) -> None:
        for proxy in list(self.proxies.values()):
            await proxy.stop()
        self.proxies.clear()

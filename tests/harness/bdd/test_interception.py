"""TlsInterception: mitmproxy goes into the link's upstream and comes out again, recorded."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.bdd import interception as module
from harness.bdd.interception import TlsInterception
from harness.errors import FaultInjectionError
from harness.timeline import Timeline


class FakeLink:
    name = "device-api"
    upstream = "127.0.0.1:4443"

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.api = SimpleNamespace(update_proxy=lambda name, upstream: self.calls.append(f"upstream {upstream}"))

    def reroute(self, upstream: str | None = None) -> None:
        self.api.update_proxy(self.name, upstream=upstream or self.upstream)

    def switch_path(self) -> None:
        self.calls.append("switch")


def test_start_then_stop_restores_the_upstream(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    events: list[str] = []

    @contextlib.contextmanager
    def fake_interception(*args: Any, **kwargs: Any) -> Iterator[Any]:
        events.append(f"enter {kwargs['flaw']}")
        yield SimpleNamespace(port=9999)
        events.append("exit")

    monkeypatch.setattr(module, "interception", fake_interception)
    link, timeline = FakeLink(), Timeline()
    cloud = SimpleNamespace(ca_bundle=str(tmp_path / "ca.pem"), api_url="https://127.0.0.1:4443")
    tls = TlsInterception(link, cloud, tmp_path, timeline)  # type: ignore[arg-type]
    tls.stop()  # not started: nothing to undo
    assert link.calls == [] and not tls.active
    tls.start("expired")
    assert tls.active and events == ["enter expired"]
    assert link.calls == ["upstream 127.0.0.1:9999", "switch"]
    tls.stop()
    tls.stop()  # twice is once
    assert events == ["enter expired", "exit"] and not tls.active
    assert link.calls[2:] == ["upstream 127.0.0.1:4443", "switch"]
    assert [(e.name, e.action) for e in timeline.events] == [("expired-interceptor", "start"),
                                                            ("expired-interceptor", "stop")]


def test_needs_the_toxiproxy_link(tmp_path: Path) -> None:
    cloud = SimpleNamespace(ca_bundle=str(tmp_path / "ca.pem"), api_url="https://127.0.0.1:4443")
    with pytest.raises(FaultInjectionError, match="upstream can be swapped"):
        TlsInterception(object(), cloud, tmp_path, Timeline()).start()  # type: ignore[arg-type]

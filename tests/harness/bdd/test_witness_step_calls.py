"""The steps themselves against a small stand-in bench: which witness they ask, what they measure."""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness.bdd.state import ScenarioState
from harness.bdd.steps.presence_steps import _status_kept
from harness.bdd.steps.security_steps import _no_plain_http
from harness.errors import ConfigError, FaultInjectionError, ProtocolViolation
from harness.items.checklist import load_checklist

State = ScenarioState


class Trap:
    def __init__(self, attempts: list[dict[str, Any]]) -> None:
        self.attempts = attempts

    def plain_http_attempts(self) -> list[dict[str, Any]]:
        return self.attempts


class NoTrap:
    pass


class Cloud:
    def __init__(self, listener: list[dict[str, Any]] | None = None) -> None:
        self.listener = listener or []

    def plain_http_attempts(self) -> list[dict[str, Any]]:
        return self.listener


class FakeBench:
    checklist = load_checklist()

    def __init__(self, network: object, cloud: Cloud | None = None) -> None:
        self.network = network
        self.cloud = cloud or Cloud()
        self.state = State()

    def measure(self, item: str, name: str, value: float, **context: float) -> bool:
        passed = self.checklist[item].measurement(name).check(value, **context)
        self.state.measurements.append({"item": item, "name": name, "value": value, "passed": passed})
        return passed


def _values(bench: FakeBench) -> dict[str, float]:
    return {m["name"]: m["value"] for m in bench.state.measurements}


def test_plain_http_on_the_api_port_fails_sec01() -> None:
    now = time.time()
    bench = FakeBench(Trap([{"t": now - 3600, "method": "GET", "path": "/old"},  # before the scenario
                            {"t": now + 1, "method": "GET", "path": "/v2/devices/me"}]))
    with pytest.raises(ProtocolViolation, match="plain_http_api_port=1"):
        _no_plain_http(bench)  # type: ignore[arg-type]
    assert _values(bench) == {"plain_http_api_port": 1, "plain_http_listener": 0}


def test_no_plain_http_anywhere_passes_and_is_measured() -> None:
    bench = FakeBench(Trap([]))
    _no_plain_http(bench)  # type: ignore[arg-type]
    assert _values(bench) == {"plain_http_api_port": 0, "plain_http_listener": 0}


def test_a_path_without_a_trap_is_a_bench_error_not_a_pass() -> None:
    with pytest.raises(FaultInjectionError):
        _no_plain_http(FakeBench(NoTrap()))  # type: ignore[arg-type]


def test_status_gap_is_judged_inside_the_idle_window() -> None:
    bench = FakeBench(Trap([]))
    bench.state.idle_window = {"start": 1000.0, "end": 1400.0, "beats": [{"t": 900.0}, {"t": 1010.0}]}
    with pytest.raises(AssertionError, match=r"heartbeat_gap_s=390\.0"):
        _status_kept(bench, 300)  # type: ignore[arg-type]
    assert _values(bench) == {"idle_window_s": 400.0, "status_beats": 1, "heartbeat_gap_s": 390.0}
    ok = FakeBench(Trap([]))
    ok.state.idle_window = {"start": 0.0, "end": 60.0, "beats": [{"t": float(t)} for t in range(5, 60, 10)]}
    _status_kept(ok, 300)  # type: ignore[arg-type]
    assert _values(ok)["heartbeat_gap_s"] == 10.0


def test_no_idle_window_is_a_bench_error() -> None:
    with pytest.raises(ConfigError):
        _status_kept(FakeBench(Trap([])), 300)  # type: ignore[arg-type]

"""The fault vocabulary: parsing with clear errors, and dispatch onto the protocol objects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.faults.http.addons import ErrorInjector
from harness.faults.power.process import ProcessPower
from harness.faults.vocabulary import LAYERS, REGISTRY, Fault, FaultTargets, active, inject
from harness.timeline import Timeline
from tests.waiting import wait_until

from .test_cloud_faults import FakeCloud


class FakeNetwork:
    device_api_url = "https://127.0.0.1:9"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def apply_profile(self, name: str) -> None:
        self.calls.append(f"profile:{name}")

    def link_down(self) -> None:
        self.calls.append("down")

    def link_up(self) -> None:
        self.calls.append("up")

    def switch_path(self) -> None:
        self.calls.append("switch")

    def clear(self) -> None:
        self.calls.append("clear")


class FakeMedia:
    def __init__(self) -> None:
        self.corrupted: list[tuple[Path, str]] = []

    def generate(self, kinds: Any, directory: Path, *, count: int = 1) -> list[dict[str, Any]]:
        return []

    def corrupt(self, path: Path, how: str) -> dict[str, Any]:
        self.corrupted.append((path, how))
        return {"path": str(path), "how": how}

    def manifest(self) -> list[dict[str, Any]]:
        return []


@pytest.mark.parametrize(("text", "expected"), [
    ("network:mesh-roam", Fault("network", "mesh-roam")),
    ("s3:slowdown x3", Fault("cloud", "s3-slowdown", {"count": 3})),
    ("S3:Internal_Error", Fault("cloud", "s3-internal-error")),
    ("power:cut", Fault("power", "cut")),
    ("power:cycle 250ms", Fault("power", "cycle", {"duration": 0.25})),
    ("auth:expire-tokens", Fault("auth", "expire-tokens")),
    ("media:truncate", Fault("media", "truncate")),
    ("api:too-many-requests retry_after=5 path='^/v2/assets/.*/parts'",
     Fault("cloud", "api-too-many-requests", {"retry_after": 5, "path": "^/v2/assets/.*/parts"})),
])
def test_parse(text: str, expected: Fault) -> None:
    assert Fault.parse(text) == expected


def test_str_round_trips() -> None:
    for text in ("s3:slowdown x3", "network:blackout", "http:expired-url x2 target=api"):
        assert str(Fault.parse(text)) == text
        assert Fault.parse(str(Fault.parse(text))) == Fault.parse(text)


@pytest.mark.parametrize(("text", "message"), [
    ("network:moon-link", r"unknown fault 'network:moon-link'.*known network faults: .*mesh-roam"),
    ("warp:drive", r"unknown fault layer 'warp'"),
    ("s3:slow", r"unknown fault 's3:slow'"),
    ("power", r"LAYER:NAME"),
    ("", r"empty fault"),
    ("power:cut sometimes", r"modifier 'sometimes'"),
    ("s3:slowdown x0", r"count must be >= 1"),
    ("media:truncate 'unclosed", r"cannot be parsed"),
])
def test_parse_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Fault.parse(text)


def test_every_layer_has_faults() -> None:
    layers = {layer for layer, _ in REGISTRY}
    assert set(LAYERS) == layers
    for kind in ("slowdown", "internal-error", "request-timeout", "expired-url",
                 "too-many-requests", "unauthorized", "drop"):
        assert ("cloud", f"s3-{kind}") in REGISTRY and ("http", kind) in REGISTRY


def test_network_faults_start_and_stop() -> None:
    network, timeline = FakeNetwork(), Timeline()
    targets = FaultTargets(timeline=timeline, network=network)
    with active("network:mesh-roam", targets):
        assert network.calls == ["profile:mesh-roam"]
    inject("network:link-down", targets).stop()
    inject("network:switch-path", targets)
    assert network.calls == ["profile:mesh-roam", "clear", "down", "up", "switch"]
    windows = timeline.windows()
    assert [w["name"] for w in windows] == ["mesh-roam", "link-down", "switch-path"]
    assert all(w["stop"] is not None for w in windows)


def test_cloud_and_auth_faults_dispatch() -> None:
    cloud, timeline = FakeCloud(), Timeline()
    targets = FaultTargets(timeline=timeline, cloud=cloud, device_id="dev-1", project_id="p-1")
    running = inject("s3:slowdown x3 method=PUT", targets)
    assert list(cloud.rules.values()) == [{"target": "s3", "kind": "slowdown", "count": 3,
                                           "method": "PUT"}]
    running.stop()
    running.stop()  # idempotent
    assert cloud.rules == {}
    inject("auth:expire-tokens", targets)
    inject("auth:revoke", targets)
    with active("cloud:pause", targets):
        pass
    inject("cloud:rename-project name='Day 2'", targets)
    assert cloud.calls[-5:] == [("expire_tokens", ("dev-1",)), ("revoke_device", ("dev-1",)),
                                ("pause_device", ("dev-1",)), ("resume_device", ("dev-1",)),
                                ("rename_project", ("p-1", "Day 2"))]
    # recorded once per fault, under the vocabulary's names
    starts = [(e.layer, e.name) for e in timeline.events if e.action == "start"]
    assert starts == [("cloud", "s3-slowdown"), ("auth", "expire-tokens"), ("auth", "revoke"),
                      ("cloud", "pause"), ("cloud", "rename-project")]


def test_missing_targets_and_params_are_named() -> None:
    with pytest.raises(ConfigError, match="needs a power target"):
        inject("power:cut", FaultTargets())
    with pytest.raises(ConfigError, match="needs a device_id"):
        inject("auth:revoke", FaultTargets(cloud=FakeCloud()))
    with pytest.raises(ConfigError, match=r"unknown parameter.*colour"):
        inject("s3:slowdown colour=red", FaultTargets(cloud=FakeCloud()))
    timeline = Timeline()
    with pytest.raises(ConfigError):
        inject("media:truncate", FaultTargets(timeline=timeline, media=FakeMedia()))
    assert timeline.events[-1].details["failed"] == "ConfigError"  # window closed on failure


def test_media_and_http_faults_dispatch(tmp_path: Path) -> None:
    media, injector = FakeMedia(), ErrorInjector()
    targets = FaultTargets(media=media, http=injector, media_path=tmp_path / "A001.mov")
    inject("media:header-damage", targets)
    assert media.corrupted == [(tmp_path / "A001.mov", "header_damage")]
    with active("http:expired-url x2 path=^/upload", targets):
        (rule,) = injector.rules
        assert (rule.kind, rule.count, rule.path, rule.target) == ("expired_url", 2, "^/upload", "s3")
    assert injector.rules == []


class FakeTlsPath:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def start_interceptor(self, flaw: str = "untrusted-ca") -> None:
        self.calls.append(f"start {flaw}")

    def stop_interceptor(self) -> None:
        self.calls.append("stop")


def test_tls_faults_put_an_interceptor_on_the_path_until_stopped() -> None:
    tls, timeline = FakeTlsPath(), Timeline()
    for flaw in ("untrusted-ca", "wrong-host", "expired"):
        with active(f"tls:{flaw}", FaultTargets(timeline=timeline, tls=tls)):
            assert tls.calls[-1] == f"start {flaw}"
        assert tls.calls[-1] == "stop"
    assert [(e.layer, e.name) for e in timeline.events][:2] == [("tls", "untrusted-ca")] * 2
    with pytest.raises(ConfigError, match="needs a tls target"):
        inject("tls:expired", FaultTargets())
    with pytest.raises(ConfigError, match="self-signed"):
        inject("tls:self-signed", FaultTargets(tls=tls))


def test_power_cut_kills_a_real_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    power = ProcessPower([sys.executable, "-c",
                          f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid()))\n"
                          "while True: time.sleep(0.05)"])
    power.on()
    timeline = Timeline()
    try:
        wait_until(marker.exists, 10, "the device process to write its pid")
        first = int(marker.read_text())
        with active("power:cut", FaultTargets(timeline=timeline, power=power)):
            assert not power.is_on()
        assert power.is_on() and power.pid != first
    finally:
        power.off()
    assert [(e.name, e.action) for e in timeline.events] == [("cut", "start"), ("cut", "stop")]


def test_garble_faults_are_in_the_vocabulary_itself() -> None:
    """http:garble-KIND is known to every caller of the vocabulary, not only the hostile steps."""
    from harness.faults.http.garble import GARBLE_KINDS, AnswerGarbler

    fresh = subprocess.run(  # a process that imports the vocabulary and no step module
        [sys.executable, "-c", "import sys; from harness.faults.vocabulary import REGISTRY; "
         "assert not any(m.startswith('harness.bdd') for m in sys.modules); "
         "print(' '.join(n for layer, n in REGISTRY if layer == 'http'))"],
        capture_output=True, text=True, timeout=60, check=True)
    assert {f"garble-{kind}" for kind in GARBLE_KINDS} <= set(fresh.stdout.split())
    garbler = AnswerGarbler()
    with active("http:garble-empty-200 x2", FaultTargets(http=garbler)):
        (rule,) = garbler._garble_rules  # the addon has no public view of its armed rules
        assert (rule.kind, rule.count) == ("empty-200", 2)
    assert garbler._garble_rules == []
    with pytest.raises(ConfigError, match="needs an AnswerGarbler"):
        inject("http:garble-empty-200", FaultTargets(http=ErrorInjector()))

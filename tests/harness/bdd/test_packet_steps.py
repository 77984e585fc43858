"""C2C-NETW-01 on a packet-level link, the parts that need no link: the upload window from the
emulator's ledger, which devices a scenario can put in a namespace, the links a scenario record
names (timeline -> record) and how the certificate shows them per item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.bdd.bench import Bench, ScenarioState, SessionBench
from harness.bdd.steps import packet_steps
from harness.bdd.steps.packet_steps import (
    UploadWindow,
    _behind_packet_link,
    upload_window,
    why_not_packet,
)
from harness.certify.certificate import build_certificate, network_text, render_html
from harness.device.operator import OperatorPrompt
from harness.device.profile import load_profile
from harness.errors import BenchFailure, ConfigError
from harness.faults.network.link import scenario_links
from harness.faults.network.packet.profiles import LINK_PROFILES
from harness.items.checklist import load_checklist
from harness.items.verdicts import NOT_APPLICABLE, verdict_for_skip
from harness.timeline import Timeline


def _row(name: str, created: float, completed: float | None, size: int = 1000, state: str = "complete") -> dict[str, Any]:
    return {"name": name, "created_at": created, "completed_at": completed, "filesize": size, "state": state}


def test_upload_window_runs_from_the_first_asset_to_the_last_completion() -> None:
    rows = [_row("a.mxf", 100.0, None, state="uploading"),  # an abandoned first asset: its time counts
            _row("a.mxf", 104.0, 120.0, 4_000_000), _row("b.mxf", 101.0, 110.0, 1_000_000),
            _row("other.mxf", 50.0, 200.0, 9)]
    window = upload_window(rows, {"a.mxf", "b.mxf"})
    assert window == UploadWindow(start=100.0, end=120.0, nbytes=5_000_000)
    assert window.mbps == pytest.approx(5_000_000 * 8 / 1e6 / 20)


def test_no_upload_window_until_every_file_is_complete() -> None:
    rows = [_row("a.mxf", 100.0, 120.0), _row("b.mxf", 101.0, None, state="uploading")]
    assert upload_window(rows, {"a.mxf", "b.mxf"}) is None
    assert upload_window(rows, {"missing.mxf"}) is None
    assert upload_window(rows, set()) is None


@pytest.mark.parametrize(("profile", "can"), [("reference", True), ("mutant:no-parallel", True),
                                               ("relay-camera", False), ("reference-labgrid", False)])
def test_only_a_device_the_bench_launches_as_a_process_goes_behind_a_packet_link(profile: str, can: bool) -> None:
    reason = why_not_packet(load_profile(profile))
    assert (reason is None) == can
    if reason:
        assert "network namespace" in reason and profile.split(":")[-1] in reason


def _packet_timeline() -> tuple[Timeline, float]:
    timeline = Timeline()
    timeline.record("network", "profile:hotspot", "start", backend="proxy", proxy="c2c_api", summary="old",
                    toxics=[{"type": "latency"}])
    since = timeline.events[-1].at + 1e-6
    described = LINK_PROFILES["cellular"].describe() | {"congestion_control": "reno", "namespace": "c2c-pl-1-0"}
    for _ in range(2):  # applied twice: named once
        timeline.record("network", "profile:cellular", "start", **described)
        timeline.record("network", "profile:cellular", "stop", backend="packet")
    timeline.record("network", "phase:roaming", "start", backend="packet")
    return timeline, since


def test_a_scenario_names_each_link_it_ran_on_once_without_the_namespace() -> None:
    timeline, since = _packet_timeline()
    (link,) = scenario_links(timeline.events, since)
    assert link["backend"] == "packet" and link["profile"] == "cellular"
    assert link["trace"] == "TMobile-LTE-short.up.gz" and link["rtt_ms"] == 100.0 and link["loss"] == 0.005
    assert link["congestion_control"] == "reno" and "namespace" not in link
    assert [x["profile"] for x in scenario_links(timeline.events, 0.0)] == ["hotspot", "cellular"]


def test_the_certificate_names_backend_profile_and_trace_per_item() -> None:
    timeline, since = _packet_timeline()
    links = scenario_links(timeline.events, since)
    results: list[dict[str, Any]] = [
        {"nodeid": "n1", "scenario": "Uploads use what a lossy cellular uplink allows", "items": ["C2C-NETW-01"],
         "verdict": "pass", "measurements": [], "network": links},
        {"nodeid": "n2", "scenario": "Upload speed reaches 50 Mbps when the network allows",
         "items": ["C2C-NETW-01"], "verdict": "pass", "measurements": [],
         "network": [{"backend": "proxy", "profile": "hardline", "summary": "1000 Mbit/s up / 2 ms"}]},
        {"nodeid": "n3", "scenario": "x", "items": ["C2C-UPL-01"], "verdict": "pass", "measurements": []}]
    cert = build_certificate(results, {"name": "ref", "kind": "camera", "capabilities": []}, checklist=load_checklist())
    netw = cert["items"]["C2C-NETW-01"]["networks"]
    assert [(n["backend"], n["profile"]) for n in netw] == [("packet", "cellular"), ("proxy", "hardline")]
    assert cert["items"]["C2C-UPL-01"]["networks"] == []
    text = network_text(netw[0])
    assert text.startswith("packet cellular: trace TMobile-LTE-short.up.gz, 13.32 Mbit/s up, 100 ms RTT")
    assert "0.5 % loss" in text and "queue 400 packets" in text and "TCP reno" in text
    assert network_text(netw[1]) == "proxy hardline: 1000 Mbit/s up / 2 ms"
    page = render_html(cert)
    assert "<i>network:</i> packet cellular: trace TMobile-LTE-short.up.gz" in page


def _bench(tmp_path: Path, profile: str) -> Bench:
    """A bench that has started nothing: the Given step must decide before it builds anything."""
    session = SessionBench(profile=load_profile(profile), workdir=tmp_path, seed=1, prompt=OperatorPrompt(),
                           timeline=Timeline(), checklist=load_checklist())
    return Bench(session, ScenarioState())


def test_a_device_the_bench_does_not_launch_is_not_applicable_never_a_pass(tmp_path: Path) -> None:
    bench = _bench(tmp_path, "relay-camera")
    with pytest.raises(pytest.skip.Exception) as skipped:
        _behind_packet_link(bench, None, "cellular")  # type: ignore[arg-type]  # no request: it must not get that far
    assert verdict_for_skip(str(skipped.value)) == NOT_APPLICABLE and "relay" in str(skipped.value)
    assert bench.session.started_network() is None and bench.session.started_device() is None


def test_a_bench_without_packet_links_is_an_error_with_its_cause(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packet_steps, "packet_links_available", lambda: "packet-level links need root")
    bench = _bench(tmp_path, "reference")
    with pytest.raises(BenchFailure, match=r"cannot build the packet-level link.*need root"):
        _behind_packet_link(bench, None, "cellular")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not a packet-level profile"):
        _behind_packet_link(bench, None, "hardline")  # type: ignore[arg-type]
    assert bench.session.started_network() is None and bench.session.started_device() is None


class _Copy:
    """The scenario's second device instance, as far as closing it goes."""

    client_id = "copy-client"
    stopped = False

    def stop(self) -> None:
        self.stopped = True


class _Devices:
    """The cloud's device list and its revocations (harness.protocols.Cloud, those two calls)."""

    def __init__(self) -> None:
        self.revoked: list[str] = []

    def devices(self) -> list[dict[str, Any]]:
        return [{"id": "run-device", "client_id": "run-client"}, {"id": "copy-device", "client_id": "copy-client"}]

    def revoke_device(self, device_id: str) -> None:
        self.revoked.append(device_id)


def test_the_scenario_revokes_its_device_copy_and_only_it(tmp_path: Path) -> None:
    bench = _bench(tmp_path, "reference")
    cloud = _Devices()
    bench.session._cloud = cloud  # type: ignore[assignment]
    bench.session.project = {"id": "p"}
    scenario = packet_steps.PacketScenario(bench)
    copy = _Copy()
    scenario.session._device = copy  # type: ignore[assignment]
    scenario.enter()
    scenario.close()
    assert cloud.revoked == ["copy-device"] and copy.stopped and bench.session is scenario.original


class _ShapedLink:
    """The run's proxy link, as far as applying a profile goes."""

    def __init__(self) -> None:
        self.applied: list[str] = []

    def apply_profile(self, name: str) -> None:
        self.applied.append(name)


@pytest.mark.parametrize(("profile", "link", "why"), [
    ("relay-camera", "cellular", "does not launch"),   # a hardware device: no namespace for it
    ("reference", "hardline", None),                   # a profile with no trace: the proxy, no note
])
def test_a_field_link_falls_back_to_the_proxy_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           profile: str, link: str, why: str | None) -> None:
    bench = _bench(tmp_path, profile)
    proxy = _ShapedLink()
    bench.session._network = proxy  # type: ignore[assignment]
    monkeypatch.setattr(packet_steps, "_paired_device", lambda b: None)
    monkeypatch.setattr(packet_steps, "_own_packet_link", lambda b, r: pytest.fail("no packet link expected"))
    packet_steps._on_field_link(bench, None, link)  # type: ignore[arg-type]
    assert proxy.applied == [link] and bench.state.network_profile == link
    notes = " ".join(bench.state.exercised)
    assert (why in notes and "fault proxy" in notes) if why else not notes


def test_a_field_link_with_a_trace_builds_its_own_packet_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _bench(tmp_path, "reference")
    proxy = _ShapedLink()
    bench.session._network = proxy  # type: ignore[assignment]
    built: list[str] = []
    monkeypatch.setattr(packet_steps, "packet_links_available", lambda: None)
    monkeypatch.setattr(packet_steps, "_paired_device", lambda b: None)
    monkeypatch.setattr(packet_steps, "_own_packet_link", lambda b, r: built.append("packet"))

    class Request:
        def __init__(self) -> None:
            self.finalizers: list[object] = []

        def addfinalizer(self, f: object) -> None:
            self.finalizers.append(f)
    request = Request()
    packet_steps._on_field_link(bench, request, "direct-modem")  # type: ignore[arg-type]
    assert built == ["packet"] and not bench.state.exercised and len(request.finalizers) == 1

"""Bench housekeeping between scenarios: a failed paused scenario does not poison the next, and
the evidence carries the device's console for the scenario, with secrets redacted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.bdd.bench import Bench, ScenarioState, SessionBench
from harness.bdd.evidence import collect_evidence
from harness.bdd.steps.cloud_steps import PAUSE, inject_fault
from harness.redaction import redact
from harness.timeline import Timeline

SECRET = "s3cr3t-client-secret-value"


class FakeCloud:
    def __init__(self) -> None:
        self.resumed: list[str] = []
        self.paused: list[str] = []

    def pause_device(self, device_id: str) -> None:
        self.paused.append(device_id)

    def devices(self) -> list[dict[str, Any]]:
        return [{"id": "dev-1", "client_id": "cam-1", "revoked": False}]

    def resume_device(self, device_id: str) -> None:
        self.resumed.append(device_id)

    def clear_faults(self) -> None:
        pass

    def client_secret(self) -> str:
        return SECRET

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        return []


class FakeDevice:
    client_id = "cam-1"

    def __init__(self) -> None:
        self.console = ""

    def console_text(self) -> str:
        return self.console


class FakePrompt:
    answers: tuple[Any, ...] = ()


def _bench(tmp_path: Path) -> tuple[Bench, FakeCloud, FakeDevice]:
    cloud, device = FakeCloud(), FakeDevice()
    session = SessionBench(profile=None, workdir=tmp_path, seed=1, prompt=FakePrompt(),  # type: ignore[arg-type]
                           timeline=Timeline(), checklist=None,  # type: ignore[arg-type]
                           _cloud=cloud, _device=device)  # type: ignore[arg-type]
    return Bench(session, ScenarioState()), cloud, device


def test_cleanup_of_a_failed_paused_scenario_resumes_and_closes_the_window(tmp_path: Path) -> None:
    bench, cloud, _ = _bench(tmp_path)
    inject_fault(bench, PAUSE, on_device=True)  # what the pause step does
    bench.state.paused_now = True
    assert cloud.paused == ["dev-1"]
    assert bench.pause_windows()[0]["stop"] is None
    bench.cleanup()  # the scenario failed before "the cloud resumes the device"
    assert cloud.resumed == ["dev-1"]
    assert [w["stop"] is not None for w in bench.pause_windows()] == [True]
    bench.cleanup()  # a second cleanup changes nothing
    assert cloud.resumed == ["dev-1"] and len(bench.pause_windows()) == 1


def test_evidence_has_this_scenarios_console_with_secrets_redacted(tmp_path: Path) -> None:
    bench, _, device = _bench(tmp_path)
    device.console = "earlier scenario line\n"
    bench.mark_console()
    device.console += (f"now: client_secret={SECRET}\n"
                       "GET /v2/devices/me Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345\n"
                       'saved {"refresh_token": "0123456789abcdef0123456789abcdef"}\n'
                       "wss://h/devices/websocket?Authorization=Bearer%20abcdefghijklmnopqrstuvwxyz\n")
    body, _kind = collect_evidence(bench)["device console (this scenario)"]
    assert "earlier scenario" not in body and body.startswith("now:")
    assert SECRET not in body and "abcdefghijklmnop" not in body and "0123456789abcdef" not in body
    assert body.count("[redacted]") == 4


def test_a_device_restarted_in_the_scenario_shows_all_it_printed(tmp_path: Path) -> None:
    bench, _, device = _bench(tmp_path)
    device.console = "x" * 100
    bench.mark_console()
    device.console = "fresh device\n"  # a new console (power cycle, fresh device): shorter than the mark
    assert bench.device_console() == "fresh device\n"


def test_redact_keeps_ordinary_text() -> None:
    line = "uploaded A001_C002.mov asset 5b1c0f5e-2f1a-4c9e-9a51-0c7e3f1d2a4b in 3 parts"
    assert redact(line, [""]) == line


def test_a_scenarios_captures_are_excused_as_known_in_later_scenarios(tmp_path: Path) -> None:
    """A tethered camera's frames are in no media manifest: a frame that reaches the cloud late,
    in the next scenario's window, is an earlier capture, not an unexpected upload."""
    from harness.bdd.bench import Capture

    bench, _, _ = _bench(tmp_path)
    bench.state.captures.append(Capture("GPH_0099.JPG", tmp_path / "GPH_0099.JPG", None, 1, 0.0))
    bench.cleanup()
    later = Bench(bench.session, ScenarioState())
    assert "GPH_0099.JPG" in later.session.captured_names and not later.state.captures


class ApprovingCloud(FakeCloud):
    """The cloud's side of an approval: the code is approved and the device's token poll answered."""

    def __init__(self) -> None:
        super().__init__()
        self.approved: list[str] = []

    def approve(self, code: str, project_id: str) -> None:
        self.approved.append(code)

    def pending_codes(self) -> list[dict[str, Any]]:
        return [] if self.approved else [{"user_code": "482913", "client_id": "cid-1"}]

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        if not self.approved:
            return []
        return [{"id": since + 1, "t": 1.0, "path": "/v2/auth/token", "status": 200, "device_id": "dev-1"}]


def test_a_device_that_collected_its_tokens_counts_as_paired_whatever_ends_the_scenario(tmp_path: Path) -> None:
    """'Pairing cancelled after approval' that ends at the operator question leaves a paired
    device: the next 'a paired device' must not wait for a code it will never show."""
    from harness.bdd.steps.device_steps import approve_and_await_tokens

    bench, _, _ = _bench(tmp_path)
    cloud = ApprovingCloud()
    bench.session._cloud = cloud  # type: ignore[assignment]
    bench.session.project = {"id": "p"}
    bench.state.pairing_code = "482913"
    assert not bench.session.paired
    grant = approve_and_await_tokens(bench)
    assert grant.device_id == "dev-1" and cloud.approved == ["482913"] and bench.session.paired

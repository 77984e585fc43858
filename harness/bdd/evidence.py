"""Evidence attached to every scenario: ledger, fault timeline, journal excerpt, throughput plot,
and what the device printed meanwhile (secrets and tokens redacted). When a scenario fails
(verdict fail or error) on a device that offers it, every thread's stack as well: a device that
stalled without a log line names its blocked call.

Evidence gathering never raises: a bench that cannot produce evidence still reports the
verdict its steps reached, and says which evidence is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from harness.bdd.bench import Bench
from harness.certify.plot import throughput_svg
from harness.protocols import Cloud, CloudWitness, StackDumps
from harness.redaction import redact

JOURNAL_EXCERPT = 200
CONSOLE_EXCERPT = 64 * 1024  # characters: the end of what the device printed in the scenario


def known_secrets(cloud: Cloud) -> list[str]:
    """What the bench knows is secret: the client secret, the run's bench token and every token
    the emulator issued.

    A vendor device may print a token bare (no "Bearer", no "access_token="), which no shape
    catches; the exact values are redacted whatever surrounds them. Best effort: a cloud that
    cannot answer leaves the shapes to do the work.
    """
    secrets: list[str] = []
    try:
        secrets.append(cloud.client_secret())
        if isinstance(cloud, CloudWitness):
            secrets.append(cloud.bench_token() or "")
            for device in cloud.devices():
                secrets.extend(cloud.issued_tokens(str(device["id"])))
    except Exception:  # evidence never raises: the token shapes still apply
        pass
    return [s for s in secrets if s]


def _attachment_types() -> tuple[Any, Any, Any]:
    try:
        from allure_commons.types import AttachmentType

        return AttachmentType.JSON, AttachmentType.TEXT, AttachmentType.SVG
    except ImportError:  # allure not installed: plain strings, only used for file names
        return "json", "text", "svg"


def scenario_failed(exc: BaseException | None, measurements: Iterable[dict[str, Any]] = ()) -> bool:
    """Would this scenario's verdict be fail or error (what a stack dump is asked for)."""
    from harness.items.verdicts import ERROR, FAIL, verdict_for_exception

    return verdict_for_exception(exc) in (FAIL, ERROR) or any(m.get("passed") is False for m in measurements)


def stack_dump_evidence(bench: Bench) -> dict[str, tuple[str, Any]]:
    """The device's thread stacks, when the device in use offers them (never starts one)."""
    _, text_t, _ = _attachment_types()
    device = bench.session.started_device()
    if not isinstance(device, StackDumps):
        return {}
    try:
        text = device.dump_stacks()
    except Exception as exc:
        return {"device thread stacks (unavailable)": (f"{type(exc).__name__}: {exc}", text_t)}
    return {"device thread stacks": (text, text_t)} if text else {}


def collect_evidence(bench: Bench, *, failed: bool = False) -> dict[str, tuple[str, Any]]:
    """{attachment name: (body, allure attachment type)} for one scenario.

    `failed`: the scenario's verdict is fail or error; the device is asked for its stacks
    first, as close to the failure as possible.
    """
    json_t, text_t, svg_t = _attachment_types()
    out: dict[str, tuple[str, Any]] = stack_dump_evidence(bench) if failed else {}
    journal: list[dict[str, Any]] = []
    try:
        journal = bench.journal()
    except Exception as exc:
        out["journal (unavailable)"] = (f"{type(exc).__name__}: {exc}", text_t)
    if bench.state.captures:
        try:
            out["delivery ledger"] = (json.dumps(bench.ledger().to_dict(), indent=2, default=str), json_t)
        except Exception as exc:
            out["delivery ledger (unavailable)"] = (f"{type(exc).__name__}: {exc}", text_t)
    windows = [w for w in bench.timeline.windows() if w["start"] >= bench.state.started_at - 1]
    events = [e.__dict__ for e in bench.timeline.events if e.at >= bench.state.started_at - 1]
    out["fault timeline"] = (json.dumps({"windows": windows, "events": events}, indent=2, default=str), json_t)
    if journal:
        excerpt = journal[-JOURNAL_EXCERPT:]
        out["request journal (excerpt)"] = (json.dumps(excerpt, indent=2, default=str), json_t)
        out["throughput"] = (throughput_svg(journal, windows), svg_t)
    if bench.state.measurements:
        out["measurements"] = (json.dumps(bench.state.measurements, indent=2, default=str), json_t)
    try:
        console = bench.device_console()
        if console:
            out["device console (this scenario)"] = (redact(console[-CONSOLE_EXCERPT:], known_secrets(bench.cloud)),
                                                     text_t)
    except Exception as exc:
        out["device console (unavailable)"] = (f"{type(exc).__name__}: {exc}", text_t)
    if bench.prompt.answers:
        out["operator answers"] = (json.dumps(bench.prompt.evidence(), indent=2, default=str), json_t)
    return out

"""pytest plugin `c2c_bench`: options, markers, bench fixtures, evidence and verdict collection.

Loaded through the `pytest11` entry point in every pytest run of the project, so it is
inert unless used: importing it registers nothing but options and markers, no fixture is
autouse, and results are only written when a scenario actually used the bench and
`--c2c-reports` is given.

Options: --c2c-device=PROFILE (default reference), --c2c-network=PROFILE, --c2c-seed=N,
--c2c-interactive, --c2c-reports=DIR, --c2c-smoke (marks the run as a smoke run),
--c2c-strict (a failure resting only on inferred expectations blocks CERTIFIED).
Fixtures: bench, cloud, network, device, media, timeline (and c2c_session).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.bdd.markers import BUILTIN_TAGS, feature_tags, scenario_evidence
from harness.bdd.run_record import (
    RunRecord,
    plain_http_of_run,
    sockets_of_run,
    worker_id,
    worker_output,
    write_run,
)
from harness.bdd.scenario_ids import (
    checklist_ids,
    expected_scenarios,
    feature_file,
    outline_name,
    plain_nodeid,
    scenario_name,
)
from harness.bdd.scenario_report import failure_reason, label_verdict, operator_answers, progress
from harness.certify.seal import profile_digest
from harness.children import end_with_parent
from harness.items.checklist import load_checklist
from harness.items.verdicts import (
    ERROR,
    FAIL,
    FAIL_INFERRED,
    by_evidence,
    error_cause,
    item_verdicts,
    scenario_verdict,
    verdict_for_skip,
)

if TYPE_CHECKING:  # imported where used: a plain pytest run of the project loads none of it
    from harness.bdd.bench import Bench
    from harness.bdd.session import SessionBench
    from harness.items.applies import ProfileCodes
    from harness.protocols import Cloud, Device, Media, Network
    from harness.timeline import Timeline

# the run's sharding hooks (xdist groups), a plugin of their own
pytest_plugins = ["harness.bdd.sharding"]

RESULTS = pytest.StashKey[RunRecord]()
BENCH = pytest.StashKey["Bench"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("c2c-bench", "C2C certification bench")
    group.addoption("--c2c-device", default="reference", help="device profile name, path or mutant:NAME")
    group.addoption("--c2c-network", default=None, help="network profile applied for the whole run")
    group.addoption("--c2c-seed", type=int, default=1, help="seed for media and fault schedules")
    group.addoption("--c2c-interactive", action="store_true", help="ask the operator for operator-verified items")
    group.addoption("--c2c-reports", default=None, help="directory for results.json and the certificate")
    group.addoption("--c2c-smoke", action="store_true", help="record the run as a smoke run")
    group.addoption("--c2c-strict", action="store_true",
                    help="a failure resting only on inferred (@evidence-inferred) expectations blocks CERTIFIED")
    group.addoption("--c2c-prior", default=None,
                    help="results.json of an earlier run this one retries: its other records are carried forward")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        end_with_parent()  # a shard dies with its run's pytest, and its emulator and devices with it
    try:
        checklist = load_checklist()
        titles = {item.id: item.title for item in checklist}
    except Exception:  # an unreadable checklist must not break unrelated test runs
        titles = {}
    for item_id, title in titles.items():
        config.addinivalue_line("markers", f"{item_id}: checklist item: {title}")
    for tag in sorted(feature_tags() - set(titles)):
        config.addinivalue_line("markers", f"{tag}: {BUILTIN_TAGS.get(tag, 'feature tag')}")
    for tag, doc in BUILTIN_TAGS.items():
        config.addinivalue_line("markers", f"{tag}: {doc}")
    config.stash[RESULTS] = RunRecord()


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def c2c_session(request: pytest.FixtureRequest) -> Iterator[SessionBench]:
    """The session bench: emulator, network, media and device, built lazily on first use."""
    from harness.bdd.bench import session_bench
    from harness.bdd.declarations import contradictions, status_contradiction
    from harness.bdd.run_witness import run_findings
    from harness.device.profile import load_profile

    config = request.config
    config.stash[RESULTS].used = True
    profile = load_profile(config.getoption("--c2c-device"))
    reports = config.getoption("--c2c-reports")
    base = Path(reports) / "work" if reports else Path(tempfile.mkdtemp(prefix="c2c-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    with session_bench(
        profile, workdir, seed=config.getoption("--c2c-seed"),
        interactive=config.getoption("--c2c-interactive"), network_profile=config.getoption("--c2c-network"),
    ) as session:
        if reports:  # attached operator evidence goes beside the results: the signed manifest hashes it
            session.prompt.evidence_dir = Path(reports) / "operator-evidence"
        record = config.stash[RESULTS]
        record.device = profile.summary() | {"not_applicable": dict(profile.not_applicable)}
        record.bound = {"profile_sha256": profile_digest(profile.path, profile.summary())}
        yield session
        rows = record.whole_journal(session)
        found = (contradictions(profile, rows, record.scenarios_exercised(), sockets=sockets_of_run(session))
                 + status_contradiction(record.status_api_seen))
        record.contradictions = [c.row() for c in found]
        record.run_findings = run_findings(rows, plain_http_of_run(session))
        cloud = session.started_cloud()
        if reports and cloud is not None:  # the bench checks its own records while the emulator answers
            from harness.bdd.evidence import known_secrets
            from harness.bdd.secret_scan import scan_reports

            record.secret_scan = scan_reports(Path(reports), known_secrets(cloud), [workdir / "cloud"],
                                              own_run=workdir).row()


@pytest.fixture
def bench(request: pytest.FixtureRequest, c2c_session: SessionBench) -> Iterator[Bench]:
    """This scenario's view of the bench (protocols + its own captures and measurements)."""
    from harness.bdd.bench import Bench, ScenarioState

    # every scenario starts on a live link shaped only by the run's --network, and a cloud without faults, whatever the last
    # one ended in: a bench that cannot restore them is this scenario's error, never the device's fail
    network, cloud = c2c_session.started_network(), c2c_session.started_cloud()
    if network is not None:
        network.clear()
        if c2c_session.network_profile:  # the run's --network holds in every scenario, not the first only
            network.apply_profile(c2c_session.network_profile)
    if cloud is not None:
        cloud.clear_faults()
    c2c_session.reset_if_unknown()  # a device the last scenario left in fail or error starts afresh
    state = ScenarioState()
    state.items = checklist_ids(request.node)  # steps name the item a skip is about
    b = Bench(c2c_session, state)
    state.operator_mark = len(c2c_session.prompt.answers)
    with contextlib.suppress(Exception):
        state.journal_since = c2c_session.journal_head()
        state.plain_http_baseline = len(b.cloud.plain_http_attempts())
    with contextlib.suppress(Exception):
        b.mark_console()
    request.node.stash[BENCH] = b
    yield b
    with contextlib.suppress(Exception):  # evidence gathering must never change this scenario's verdict
        request.config.stash[RESULTS].probe_status_api(c2c_session)
    b.cleanup()


@pytest.fixture
def cloud(bench: Bench) -> Cloud:
    return bench.cloud


@pytest.fixture
def network(bench: Bench) -> Network:
    return bench.network


@pytest.fixture
def device(bench: Bench) -> Device:
    return bench.device


@pytest.fixture
def media(bench: Bench) -> Media:
    return bench.media


@pytest.fixture
def timeline(bench: Bench) -> Timeline:
    return bench.timeline


# --- applicability, decided before a scenario starts -----------------------------------------
_APPLICABILITY = pytest.StashKey["ProfileCodes | None"]()


def _device_codes(config: pytest.Config) -> ProfileCodes | None:
    """The device's codes (kind, capabilities) for the applicability expressions, read once per
    run; None when the profile cannot be loaded (the session fixture then reports why)."""
    if _APPLICABILITY not in config.stash:
        from harness.device.profile import load_profile
        from harness.errors import ConfigError
        from harness.items.checklist import codes

        try:
            profile = load_profile(config.getoption("--c2c-device"))
            config.stash[_APPLICABILITY] = codes(profile.kind, profile.capabilities)
        except ConfigError:
            config.stash[_APPLICABILITY] = None
    return config.stash[_APPLICABILITY]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A scenario none of whose items applies to the device, or that the bench can only run on
    devices with a capability this one lacks (checklist `[scenario_applies]`), is skipped as
    not applicable before any fixture starts an emulator or a device."""
    ids = checklist_ids(item)
    if not ids:
        return
    progress(item.config, {"event": "start", "worker": worker_id(item.config), "scenario": scenario_name(item)})
    device = _device_codes(item.config)
    if device is None:
        return
    from harness.items.verdicts import NOT_APPLICABLE_SKIP

    reason = load_checklist().scenario_not_applicable(outline_name(item), ids, device)
    if reason:
        pytest.skip(f"{NOT_APPLICABLE_SKIP}{reason}")


@pytest.hookimpl(trylast=True, optionalhook=True)
def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    """Checklist IDs as Allure labels; device id and firmware as Allure parameters (history per device)."""
    if not checklist_ids(request.node):
        return
    try:
        import allure

        for item_id in checklist_ids(request.node):
            allure.dynamic.label("checklist", item_id)
        for level in scenario_evidence(request.node):
            allure.dynamic.label("evidence", level)
        config = request.config
        allure.dynamic.parameter("device", config.getoption("--c2c-device"))
        with contextlib.suppress(Exception):
            session = request.getfixturevalue("c2c_session")
            allure.dynamic.parameter("device id", session.profile.device_id)
            allure.dynamic.parameter("firmware", session.profile.firmware)
        allure.dynamic.parameter("seed", str(config.getoption("--c2c-seed")), excluded=True)
    except Exception:  # reporting must never change a verdict
        return


@pytest.hookimpl(optionalhook=True)
def pytest_bdd_step_error(request: pytest.FixtureRequest, exception: BaseException) -> None:
    """Remember why a step failed: pytest-bdd's after_scenario hook is not told."""
    request.node.stash[_STEP_ERROR] = exception


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_bdd_after_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    """Attach the ledger, fault timeline, journal excerpt and throughput plot to the scenario,
    and the device's thread stacks when the scenario failed (runs after a failed step too)."""
    b = request.node.stash.get(BENCH, None)
    if b is None:
        return
    from harness.bdd.evidence import collect_evidence, scenario_failed

    failed = scenario_failed(request.node.stash.get(_STEP_ERROR, None), b.state.measurements)
    evidence = collect_evidence(b, failed=failed)
    request.node.stash[_EVIDENCE] = evidence
    with contextlib.suppress(Exception):
        import allure

        for name, (body, kind) in evidence.items():
            allure.attach(body, name=name, attachment_type=kind)


_EVIDENCE = pytest.StashKey[dict[str, tuple[str, Any]]]()
_THEN_STEPS = pytest.StashKey[int]()


@pytest.hookimpl(optionalhook=True)
def pytest_bdd_after_step(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                          step_func: Any, step_func_args: Any) -> None:
    """Count the Then steps a scenario ran: a scenario that ran none has not judged the device."""
    if step.type == "then":
        request.node.stash[_THEN_STEPS] = request.node.stash.get(_THEN_STEPS, 0) + 1
_STEP_ERROR = pytest.StashKey[BaseException]()


# --- verdicts --------------------------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    ids = checklist_ids(item)
    if not ids:
        return
    record_of_run = item.config.stash[RESULTS]
    failed_setup = report.when == "setup" and not report.passed
    if report.when != "call" and not failed_setup:
        return
    exc = call.excinfo.value if call.excinfo is not None else None
    b = item.stash.get(BENCH, None)
    if b is None and not item.config.getoption("--c2c-reports", default=None):
        return  # not a certification run
    measurements = list(b.state.measurements) if b is not None else []
    declared = dict(b.state.declared) if b is not None else {}
    answers = operator_answers(b)
    attested = any(a["attests"] for a in answers)
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        verdict = verdict_for_skip(str(reason))
        per_item = dict.fromkeys(ids, verdict)
    else:
        failure = exc if report.failed else None
        per_item = item_verdicts(ids, failure, measurements, declared=declared, attested=attested)
        verdict = scenario_verdict(failure, measurements, declared=bool(declared), attested=attested)
        reason = failure_reason(exc) if report.failed else ""
        if failure is None and not item.stash.get(_THEN_STEPS, 0):
            # passing with no Then step run is passing without a judgement: never a pass
            verdict, reason = ERROR, "no Then step ran: the scenario judged nothing"
            per_item = dict.fromkeys(ids, ERROR)
        if not reason and declared:
            reason = "; ".join(f"declared by the profile: {text}" for text in declared.values())
        if verdict == "fail" and not reason:
            bad = [m for m in measurements if m.get("passed") is False]
            reason = "; ".join(f"{m['name']}={m['value']} outside {m['limits']}" for m in bad)
    links: list[dict[str, Any]] = []  # the links it ran on, for the certificate (issue #22, helper H1)
    if b is not None:
        from harness.faults.network.link import scenario_links

        with contextlib.suppress(Exception):  # reporting never changes a verdict
            links = scenario_links(b.timeline.events, b.state.started_at - 1.0)  # the run's --network just before
    evidence = scenario_evidence(item)
    verdict = by_evidence(verdict, evidence)
    per_item = {i: by_evidence(v, evidence) for i, v in per_item.items()}
    cause = ("skipped" if report.skipped else error_cause(exc if report.failed else None)) if verdict == ERROR else None
    if cause:
        reason = f"[{cause}] {reason}"
    record = {
        "nodeid": plain_nodeid(item),
        "feature": feature_file(item),
        "scenario": scenario_name(item),
        "outline": outline_name(item),
        "items": ids,
        "outcome": report.outcome,
        "verdict": verdict,
        "item_verdicts": per_item,
        "reason": reason,
        "exception": type(exc).__name__ if exc is not None and report.failed else None,
        "cause": cause,
        "measurements": measurements,
        "network": links,
        "exercised": list(b.state.exercised) if b is not None else [],
        "declared": declared,
        "evidence": evidence,
        "operator_answers": answers,
        "duration_s": round(report.duration, 3),
        "finished_at": time.time(),
    }
    record_of_run.results.append(record)
    if b is not None and verdict in (FAIL, FAIL_INFERRED, ERROR):  # the device's state is unknown: the next one starts afresh
        b.session.reset_before_next = f"{scenario_name(item)!r} ended in {verdict}"
    label_verdict(verdict, declared, answers)
    progress(item.config, {"event": "scenario", "worker": worker_id(item.config),
                           **{k: record[k] for k in ("nodeid", "scenario", "verdict", "items", "reason")}})


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Remember what a -m / -k selection left out: those scenarios are expected but not run."""
    if items:
        run = items[0].config.stash.get(RESULTS, None)
        if run is not None:
            run.deselected.extend(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    n = sum(1 for i in session.items if checklist_ids(i))
    if n and worker_id(session.config) in ("", "gw0"):  # every worker collects the whole selection
        progress(session.config, {"event": "collected", "scenarios": n})
    run = session.config.stash.get(RESULTS, None)
    if run is not None:
        run.expected = expected_scenarios([*session.items, *run.deselected])
        run.selected = n
        run.order = [plain_nodeid(i) for i in session.items if checklist_ids(i)]
        run.deselected_names = [scenario_name(i) for i in run.deselected if checklist_ids(i)]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write results.json and the certificate when scenarios ran and --c2c-reports is set; on an
    xdist worker, hand this shard's records to the controller instead, which writes the one run."""
    config = session.config
    record = config.stash.get(RESULTS, None)
    if record is None:
        return
    output = worker_output(config)
    if output is not None:
        output[SHARD_KEY] = json.dumps(record.to_shard(worker_id(config)), default=str)
        return
    record.absorb_shards()
    reports = config.getoption("--c2c-reports", default=None)
    if not record.results or not reports:
        return
    write_run(config, record, Path(reports), workers=len(record.shards))
    progress(config, {"event": "finished", "exitstatus": int(exitstatus)})


# --- sharded runs (pytest-xdist): each worker certifies on its own device instance -------------
SHARD_KEY = "c2c_shard"


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the controller: keep the shard a finished worker sent (merged at session end)."""
    sent = getattr(node, "workeroutput", {}).get(SHARD_KEY)
    record = node.config.stash.get(RESULTS, None)
    if sent and record is not None:
        record.shards.append(json.loads(sent))

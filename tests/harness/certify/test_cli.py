"""c2c-certify: argument handling, the step catalog, and a smoke certification through the real stack."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.certify.cli import (
    CERTIFY_PLUGINS,
    main,
    plugin_args,
    pytest_command,
    rootdir_args,
    summary_text,
)
from harness.feature_files import FEATURES_DIR

REPO = Path(__file__).resolve().parents[3]


def test_steps_prints_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["steps"]) == 0
    out = capsys.readouterr().out
    assert "Given a paired device" in out and "Then every captured file arrives intact within {seconds:d} seconds" in out
    assert "(undocumented)" not in out


def test_bad_profile_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "leaky.toml"
    bad.write_text('name = "leaky"\nkind = "app"\nfirmware = "1.0.0"\n[launch]\ncommand = ["dev", "--secret", "{client_secret}"]\n')
    assert main(["run", "--device", str(bad), "--reports", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "client_secret" in err and "argv" in err
    assert main(["run", "--device", "no-such-profile", "--reports", str(tmp_path / "r")]) == 2


def test_mutants_command_works_from_the_console_script_anywhere(tmp_path: Path) -> None:
    """`make mutants` runs the installed console script: it must find the seeded defects itself."""
    script = Path(sys.executable).parent / "c2c-certify"
    done = subprocess.run([str(script), "mutants", "--only", "no-such-mutant", "--out", str(tmp_path / "m.json")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "no-such-mutant" in done.stderr and "known:" in done.stderr
    assert "ModuleNotFoundError" not in done.stderr


def test_pytest_command_selects_smoke_and_items(tmp_path: Path) -> None:
    argv = pytest_command("reference", reports=tmp_path, smoke=True, items=["C2C-CTL-01"], seed=7)
    assert "--c2c-seed=7" in argv and "--c2c-smoke" in argv
    marker = len(argv) - 1 - argv[::-1].index("-m")
    assert argv[marker + 1] == "(C2C-CTL-01) or (smoke)"
    assert not any("secret" in a for a in argv)


def test_a_feature_folder_outside_the_checkout_moves_the_rootdir_up(tmp_path: Path) -> None:
    assert rootdir_args(FEATURES_DIR) == []
    assert rootdir_args(REPO / "vendor" / "features") == []
    vendor = tmp_path / "vendor" / "features"
    [arg] = rootdir_args(vendor)
    rootdir = Path(arg.removeprefix("--rootdir="))
    assert vendor.is_relative_to(rootdir) and REPO.is_relative_to(rootdir)


def test_the_feature_folder_is_checked_before_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("C2C_FEATURES", str(tmp_path / "missing"))
    assert main(["run", "--device", "reference", "--reports", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"C2C_FEATURES={tmp_path / 'missing'} is not a folder" in err
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("C2C_FEATURES", str(tmp_path / "empty"))
    assert main(["run", "--device", "reference", "--reports", str(tmp_path / "r")]) == 2
    assert "holds no .feature files" in capsys.readouterr().err
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "mine.feature").write_text("Feature: mine\n")
    monkeypatch.setenv("C2C_FEATURES", str(tmp_path / "own"))
    argv = pytest_command("reference", reports=tmp_path / "r")
    assert any(a.startswith("--rootdir=") for a in argv)


PLUGIN_PROBE = """
import json, os
from pathlib import Path

def test_plugins(pytestconfig):
    manager = pytestconfig.pluginmanager
    names = sorted(manager.get_name(p) or "" for p in manager.get_plugins())
    who = os.environ.get("PYTEST_XDIST_WORKER", "controller")
    Path(who + ".json").write_text(json.dumps(names))
"""


def test_a_certification_pytest_loads_only_its_own_plugins(tmp_path: Path) -> None:
    """Every pytest process of a sharded certification, its xdist workers too, loads our plugin and
    CERTIFY_PLUGINS and no other third-party plugin installed in the venv (labgrid's, schemathesis')."""
    (tmp_path / "test_probe.py").write_text(PLUGIN_PROBE)
    done = subprocess.run([sys.executable, "-m", "pytest", "test_probe.py", *plugin_args(), "-p", "no:cacheprovider",
                           "-q", f"--c2c-reports={tmp_path / 'r'}", "-n", "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    loaded = json.loads(next(tmp_path.glob("gw*.json")).read_text())
    assert {"labgrid", "schemathesis", "hypothesispytest", "anyio", "faker"}.isdisjoint(loaded), loaded
    assert {"c2c_bench", *CERTIFY_PLUGINS} <= set(loaded), loaded


def test_summary_text_names_failures_and_files(tmp_path: Path) -> None:
    from harness.certify.certificate import build_certificate

    results = [{"scenario": "Captured media is uploaded automatically", "items": ["C2C-UPL-01"], "verdict": "fail",
                "reason": "A.jpg: lost", "measurements": []},
               {"scenario": "Secrets and tokens are encrypted at rest", "items": ["C2C-SEC-05"], "verdict": "declared",
                "reason": "", "measurements": [], "declared": {"C2C-SEC-05": "Fernet"}}]
    cert = build_certificate(results, {"id": "dut", "firmware": "1.0.0", "kind": "camera"},
                             run={"selection": {"deselected": 60}})
    text = summary_text(cert, tmp_path)
    assert "NOT CERTIFIED" in text and "A.jpg: lost" in text and "certificate.json" in text
    assert "DECLARED (the profile's word, not measured): C2C-SEC-05" in text
    assert cert["summary"]["exit_code"] == 1


def test_report_without_results_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--reports", str(tmp_path), "--allure", str(tmp_path / "allure")]) == 2
    assert "no Allure results" in capsys.readouterr().err


SmokeRun = tuple[subprocess.CompletedProcess[str], Path]


def smoke_run(device: str, reports: Path, seed: int = 1) -> SmokeRun:
    """`c2c-certify run --smoke` as a user runs it: a subprocess with real emulator and device."""
    done = subprocess.run([sys.executable, "-m", "harness.certify.cli", "run", "--device", device, "--smoke",
                           "--seed", str(seed), "--reports", str(reports), "--quiet"], cwd=REPO, capture_output=True,
                          text=True, timeout=540, check=False)
    return done, reports


@pytest.fixture(scope="module")
def reference_smoke(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    """One smoke certification of the reference device, shared by the smoke and determinism tests."""
    return smoke_run("reference", tmp_path_factory.mktemp("reference-smoke") / "reports")


def _item_verdicts(reports: Path) -> dict[str, str]:
    cert = json.loads((reports / "certificate.json").read_text())
    return {item_id: entry["verdict"] for item_id, entry in cert["items"].items()}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("device", ["reference", "minimal"])
def test_smoke_certification_through_the_real_stack(device: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Real emulator, real TLS, a real device process; the deliberately incomplete minimal uploader
    fails items but must not crash the bench."""
    done, reports = (request.getfixturevalue("reference_smoke") if device == "reference"
                     else smoke_run(device, tmp_path / "reports"))
    cert_path = reports / "certificate.json"
    assert cert_path.exists(), done.stdout[-2000:] + done.stderr[-2000:] + (reports / "pytest.log").read_text()[-4000:]
    cert = json.loads(cert_path.read_text())
    items = cert["items"]
    assert set(items) >= {"C2C-UPL-01", "C2C-HDR-01", "C2C-QUE-03"}
    ran = {i: e for i, e in items.items() if e["verdict"] != "not-run"}
    # a smoke run is a partial selection: it never certifies, and the exit status is the certificate's
    assert cert["summary"]["partial"] and not cert["summary"]["certified"]
    assert done.returncode == cert["summary"]["exit_code"], done.stdout
    if device == "reference":
        assert cert["summary"]["status"] == "INCOMPLETE" and done.returncode == 3, done.stdout
        assert "error" not in {e["verdict"] for e in ran.values()}, {i: e["reason"] for i, e in ran.items() if e["verdict"] == "error"}
        assert {e["verdict"] for e in ran.values()} <= {"pass", "not-applicable"}, done.stdout
        assert all(s["verdict"] == "pass" for e in items.values() for s in e["scenarios"]), done.stdout
    else:
        assert {s["verdict"] for s in items["C2C-UPL-01"]["scenarios"]} == {"pass"}
        assert items["C2C-STAT-01"]["verdict"] == "operator"  # no status API, not interactive
    page = (reports / "certificate.html").read_text()
    assert "<script" not in page
    # the bench searched its own reports (attachments, the run's scratch, device state and logs)
    # for the client secret and every token the emulator issued, while the emulator still answered
    scan = json.loads((reports / "results.json").read_text())["run"]["secret_scan"]
    assert scan["files"] > 10 and scan["secrets"] >= 2, scan
    if device == "reference":
        assert scan["hits"] == [], scan
    else:  # the minimal uploader keeps its tokens in plain JSON: found in its own state, nowhere else
        assert scan["hits"] and all(re.fullmatch(r"work/run-[^/]+/device-\d+/state/.+", h) for h in scan["hits"]), scan
    results = list((reports / "allure-results").glob("*-result.json"))
    assert results
    labels = json.loads(results[0].read_text())["labels"]
    assert any(lb["name"] == "checklist" for lb in labels)
    assert any(lb["name"] == "evidence" for lb in labels)  # how firm the scenario's expectations are
    if device == "reference":  # make test installs Allure 3 (npm) first: the HTML report is built
        allure = REPO / ".cache/node/node_modules/.bin/allure"
        assert allure.exists(), "Allure 3 CLI missing: run `make test` (it installs it under .cache/node)"
        assert main(["report", "--reports", str(reports), "--allure", str(allure)]) == 0
        assert (reports / "html" / "index.html").stat().st_size > 100_000


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_same_seed_gives_the_same_verdicts(reference_smoke: SmokeRun, tmp_path: Path) -> None:
    """Determinism: a second smoke certification with the same seed gives every item the same verdict."""
    first_done, first = reference_smoke
    second_done, second = smoke_run("reference", tmp_path / "again")
    for done, reports in ((first_done, first), (second_done, second)):
        assert (reports / "certificate.json").exists(), done.stdout[-2000:] + done.stderr[-2000:]
    a, b = _item_verdicts(first), _item_verdicts(second)
    assert set(a) == set(b)
    differ = {item: (a[item], b[item]) for item in a if a[item] != b[item]}
    assert not differ, f"verdicts differ between two runs with seed 1: {differ}"
    assert {v for v in a.values() if v != "not-run"}, "the smoke run verified nothing"


def test_progress_display_follows_the_plugin_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.certify.progress import follow_progress

    events = [{"event": "collected", "scenarios": 2},
              {"event": "scenario", "nodeid": "a", "scenario": "First", "verdict": "pass", "items": ["C2C-UPL-01"]},
              {"event": "scenario", "nodeid": "b", "scenario": "Second", "verdict": "fail", "items": ["C2C-HDR-01"]}]
    (tmp_path / "progress.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    follow_progress(tmp_path, proc, quiet=False)
    err = capsys.readouterr().err
    assert "First" in err and "Second" in err and "fail" in err


def test_progress_of_a_sharded_run_names_each_worker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.certify.progress import follow_progress

    events = [{"event": "collected", "scenarios": 2},
              {"event": "start", "worker": "gw0", "scenario": "First"},
              {"event": "start", "worker": "gw1", "scenario": "Second"},
              {"event": "scenario", "worker": "gw1", "nodeid": "b", "scenario": "Second", "verdict": "pass",
               "items": ["C2C-HDR-01"]},
              {"event": "scenario", "worker": "gw0", "nodeid": "a", "scenario": "First", "verdict": "fail",
               "items": ["C2C-UPL-01"]}]
    (tmp_path / "progress.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events) + '{"event": "sta')
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    follow_progress(tmp_path, proc, quiet=False)  # a half-written last line is left for the next read
    err = capsys.readouterr().err
    assert "First" in err and "Second" in err and "gw0" in err and "gw1" in err


def test_chaos_hands_every_argument_to_the_campaign(capfd: pytest.CaptureFixture[str]) -> None:
    """`c2c-certify chaos ...` is `python -m harness.chaos ...` in a child process: its options
    (--device, --help) are the campaign's, and so is the exit status (2: a usage error)."""
    assert main(["chaos", "--device", "no-such-profile", "--schedules", "1"]) == 2
    assert "no-such-profile" in capfd.readouterr().err
    assert main(["chaos", "--help"]) == 0
    assert "--replay" in capfd.readouterr().out

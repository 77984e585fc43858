from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from harness.device.profile import PROFILE_DIR, load_profile, parse_profile, render_template
from harness.errors import ConfigError

REFERENCE = tomllib.loads((PROFILE_DIR / "reference.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(p.stem for p in PROFILE_DIR.glob("*.toml")))
def test_shipped_profiles_load(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert profile.summary()["firmware"]


def test_reference_is_a_process_device_with_status_and_control() -> None:
    p = load_profile("reference")
    assert p.power.driver == "process" and p.status.driver == "http-json" and p.control.driver == "local-api"
    assert p.pairing.source == "status"
    assert "C2C-WF-01" in p.not_applicable


@pytest.mark.parametrize("name", ["independent", "minimal"])
def test_outside_profiles_read_the_code_from_the_console(name: str) -> None:
    p = load_profile(name)
    assert p.pairing.source == "console" and p.status.driver == "none" and p.control.driver == "none"


def _bad(mutate) -> str:  # type: ignore[no-untyped-def]
    data = copy.deepcopy(REFERENCE)
    mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_profile(data)
    return str(info.value)


def test_client_secret_in_argv_is_refused() -> None:
    msg = _bad(lambda d: d["launch"]["command"].append("--secret={client_secret}"))
    assert "client_secret" in msg and "command[6]" in msg and "argv" in msg


def test_client_secret_in_a_file_path_or_cwd_is_refused() -> None:
    assert "client_secret" in _bad(lambda d: d["launch"]["files"].update({"/tmp/{client_secret}": "x"}))
    assert "client_secret" in _bad(lambda d: d["launch"].update(cwd="{client_secret}"))
    assert "client_secret" in _bad(lambda d: d["status"].update(url="http://x/{client_secret}"))


def test_client_secret_in_env_and_files_is_allowed() -> None:
    data = copy.deepcopy(REFERENCE)
    data["launch"]["env"]["SECRET"] = "{client_secret}"
    data["launch"]["files"]["{state_dir}/s.txt"] = "secret={client_secret}"
    assert parse_profile(data).launch is not None


def test_validation_names_the_field() -> None:
    assert "kind" in _bad(lambda d: d.update(kind="toaster"))
    assert "unknown placeholder" in _bad(lambda d: d["launch"]["command"].append("{password}"))
    assert "driver" in _bad(lambda d: d["power"].update(driver="hamster"))
    assert "'relay' needs" in _bad(lambda d: d["power"].update(driver="relay"))
    assert "not a checklist ID" in _bad(lambda d: d["not_applicable"].update({"UPL-3": "x"}))
    assert "reason" in _bad(lambda d: d["not_applicable"].update({"C2C-UPL-03": ""}))
    assert "regex" in _bad(lambda d: d["pairing"].update(source="console", regex="("))
    assert "one group" in _bad(lambda d: d["pairing"].update(source="console", regex=r"\d{6}"))
    assert "needs a [status]" in _bad(lambda d: d.update(status={"driver": "none"}))
    assert "unknown field" in _bad(lambda d: d.update(colour="blue"))
    assert "non-empty list" in _bad(lambda d: d["launch"].update(command=[]))


def test_declarations_are_checked_against_the_checklist_before_a_run() -> None:
    """A profile cannot declare an item the checklist does not have, nor declare its way past
    an item the oracle decides (the old check looked only at the ID's shape)."""
    assert "not an item of the checklist" in _bad(lambda d: d["not_applicable"].update({"C2C-XYZ-99": "x"}))
    assert "not an item of the checklist" in _bad(lambda d: d["declared"].update({"C2C-UPL-99": "x"}))
    msg = _bad(lambda d: d["declared"].update({"C2C-UPL-01": "we upload everything, trust us"}))
    assert "C2C-UPL-01" in msg and "not by declaration" in msg
    assert "evidence" in _bad(lambda d: d["declared"].update({"C2C-NETW-02": " "}))


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known profiles"):
        load_profile("no-such-device")


def test_broken_toml_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x', encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_profile(bad)


def test_mutant_syntax_wraps_the_reference_launch() -> None:
    for spec in ("mutant:no-version-header", "mutant-no-version-header"):
        p = load_profile(spec)
        assert p.mutant == "no-version-header"
        assert p.device_id == "reference+no-version-header"
        assert p.launch is not None
        assert p.launch.command[1:5] == ("-m", "tests.mutants.launch", "no-version-header", "--")
        assert p.launch.env["C2C_MUTANT"] == "no-version-header"


def test_render_template_refuses_unknown_placeholders() -> None:
    assert render_template("{a}-{b}", {"a": 1, "b": "x"}) == "1-x"
    with pytest.raises(ConfigError, match="unknown placeholder"):
        render_template("{a}{c}", {"a": 1})


def test_an_independent_mutant_runs_the_independent_device_through_the_launcher() -> None:
    """`mutant:independent-NAME` is a defect of fixtures/devices/independent.toml; other names the reference's."""
    outside = load_profile("mutant:independent-forget-queue")
    assert outside.name == "independent" and outside.device_id == "independent+independent-forget-queue"
    assert outside.launch is not None
    assert list(outside.launch.command[1:5]) == ["-m", "tests.mutants.launch", "independent-forget-queue", "--"]
    assert "--api" in outside.launch.command and outside.launch.env["C2C_MUTANT"] == "independent-forget-queue"
    assert load_profile("mutant:restart-from-zero").name == "reference"

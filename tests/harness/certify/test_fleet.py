"""`c2c-certify fleet`: the inventory's checks, and a real fleet of two software devices."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.certify.fleet import (
    DeviceOutcome,
    fleet_bench,
    load_inventory,
    summary_html,
    verdict_diffs,
)
from harness.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
INVENTORY = textwrap.dedent('''
    [rigs.local]
    kind = "local"
    slots = 2

    [[devices]]
    name = "reference"
    profile = "reference"
    rig = "local"

    [[devices]]
    name = "no-retry"
    profile = "mutant:no-retry-api"
    rig = "local"
''')


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_inventory_is_read_and_its_mistakes_named(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, INVENTORY))
    assert [d.profile for d in inv.devices] == ["reference", "mutant:no-retry-api"] and inv.rigs["local"].slots == 2
    for text, words in (
        (INVENTORY.replace('rig = "local"\n\n', 'rig = "bench9"\n\n', 1), "rig 'bench9'"),
        (INVENTORY.replace('kind = "local"', 'kind = "ssh"'), "'ssh'"),
        (INVENTORY.replace('name = "no-retry"', 'name = "reference"'), "unique"),
        (INVENTORY.replace('slots = 2', 'slots = 0'), "slots"),
        ('[rigs.local]\nkind = "local"\n', r"no \[\[devices\]\]"),
        ("[[devices]]\nname = 3\n", "name"),
    ):
        with pytest.raises(ConfigError, match=words):
            load_inventory(write(tmp_path, text))


def test_fleet_bench_compares_the_fleet_certificate_with_the_solo_one() -> None:
    solo = DeviceOutcome("reference", "reference", "local", "done", seconds=100.0, verdicts={"A": "pass", "B": "fail"})
    rows = [DeviceOutcome("reference", "reference", "local", "done", seconds=120.0, verdicts={"A": "pass", "B": "pass"}),
            DeviceOutcome("m", "mutant:x", "local", "done", seconds=110.0, verdicts={})]
    record = fleet_bench(rows, solo, 140.0)
    by_name = {r["name"]: r["value"] for r in record["results"]}
    assert by_name == {"fleet_ratio": 1.4, "fleet_solo_verdict_diffs": 1}
    assert verdict_diffs({"A": "pass"}, None) == 1
    assert "<td>m</td>" in summary_html(rows, 140.0) and "certificate.html" in summary_html(rows, None)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_a_fleet_of_two_software_devices_certifies_each_as_its_solo_run(tmp_path: Path) -> None:
    reports = tmp_path / "fleet"
    done = subprocess.run([sys.executable, "-m", "harness.certify.cli", "fleet", "--inventory",
                           str(write(tmp_path, INVENTORY)), "--reports", str(reports), "--item", "C2C-AUTH-01",
                           "--solo-baseline", "--bench", str(tmp_path / "bench")],
                          cwd=REPO, capture_output=True, text=True, timeout=2300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((reports / "fleet.json").read_text())
    rows = {r["name"]: r for r in summary["devices"]}
    assert set(rows) == {"reference", "no-retry"} and all(r["state"] == "done" for r in rows.values())
    for name, row in rows.items():
        cert = json.loads((reports / name / "certificate.json").read_text())
        assert row["verdicts"] == {i: e["verdict"] for i, e in cert["items"].items()}
        assert row["verdicts"]["C2C-AUTH-01"] == "pass", row
        verify = subprocess.run([sys.executable, "-m", "harness.certify.cli", "verify", str(reports / name)],
                                cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
        assert verify.returncode == 0, verify.stderr
    assert "no-retry" in (reports / "fleet.html").read_text()
    # the merged Allure folder holds both devices' results, each with its device parameter
    devices = {p["value"].strip("'") for f in (reports / "allure-results").glob("*-result.json")
               for p in json.loads(f.read_text()).get("parameters", []) if p["name"] == "device"}
    assert devices == {"reference", "mutant:no-retry-api"}
    bench = {r["name"]: r for r in json.loads((tmp_path / "bench" / "fleet.json").read_text())["results"]}
    assert bench["fleet_solo_verdict_diffs"]["value"] == 0 and bench["fleet_ratio"]["value"] > 0

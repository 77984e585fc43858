"""Allure 3 HTML report from reports/allure-results (single file, opens from file://).

Writes the Allure config (awesome plugin, singleFile), environment.properties and
categories.json (device failures vs bench errors, the LAVA lesson), then runs the Allure 3
CLI with ALLURE_NO_ANALYTICS=true.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from harness.errors import ConfigError

CATEGORIES = [
    {"name": "Device failures (checklist item failed)", "matchedStatuses": ["failed"],
     "messageRegex": r"(?s).*(AssertionError|DeviceFailure|DeliveryFailure|ProtocolViolation|DeviceTimeout).*"},
    {"name": "Bench errors (verdict error, not the device)", "matchedStatuses": ["broken", "failed"],
     "messageRegex": r"(?s).*(BenchFailure|CloudError|FaultInjectionError|ConfigError|MediaError|RelayError).*"},
    {"name": "Needs an operator", "matchedStatuses": ["broken", "failed", "skipped"],
     "messageRegex": r"(?s).*OperatorUnavailable.*"},
]


def allure_config(output: Path, name: str = "C2C certification") -> str:
    """allurerc.mjs content: awesome plugin as one self-contained HTML file."""
    return ("export default " + json.dumps({
        "name": name, "output": str(output),
        "plugins": {"awesome": {"options": {"singleFile": True, "reportLanguage": "en"}}},
    }, indent=2) + ";\n")


def write_allure_extras(results_dir: Path) -> None:
    """environment.properties and categories.json beside the results."""
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "categories.json").write_text(json.dumps(CATEGORIES, indent=2), encoding="utf-8")
    cert = results_dir.parent / "certificate.json"
    env = {"bench": "c2c-bench"}
    if cert.exists():
        data = json.loads(cert.read_text(encoding="utf-8"))
        dev = data.get("device", {})
        env.update({"device": str(dev.get("id")), "firmware": str(dev.get("firmware")), "kind": str(dev.get("kind")),
                    "seed": str(data.get("run", {}).get("seed"))})
    (results_dir / "environment.properties").write_text(
        "".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")


def build_allure_report(reports: Path, allure: Path, *, timeout: float = 300) -> Path:
    """Run `allure generate` into reports/html; returns the index.html path."""
    results = reports / "allure-results"
    if not results.is_dir() or not any(results.iterdir()):
        raise ConfigError(f"reports: no Allure results in {results}; run `c2c-certify run` first")
    if not allure.exists():
        raise ConfigError(f"--allure: Allure 3 CLI not found at {allure} (make installs it under .cache/node)")
    write_allure_extras(results)
    out = reports / "html"
    config = reports / "allurerc.mjs"
    config.write_text(allure_config(out), encoding="utf-8")
    env = {**os.environ, "ALLURE_NO_ANALYTICS": "true"}
    done = subprocess.run([str(allure.absolute()), "generate", str(results), "-c", str(config)], cwd=reports, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise ConfigError(f"allure generate failed ({done.returncode}): {done.stderr[-1000:]}")
    index = out / "index.html"
    if not index.exists():
        raise ConfigError(f"allure generate wrote no {index}: {done.stdout[-500:]}")
    return index

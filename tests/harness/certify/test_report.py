"""`c2c-certify report`: the Allure CLI is found whatever the caller's working directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.certify.cli import main

FAKE_ALLURE = """#!/bin/sh
# stands in for the Allure 3 CLI: runs in the reports directory, writes html/index.html there
[ "$1" = generate ] || exit 3
mkdir -p html && echo "<html>report of $2</html>" > html/index.html
"""


def test_relative_allure_path_works_from_the_repo_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`make report` passes .cache/node/node_modules/.bin/allure, relative to the caller, not to reports/."""
    tool = tmp_path / "tools" / "allure"
    tool.parent.mkdir()
    tool.write_text(FAKE_ALLURE)
    tool.chmod(0o755)
    reports = tmp_path / "reports"
    (reports / "allure-results").mkdir(parents=True)
    (reports / "allure-results" / "x-result.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--reports", "reports", "--allure", os.path.join("tools", "allure")]) == 0
    index = reports / "html" / "index.html"
    assert index.exists() and str(reports / "allure-results") in index.read_text()
    assert str(index) in capsys.readouterr().out

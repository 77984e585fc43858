"""What a bench process imports at start: the bench launches dozens a certification (each device,
each worker, emulator and link forwarder), so an import nobody uses is paid dozens of times."""

from __future__ import annotations

import subprocess
import sys

import pytest

CLI_ONLY = ("httpx._main", "click")  # httpx's command-line client and what only it needs (pytest loads pygments)


@pytest.mark.parametrize("entry", ["reference_device.cli", "harness.cloud.control", "harness.bdd.plugin"])
def test_no_process_of_ours_loads_httpxs_command_line_client(entry: str) -> None:
    probe = (f"import sys, {entry}, httpx; "
             f"print(sorted(m for m in {CLI_ONLY!r} if sys.modules.get(m) is not None))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", f"{entry} loads {out.stdout.strip()}"


def test_httpx_still_works_and_its_cli_says_why_it_is_absent() -> None:
    probe = ("import harness, httpx; r = httpx.Response(200, text='ok'); assert r.text == 'ok'; "
             "httpx.main()")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "command line client could not run" in out.stdout

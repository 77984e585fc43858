"""The step catalog as `c2c-certify steps` prints it, read from the step library in a child process.

The step library (harness.bdd) sits above certification, so certify does not import it: it
runs `python -m harness.bdd.catalog`, as `c2c-certify run` runs pytest with the bench plugin
named `-p harness.bdd.plugin`. Feature authors' tools import harness.bdd.catalog directly.
"""

from __future__ import annotations

import subprocess
import sys

from harness.errors import BenchFailure

CATALOG_MODULE = "harness.bdd.catalog"
TIMEOUT = 120.0


def render_catalog() -> str:
    """Plain-text catalog: one `Keyword phrase` line and one doc line a step."""
    try:
        done = subprocess.run([sys.executable, "-m", CATALOG_MODULE], capture_output=True,
                              text=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchFailure(f"the step catalog ({CATALOG_MODULE}) did not run: {exc}") from exc
    if done.returncode != 0:
        raise BenchFailure(f"the step catalog ({CATALOG_MODULE}) exited {done.returncode}: "
                           f"{done.stderr.strip()[-500:]}")
    return done.stdout.rstrip("\n")

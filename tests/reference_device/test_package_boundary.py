"""The reference device ships on its own: no module of it may import the harness."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib, pkgutil, sys
import reference_device
for info in pkgutil.walk_packages(reference_device.__path__, "reference_device."):
    if info.name.endswith("__main__"):
        continue
    importlib.import_module(info.name)
leaked = sorted(m for m in sys.modules if m == "harness" or m.startswith("harness."))
print(",".join(leaked))
"""


def test_no_reference_device_module_imports_the_harness() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"reference_device pulls in harness modules: {out.stdout.strip()}"

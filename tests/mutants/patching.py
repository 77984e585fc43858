"""How a seeded defect is applied: the Mutant record and `replace`, shared by every mutant table.

A mutant is a patch applied inside the device process at launch (tests/mutants/launch.py);
the tables (`table.py` and the `*_mutants.py` modules beside it) only list patches.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Mutant:
    name: str
    item: str
    what: str
    target: str  # "module:Attr.attr" that the patch replaces
    patch: Callable[[], None]
    also: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    # pytest -k for the quick (make test) run: one example of a long outline is enough to catch it
    quick_k: str = ""
    # the device the defect is seeded into: "reference" (patched at launch) or "independent" (the
    # stand-in of tests/console_device, built with its own --defect switch through `env`)
    device: str = "reference"
    # the verdict that catches it: "fail (inferred)" for a defect only an inferred expectation
    # (c2c-api.md [INF]) can see; it must never come out plain "fail" (nor pass)
    expect: str = "fail"
    # declarations of the profile the defect makes false: the certificate must list each of them
    # as contradicted (matched as the start of its "declaration", e.g. "capabilities: parallel")
    contradicts: tuple[str, ...] = ()


def _resolve(target: str) -> tuple[Any, str, Any]:
    """(owner, attribute name, current value) for "pkg.module:Class.attr" or "pkg.module:func"."""
    module_name, _, path = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *parents, attr = path.split(".")
    for p in parents:
        owner = getattr(owner, p)
    if not hasattr(owner, attr):
        raise AttributeError(f"mutant target {target} does not exist in reference_device")
    return owner, attr, getattr(owner, attr)


def _import_all() -> None:
    import reference_device

    for info in pkgutil.walk_packages(reference_device.__path__, "reference_device."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except Exception:
            continue


def replace(target: str, factory: Callable[[Any], Any]) -> None:
    """Replace `target` with factory(original) everywhere it was imported by name."""
    _import_all()
    owner, attr, original = _resolve(target)
    new = factory(original)
    setattr(owner, attr, new)
    if callable(original) and not isinstance(owner, type):
        for mod in list(sys.modules.values()):
            if getattr(mod, "__name__", "").startswith("reference_device") and getattr(mod, attr, None) is original:
                setattr(mod, attr, new)


def state_dir(self: Any) -> Path:
    cfg = getattr(self, "config", None)
    return Path(getattr(cfg, "state_dir", os.environ.get("TMPDIR", "/tmp")))

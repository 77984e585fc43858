"""Media faults: a captured file damaged, removed, locked, renamed or growing."""

from __future__ import annotations

from pathlib import Path

from harness.errors import ConfigError
from harness.faults.vocabulary.language import Fault, StartFn, register
from harness.faults.vocabulary.targets import FaultTargets

MEDIA_CORRUPTIONS = ("truncate", "bitflip", "zero-length", "header-damage", "vanish",
                     "permission-denied", "grow", "rename")


def _corrupt(how: str) -> StartFn:
    def start(t: FaultTargets, f: Fault) -> None:
        media = t.media_for(f)
        path = f.params.get("path", t.media_path)
        if path is None:
            raise ConfigError(f"fault {f} needs path= (or FaultTargets.media_path)")
        media.corrupt(Path(path), how.replace("-", "_"))

    return start


for _how in MEDIA_CORRUPTIONS:
    register("media", _how)(_corrupt(_how))

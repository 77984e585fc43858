"""Launch a device with one seeded defect: `python -m tests.mutants.launch NAME -- ARGS`.

ARGS are the device's own arguments (the reference's `run --config FILE`, or the console
stand-in's `--api ... --state ...`). For the reference device the patch is applied in this
process before reference_device.cli.main runs, so reference_device/ stays clean; a console
mutant (`device="independent"`) is the stand-in's own defective build, chosen by its env.
An unknown mutant or a patch target that no longer exists exits with status 3 and a
message naming it: a broken mutant must never look like a passing device.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        print("usage: python -m tests.mutants.launch MUTANT -- <reference device args>", file=sys.stderr)
        return 2
    name, rest = args[0], args[1:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    from tests.mutants.table import get_mutant

    try:
        mutant = get_mutant(name)
    except KeyError as exc:
        print(f"mutant launcher: {exc}", file=sys.stderr)
        return 3
    os.environ.update(mutant.env)
    if "--config" in rest:
        config = Path(rest[rest.index("--config") + 1]).resolve()
        os.environ.setdefault("C2C_MUTANT_DIR", str(config.parent))
    try:
        mutant.patch()
    except (AttributeError, ImportError) as exc:
        print(f"mutant launcher: {name}: cannot patch {mutant.target}: {exc}", file=sys.stderr)
        return 3
    print(f"mutant launcher: running {mutant.device} device with defect {name!r} ({mutant.what})", file=sys.stderr,
          flush=True)
    if mutant.device == "independent":
        from tests.console_device.device import main as console_main

        return int(console_main(rest) or 0)
    from reference_device.cli import main as device_main

    return int(device_main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())

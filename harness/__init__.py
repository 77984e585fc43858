"""c2c-bench certification harness: cloud emulator oracle, fault injectors, device drivers."""

import sys

# httpx imports its command-line client (click, rich, pygments) whenever they are installed:
# ~0.1 s of CPU in every process that imports httpx, and the bench starts many (each device
# launch, each worker). No process of ours runs that client, so its module is marked absent
# (a documented import-system switch: httpx then defines a `main` that explains itself).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

__version__ = "0.1.0"

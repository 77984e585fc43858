"""Check, in a fresh interpreter, that a mutant's patch accepts every call its target accepts.

`python -m tests.mutants.signature_check NAME` exits 1 naming the parameter the patched callable
no longer takes. A wrapper that drops one (logs-token's `accept(self, answer)` refused the
`refresh_count` every token refresh passes) is a second defect: the device failed refresh items
the mutant never meant to break, found only by the full matrix.
"""

from __future__ import annotations

import inspect
import sys

from tests.mutants.patching import _import_all, _resolve
from tests.mutants.table import get_mutant


def lost_parameters(name: str) -> list[str]:
    mutant = get_mutant(name)
    if mutant.device != "reference" or ":" not in mutant.target or "--" in mutant.target:
        return []
    _import_all()
    *_, before = _resolve(mutant.target)
    mutant.patch()
    *_, after = _resolve(mutant.target)
    if not callable(before) or not callable(after) or after is before:
        return []
    try:
        wanted, given = inspect.signature(before), inspect.signature(after)
    except (TypeError, ValueError):
        return []
    takes_any_kw = any(p.kind is p.VAR_KEYWORD for p in given.parameters.values())
    takes_any_pos = any(p.kind is p.VAR_POSITIONAL for p in given.parameters.values())
    lost = []
    for p in wanted.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in given.parameters:
            continue
        if p.kind is p.KEYWORD_ONLY and takes_any_kw:
            continue
        if p.kind is p.POSITIONAL_OR_KEYWORD and takes_any_pos and takes_any_kw:
            continue
        if p.kind is p.POSITIONAL_ONLY and takes_any_pos:
            continue
        lost.append(p.name)
    return lost


if __name__ == "__main__":
    missing = lost_parameters(sys.argv[1])
    if missing:
        print(f"{sys.argv[1]}: the patch no longer takes {missing} of {get_mutant(sys.argv[1]).target}")
        raise SystemExit(1)

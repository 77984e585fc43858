"""Malformed-answer faults (`http:garble-KIND`): mitmproxy answers in the cloud's place or spoils its JSON.

The garbling itself lives with its mitmproxy addon (harness.faults.http.garble); this module
only names it in the vocabulary, so every caller, not only the hostile-answer steps, knows them.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.faults.http.garble import GARBLE_KINDS, garble_fault
from harness.faults.vocabulary.language import Fault, register
from harness.faults.vocabulary.targets import FaultTargets


def _start(kind: str) -> Callable[[FaultTargets, Fault], Callable[[], None]]:
    def start(t: FaultTargets, f: Fault) -> Callable[[], None]:
        return garble_fault(t.http_for(f), kind, dict(f.params))

    return start


for _kind in GARBLE_KINDS:
    register("http", f"garble-{_kind}")(_start(_kind))

"""Malformed-answer faults (`http:garble-KIND`): mitmproxy answers in the cloud's place or spoils its JSON.

The start functions live with the garbling addon (harness.faults.http.garble); this module
puts them in the vocabulary so every caller, not only the hostile-answer steps, knows them.
"""

from __future__ import annotations

from harness.faults.http.garble import VOCABULARY_STARTS
from harness.faults.vocabulary.language import register

for _name, _start in VOCABULARY_STARTS.items():
    register("http", _name)(_start)

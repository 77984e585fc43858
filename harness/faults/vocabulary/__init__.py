"""One fault vocabulary across every layer (see `language` for how a fault is written).

`language` parses `LAYER:NAME [modifiers]` into a `Fault` and holds the registry of known
faults; `targets` names what faults act on; `running` applies one (`inject`, `active`,
`ActiveFault`); one module a layer registers its faults: `network`, `power`, `cloud` (auth
and cloud state), `rules` (error answers from the emulator or mitmproxy), `garble` (malformed answers from
mitmproxy), `tls`, `media`.
"""

from harness.faults.vocabulary import cloud, garble, media, network, power, rules, tls
from harness.faults.vocabulary.language import (
    LAYERS,
    REGISTRY,
    RULE_PREFIXES,
    Fault,
    StartFn,
    StopFn,
    register,
)
from harness.faults.vocabulary.media import MEDIA_CORRUPTIONS
from harness.faults.vocabulary.running import ActiveFault, active, inject
from harness.faults.vocabulary.targets import FaultTargets, HttpErrors, TlsPath

LAYER_MODULES = (network, power, cloud, rules, garble, tls, media)
"""Imported for their registrations: every fault is known once the package is imported."""

__all__ = [
    "LAYERS", "LAYER_MODULES", "MEDIA_CORRUPTIONS", "REGISTRY", "RULE_PREFIXES", "ActiveFault",
    "Fault", "FaultTargets", "HttpErrors", "StartFn", "StopFn", "TlsPath", "active", "inject",
    "register",
]

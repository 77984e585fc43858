"""Network (TCP) faults through the Toxiproxy v2 API: our compatible server, a client,
named profiles and `NetworkLink` (the `harness.protocols.Network` implementation)."""

from __future__ import annotations

import logging

from harness.faults.network.client import (
    ToxiproxyClient,
    ToxiproxyProcess,
    find_toxiproxy_server,
    launch_toxiproxy,
)
from harness.faults.network.link import NetworkLink
from harness.faults.network.profiles import PROFILES, NetworkProfile, Phase, ToxicSpec
from harness.faults.network.server import ToxiproxyServer

# A library stays quiet unless the application configures logging (the CLI does).
logging.getLogger(__name__).addHandler(logging.NullHandler())


__all__ = [
    "PROFILES",
    "NetworkLink",
    "NetworkProfile",
    "Phase",
    "ToxicSpec",
    "ToxiproxyClient",
    "ToxiproxyProcess",
    "ToxiproxyServer",
    "find_toxiproxy_server",
    "launch_toxiproxy",
]

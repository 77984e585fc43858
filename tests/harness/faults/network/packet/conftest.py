"""Packet-level link tests need root, /dev/net/tun and network namespaces (CI runs as root)."""

from __future__ import annotations

import pytest

from harness.faults.network.packet import packet_links_available

_REASON = packet_links_available()

needs_packet_links = pytest.mark.skipif(_REASON is not None, reason=f"packet-level links unavailable: {_REASON}")

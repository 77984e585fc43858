"""Packet-level links (issue #22): the device in a network namespace, its packets through a
user-space forwarder with Mahimahi semantics (trace or rate, one-way delay, drop-tail queue,
seeded random loss, outages, link down), so the kernel's own TCP meets a field-like link."""

from harness.faults.network.packet.link import PacketLink, packet_links_available
from harness.faults.network.packet.spec import (
    DirectionSpec,
    LinkSpec,
    Outage,
    constant_trace,
    load_mahimahi_trace,
    parse_mahimahi_trace,
)

__all__ = [
    "DirectionSpec",
    "LinkSpec",
    "Outage",
    "PacketLink",
    "constant_trace",
    "load_mahimahi_trace",
    "packet_links_available",
    "parse_mahimahi_trace",
]

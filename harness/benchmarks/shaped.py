"""The reference device on shaped links: throughput per named network profile vs its rate.

Why: on a real set the uplink, not the loopback, is the limit, and a device that wastes a
round trip between parts or cannot fill a long fat pipe leaves part of a paid-for link
idle. Issue #12's goal is >= 0.95 of the shaped rate. Each profile of
harness/faults/network/profiles.py with a steady link (rate x RTT, jitter) is applied to
the proxy in front of the emulator, and the device uploads a file sized to take about
`seconds` at that rate; MB/s is the emulator's (asset created -> last byte stored).

Toxiproxy's bandwidth toxic is per connection (Go's semantics), so four parallel parts would
get four times a profile's rate. The uplink a set shares is modelled by the emulator's
`serial_ingest_rate` as well: part bodies are taken one at a time at the profile's rate, in
arrival order, so the device's connections together get the rate, as on a real uplink.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.benchmarks import machine_params, result, write_report
from harness.benchmarks.device import device_upload, make_file, paired_device
from harness.benchmarks.peers import LINK, bench_link
from harness.faults.network.profiles import get_profile

__all__ = ["ShapedConfig", "run", "shaped_rate"]

MIB = 1024 * 1024
MB = 1_000_000
TARGET_VS_SHAPED = 0.95


@dataclass(frozen=True)
class ShapedConfig:
    """Profiles to measure and how long each upload should take at the profile's rate."""

    profiles: tuple[str, ...] = ("hardline", "bonded-cellular", "cellular", "hotspot")
    seconds: float = 12.0
    max_size: int = 256 * MIB  # hardline's 125 MB/s x seconds would be 1.5 GB
    parallelism: int = 4
    timeout: float = 600.0


def shaped_rate(profile: str) -> tuple[float, int]:
    """(upstream MB/s, RTT ms) of a profile: its upstream bandwidth and latency toxics."""
    rate_kbs = 0
    rtt = 0
    for spec in get_profile(profile).toxics:
        if spec.type == "bandwidth" and spec.stream == "upstream":
            rate_kbs = spec.attributes["rate"]
        if spec.type == "latency":
            rtt += spec.attributes.get("latency", 0)
    return rate_kbs * 1000 / MB, rtt


def measure(config: ShapedConfig, tmp: Path) -> list[dict[str, Any]]:
    """One device, one link: the file for each profile, uploaded with the profile applied."""
    results = []
    with bench_link(tmp) as bench, paired_device(bench.emu, bench.project_id, tmp,
                                                 config.parallelism,
                                                 bench.link.device_api_url) as device:
        control = bench.emu.control
        assert control is not None
        for index, name in enumerate(config.profiles):
            rate, rtt = shaped_rate(name)
            size = min(config.max_size, max(MIB, int(rate * MB * config.seconds)))
            source = tmp / "staging" / f"S{index:03d}_C001.mxf"
            digest = make_file(source, size)
            bench.link.apply_profile(name)
            control.update_settings(serial_ingest_rate=int(rate * MB))
            mine = device_upload(bench.emu, device, source, tmp / "media", size, digest,
                                 config.timeout)
            ratio = mine["mbps"] / rate if rate else 0.0
            results.append(result(
                "throughput_MBps", round(mine["mbps"], 3), "MB/s", profile=name, rtt_ms=rtt,
                shaped_MBps=rate, vs_shaped=round(ratio, 3), target_vs_shaped=TARGET_VS_SHAPED,
                meets_target=ratio >= TARGET_VS_SHAPED, file_bytes=size, parts=mine["parts"],
                parallelism=config.parallelism, peer="reference_device", link=LINK,
                shared_rate="emulator serial_ingest_rate = the profile's upstream rate",
                **machine_params()))
        bench.link.clear()
        control.update_settings(serial_ingest_rate=0)
    return results


def run(out_dir: Path, config: ShapedConfig | None = None) -> dict[str, Any]:
    """Measure the device per profile; write `<out_dir>/shaped.json`."""
    with tempfile.TemporaryDirectory(prefix="c2c-bench-shaped-") as tmp:
        results = measure(config or ShapedConfig(), Path(tmp))
    return write_report(out_dir, "shaped", results)

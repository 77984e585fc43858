"""Packet-level link benchmark (issue #22): what each field profile gives TCP, and the device.

Per profile of harness.faults.network.packet.profiles: the trace's mean capacity, bulk TCP
goodput of 1 and 4 flows (`link_goodput_MBps`, params.profile / params.flows /
params.congestion_control: the namespace's loss-based default, CUBIC or Reno, and the host's BBR), the RTT under load, the forwarder's CPU per Mbit it
carried; and the reference device (a real process in the link's namespace, real TLS, through
the fault proxy to the emulator, as in a certification) uploading one file, its throughput as
a ratio of the capacity the trace offered over the same seconds, with its default
parallelism and with one part at a time (what `mutant:no-parallel` does); each upload's goodput
against the trace's capacity second by second is drawn beside links.json
(`links-<profile>-p<parallelism>.svg`, harness.faults.network.packet.plot).

Every trace restarts from its beginning for each measurement (the spec is re-applied), so
flows and devices meet the same stretch of the recording. Nothing is asserted; figures depend
on the machine (params carry cpus and load).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.benchmarks import machine_params, result, write_report
from harness.cloud.runner import EmulatorProcess
from harness.errors import DeliveryFailure, DeviceTimeout
from harness.faults.network.packet.flows import run_bulk_flows
from harness.faults.network.packet.network import PacketNetwork
from harness.faults.network.packet.profiles import LINK_PROFILES, LinkProfile

MB = 1e6
FLOW_SECONDS = 14.0
FLOW_WARMUP_S = 4.0
DEVICE_SECONDS = 20.0  # the device's file is about this many seconds of the profile's capacity
DEVICE_TIMEOUT_S = 300.0


def _flows(network: PacketNetwork, profile: LinkProfile, flows: int, cc: str | None) -> dict[str, Any]:
    before = network.stats()
    network.apply_profile(profile.name)
    applied = time.monotonic()
    report = run_bulk_flows(network.link, flows=flows, seconds=FLOW_SECONDS, warmup_s=FLOW_WARMUP_S,
                            congestion_control=cc)
    after = network.stats()
    start = float(report["first_byte_at"]) - applied + FLOW_WARMUP_S
    carried_mbit = sum(after[d]["delivered_bytes"] - before[d]["delivered_bytes"] for d in ("up", "down")) * 8 / MB
    return {
        "goodput_mbps": float(report["goodput_bps"]) / MB,
        "capacity_mbps": profile.offered_mbps(start, start + FLOW_SECONDS - FLOW_WARMUP_S),
        "rtt_loaded_ms": report["rtt_loaded_ms"],
        "cpu_s_per_mbit": (after["cpu_s"] - before["cpu_s"]) / carried_mbit if carried_mbit else None,
    }


def _device_upload(network: PacketNetwork, emu: EmulatorProcess, profile: LinkProfile, tmp: Path,
                   parallelism: int | None) -> dict[str, Any]:
    """The reference device in the namespace uploads one file; bytes over the ledger's time."""
    from reference_device.testing import write_config

    assert emu.control is not None
    tag = f"{profile.name}-p{parallelism or 'default'}"
    media, state = tmp / f"media-{tag}", tmp / f"state-{tag}"
    media.mkdir()
    state.mkdir()
    size = int(min(64, max(4, profile.capacity_mbps * DEVICE_SECONDS / 8)) * MB)
    config = write_config(tmp / f"{tag}.toml", {
        "state_dir": str(state), "api_url": network.device_api_url, "ca_bundle": str(emu.ca_bundle),
        "media_dirs": [str(media)], "name": "LINKS-BENCH", "firmware_version": "1.0.0", "status_port": 0,
        "status_file": str(state / "status.json"), "scan_interval": 0.2, "quiet_period": 0.5,
        **({"parallelism": parallelism} if parallelism else {}),
    })
    network.apply_profile("hardline")  # pairing on a clean link: only the upload is measured on the profile
    env = {**os.environ, "C2C_CLIENT_SECRET": emu.control.client_secret()}
    with open(state / "process.out", "ab") as out:
        device = network.link.popen_in_namespace(
            [sys.executable, "-m", "reference_device", "run", "--config", str(config)],
            env=env, stdout=out, stderr=out, stdin=None)
    try:
        project = emu.control.create_project(f"links {tag}")
        status = state / "status.json"
        code = _poll(lambda: _status(status, "pairing").get("user_code"), 60, "a pairing code", device)
        emu.control.approve(str(code), project["id"])
        _poll(lambda: _status(status, "token").get("state") == "valid", 60, "the device to pair", device)
        network.apply_profile(profile.name)
        applied_wall = time.time()
        staging = tmp / f"{tag}.mxf"  # no structural check: random bytes are a valid clip
        with open(staging, "wb") as fh:
            fh.write(os.urandom(size))
        os.replace(staging, media / staging.name)
        row = _poll(lambda: next((r for r in emu.control.ledger() if r.get("name") == staging.name
                                  and r.get("state") == "complete"), None) if emu.control else None,
                    DEVICE_TIMEOUT_S, f"{size} bytes on {profile.name}", device)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(device.pid, signal.SIGKILL)  # started in its own session
        device.wait(10)
    if row.get("filesize") != size:
        raise DeliveryFailure(f"links benchmark: ledger shows {row.get('filesize')} B of {size}")
    created, completed = float(row["created_at"]), float(row["completed_at"])
    seconds = max(1e-6, completed - created)
    capacity = profile.offered_mbps(created - applied_wall, completed - applied_wall)
    mbps = size * 8 / seconds / MB
    plot = network.capacity_plot(created, completed, note=f"device ({tag}): {mbps:.2f} of {capacity:.2f} Mbit/s "
                                 f"offered = {mbps / capacity:.0%}" if capacity else "")
    return {"mbps": mbps, "capacity_mbps": capacity, "seconds": seconds, "bytes": size,
            "parallelism": parallelism or "default",
            "svg": plot.svg(f"reference device on {profile.name}, parallelism {parallelism or 'default'}") if plot else ""}


def _status(path: Path, section: str) -> dict[str, Any]:
    """One section of the device's status file ({} while it is not written yet or half written)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    found = data.get(section) if isinstance(data, dict) else None
    return found if isinstance(found, dict) else {}


def _poll(check: Any, timeout: float, what: str, device: Any) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if device.poll() is not None:
            raise DeviceTimeout(f"links benchmark: the device exited while waiting for {what}")
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise DeviceTimeout(f"links benchmark: no {what} within {timeout:.0f} s")


def run(out_dir: Path, *, profiles: tuple[str, ...] = tuple(LINK_PROFILES), device: bool = True) -> dict[str, Any]:
    """Measure every profile, write `<out_dir>/links.json`, return the report."""
    results: list[dict[str, Any]] = []
    machine = machine_params()
    with tempfile.TemporaryDirectory(prefix="c2c-bench-links-") as tmp_s:
        tmp = Path(tmp_s)
        with (EmulatorProcess(tmp / "cloud", settings={"device_code_interval": 1}) as emu,
              PacketNetwork(urlsplit(emu.api_url).netloc) as network):
            for name in profiles:
                profile = LINK_PROFILES[name]
                base = {"profile": name, "trace": "+".join(profile.traces) or None,
                        "rtt_ms": 2 * profile.one_way_delay_ms, "loss": profile.loss,
                        "queue_packets": profile.queue_packets, **machine}
                results.append(result("link_capacity_Mbps", round(profile.capacity_mbps, 2), "Mbit/s", **base))
                for cc in (None, "bbr"):  # the namespace's loss-based default, the host's BBR
                    for flows in (1, 4):
                        m = _flows(network, profile, flows, cc)
                        params = {**base, "flows": flows,
                                  "congestion_control": cc or network.congestion_control,
                                  "window_capacity_Mbps": round(m["capacity_mbps"], 2)}
                        results.append(result("link_goodput_MBps", round(m["goodput_mbps"] / 8, 3), "MB/s",
                                              **params))
                        if m["rtt_loaded_ms"] is not None:
                            results.append(result("link_rtt_loaded_ms", round(float(m["rtt_loaded_ms"]), 1),
                                                  "ms", **params))
                        if m["cpu_s_per_mbit"] is not None:
                            results.append(result("forwarder_cpu_ms_per_Mbit",
                                                  round(1000 * m["cpu_s_per_mbit"], 3), "ms", **params))
                if not device:
                    continue
                for parallelism in (None, 1):
                    d = _device_upload(network, emu, profile, tmp, parallelism)
                    if d["svg"]:  # throughput vs the trace's capacity, beside links.json
                        out_dir.mkdir(parents=True, exist_ok=True)
                        (out_dir / f"links-{name}-p{d['parallelism']}.svg").write_text(d["svg"], encoding="utf-8")
                    params = {**base, "parallelism": d["parallelism"], "file_bytes": d["bytes"],
                              "seconds": round(d["seconds"], 2), "throughput_Mbps": round(d["mbps"], 2),
                              "window_capacity_Mbps": round(d["capacity_mbps"], 2),
                              "congestion_control": network.congestion_control}
                    ratio = d["mbps"] / d["capacity_mbps"] if d["capacity_mbps"] else 0.0
                    results.append(result("device_vs_capacity", round(ratio, 3), "ratio", **params))
    return write_report(out_dir, "links", results)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    parser.add_argument("--profile", action="append", choices=sorted(LINK_PROFILES))
    parser.add_argument("--no-device", action="store_true")
    args = parser.parse_args()

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM tears the namespace and the device down like Ctrl-C
    signal.signal(signal.SIGTERM, interrupted)
    report = run(args.out, profiles=tuple(args.profile or LINK_PROFILES), device=not args.no_device)
    for row in report["results"]:
        print(row["name"], row["value"], row["unit"], {k: v for k, v in row["params"].items()
                                                      if k in ("profile", "flows", "congestion_control", "parallelism")})

"""The reference device against what integrators would otherwise copy, on the same links.

Why: a device that only beats raw PUTs on loopback says little; issue #12 asks for it
beside Frame.io's legacy Python uploader (`frameioclient`'s FrameioUploader: five threads,
each part read whole into memory, a `requests` session per thread) and a naive httpx loop
(one part after another, each read whole), same bytes, same part URLs, at 0 / 50 / 120 ms
RTT. Every uploader runs as its own process and goes through the same Toxiproxy proxy (our
server, its own process) with a latency toxic of half the RTT each way; every time is the
emulator's (asset created -> last byte stored), every delivery checked by SHA-256.

The peers are run by this module as a child: `python -m harness.benchmarks.peers PEER
--file F` reads the asset (upload URLs) as one JSON line on stdin, uploads, exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.benchmarks import machine_params, result, write_report
from harness.benchmarks.cloud import cpu_seconds
from harness.benchmarks.device import (
    FILETYPE,
    _check_delivery,
    _elapsed,
    _ledger_row,
    _poll,
    _token,
    device_upload,
    make_file,
    paired_device,
)
from harness.benchmarks.rawclient import _QUERY
from harness.cloud.runner import EmulatorProcess
from harness.errors import BenchFailure, CloudError
from harness.faults.network.client import ToxiproxyProcess, our_server_command
from harness.faults.network.link import NetworkLink
from harness.faults.network.profiles import NetworkProfile, ToxicSpec
from harness.tls import ssl_context

__all__ = ["PEERS", "PeersConfig", "bench_link", "evict_page_cache", "latency_profile", "run"]

MIB = 1024 * 1024
MB = 1_000_000
CLIENT_VERSION = "1.0.0"
PEERS = ("frameioclient", "httpx-naive")
TARGET_VS_FRAMEIOCLIENT = 2.0  # at 50 ms RTT
LINK = "Toxiproxy (ours, own process), latency toxic RTT/2 each way"
CPU_LINE = "upload cpu_s "
"""How a peer child reports the CPU seconds its upload took (user + system)."""


@dataclass(frozen=True)
class PeersConfig:
    """RTTs to measure, the file every uploader sends, and the device's part parallelism."""

    rtts_ms: tuple[int, ...] = (0, 50, 120)
    file_size: int = 128 * MIB
    parallelism: int = 4
    part_size: int = 8 * MIB  # the device's default; peers get the same part URLs count
    timeout: float = 600.0
    # a camera's stills: many one-part files at once (0 = no burst point)
    burst_files: int = 16
    burst_file_size: int = 8 * MIB


def latency_profile(rtt_ms: int) -> NetworkProfile:
    """Only latency: `rtt_ms` split over the two directions (no bandwidth cap, no jitter)."""
    if rtt_ms <= 0:
        return NetworkProfile("rtt-0ms", "no toxics")
    half = rtt_ms // 2
    return NetworkProfile(f"rtt-{rtt_ms}ms", f"{rtt_ms} ms RTT, unshaped", (
        ToxicSpec("latency", "upstream", {"latency": half, "jitter": 0}),
        ToxicSpec("latency", "downstream", {"latency": rtt_ms - half, "jitter": 0}),
    ))


@dataclass
class Bench:
    """One emulator, one project, one proxied link to it."""

    emu: EmulatorProcess
    project_id: str
    link: NetworkLink
    tmp: Path


@contextlib.contextmanager
def bench_link(tmp: Path) -> Iterator[Bench]:
    """An emulator and a Toxiproxy link in front of it, each its own process."""
    with EmulatorProcess(tmp / "cloud", settings={"device_code_interval": 1}) as emu, \
            ToxiproxyProcess(our_server_command()) as proxy:
        assert emu.control is not None
        project = emu.control.create_project("Peers benchmark")
        upstream = emu.api_url.split("://", 1)[1]
        link = NetworkLink(upstream, api_url=proxy.api_url, name="bench_c2c")
        try:
            yield Bench(emu, str(project["id"]), link, tmp)
        finally:
            link.close()


# -- the peers, as children --------------------------------------------------------------------
class PeerProcess:
    """A peer uploader started ahead (imports done), waiting for its asset on stdin."""

    def __init__(self, peer: str, path: Path, ca_bundle: Path) -> None:
        env = dict(os.environ, REQUESTS_CA_BUNDLE=str(ca_bundle), SSL_CERT_FILE=str(ca_bundle))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.benchmarks.peers", peer, "--file", str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
            cwd=str(Path(__file__).resolve().parents[2]))
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "ready": imports done, the clock may start
        if line.strip() != b"ready":
            self.proc.kill()
            raise BenchFailure(f"peer {peer} did not start: {line[:300]!r}")

    def upload(self, asset: dict[str, Any], timeout: float) -> str:
        """Hand over the asset and wait; returns the child's output (its errors, if any)."""
        out, _ = self.proc.communicate(json.dumps(asset).encode() + b"\n", timeout=timeout)
        # A peer's error names the part URL: its query string carries the signature.
        return _QUERY.sub("?[redacted]", out.decode("utf-8", "replace"))[-500:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _upload_frameioclient(asset: dict[str, Any], path: Path) -> None:
    from frameioclient.lib.upload import FrameioUploader  # type: ignore[import-untyped]

    with open(path, "rb") as fh:
        FrameioUploader(asset, fh).upload()


def _upload_httpx_naive(asset: dict[str, Any], path: Path) -> None:
    urls: list[str] = asset["upload_urls"]
    chunk = math.ceil(asset["filesize"] / len(urls))
    with httpx.Client(verify=ssl_context(Path(os.environ["SSL_CERT_FILE"])), timeout=600) as http, \
            open(path, "rb") as fh:
        for url in urls:
            body = fh.read(chunk)
            answer = http.put(url, content=body, headers={
                "content-type": asset["filetype"], "x-amz-acl": "private"})
            answer.raise_for_status()


def child_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.benchmarks.peers")
    parser.add_argument("peer", choices=PEERS)
    parser.add_argument("--file", type=Path, required=True)
    args = parser.parse_args(argv)
    upload = _upload_frameioclient if args.peer == "frameioclient" else _upload_httpx_naive
    if args.peer == "frameioclient":
        import frameioclient.lib.upload  # type: ignore[import-untyped]  # noqa: F401 - before the clock
    print("ready", flush=True)
    asset = json.loads(sys.stdin.readline())
    before = _own_cpu_seconds()
    upload(asset, args.file)
    print(f"{CPU_LINE}{_own_cpu_seconds() - before:.4f}", flush=True)
    return 0


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_from_output(output: str) -> float | None:
    """The CPU seconds a peer child reported for its upload (its last CPU_LINE), if any."""
    for line in reversed(output.splitlines()):
        if line.startswith(CPU_LINE):
            try:
                return float(line[len(CPU_LINE):])
            except ValueError:
                return None
    return None


# -- measuring ---------------------------------------------------------------------------------
def evict_page_cache(path: Path) -> None:
    """Drop `path`'s clean pages from the page cache, so the next reader reads it cold.

    Why: the device's file is made fresh for each point (never read, so not cached), while
    the peers share one file; without this the first peer read it cold and every later one
    from the cache, and on this VM a cold read costs the reader's kernel up to 3 s/GB."""
    if sys.platform == "linux":
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def peer_upload(bench: Bench, peer: str, source: Path, size: int, digest: str, parts: int,
                timeout: float, tag: str) -> dict[str, Any]:
    """One peer uploads `source` through the link: MB/s created -> stored (emulator clock),
    and CPU seconds per GB of the peer and of the emulator meanwhile.

    Why the CPU: on a 2-core bench the uploader and the emulator share the cores, so an
    uploader that spends more CPU per byte leaves the emulator less; CPU per GB is the
    figure that does not depend on how loaded the machine was."""
    name = f"{peer.upper().replace('-', '_')}_{tag}_{source.name}"
    child = PeerProcess(peer, source, bench.emu.ca_bundle)
    try:
        verify = ssl_context(bench.emu.ca_bundle)
        with httpx.Client(base_url=bench.link.device_api_url, verify=verify, timeout=60) as http:
            token = _token(http, bench.emu, bench.project_id)
            created = http.post("/v2/devices/assets", headers={
                "authorization": f"Bearer {token}", "x-client-version": CLIENT_VERSION},
                json={"name": name, "filetype": FILETYPE, "filesize": size, "offset": 0,
                      "parts": parts})
        if created.status_code != 200:
            raise CloudError(f"asset create for {peer} failed: HTTP {created.status_code}")
        assert bench.emu.proc is not None
        cloud_before = cpu_seconds(bench.emu.proc.pid)
        t0 = time.monotonic()
        output = child.upload({"filesize": size, "filetype": FILETYPE,
                               "upload_urls": created.json()["upload_urls"]}, timeout)
        wall = time.monotonic() - t0
    finally:
        child.kill()
    row = _poll(lambda: (r := _ledger_row(bench.emu, name)) and r.get("state") == "complete" and r,
                30, f"{peer}'s upload to complete in the ledger ({output.strip()[-200:]})")
    cloud_cpu = cpu_seconds(bench.emu.proc.pid) - cloud_before
    _check_delivery(row, size, digest, peer)
    peer_cpu = cpu_from_output(output)
    gigabytes = size / 1e9
    return {"mbps": size / _elapsed(row, wall) / MB,
            "cpu_s_per_GB": round(peer_cpu / gigabytes, 2) if peer_cpu is not None else None,
            "emulator_cpu_s_per_GB": round(cloud_cpu / gigabytes, 2)}


def device_burst(bench: Bench, staging: Path, media: Path, config: PeersConfig,
                 tag: str) -> dict[str, Any]:
    """`burst_files` one-part files dropped at once; MB/s from the first asset created to the
    last stored (emulator clock). Why: a file's last wave of parts used to leave slots idle
    until the next file was claimed and created, which one large file never shows."""
    names = [f"B{tag}_{i:03d}.mxf" for i in range(config.burst_files)]
    digests = {name: make_file(staging / name, config.burst_file_size) for name in names}
    for name in names:
        os.replace(staging / name, media / name)
    assert bench.emu.control is not None
    control = bench.emu.control

    def landed() -> list[dict[str, Any]] | None:
        rows = [r for r in control.ledger() if r.get("name") in digests]
        done = [r for r in rows if r.get("state") == "complete"]
        return done if len(done) == len(names) else None

    rows = _poll(landed, config.timeout, f"{len(names)} burst files to arrive", 0.25)
    for row in rows:
        _check_delivery(row, config.burst_file_size, digests[str(row["name"])], "burst")
    first = min(float(r["created_at"]) for r in rows)
    last = max(float(r["completed_at"]) for r in rows)
    return {"mbps": config.burst_file_size * len(names) / max(1e-6, last - first) / MB,
            "seconds": last - first}


def measure(config: PeersConfig, tmp: Path) -> list[dict[str, Any]]:
    """Device and peers at every RTT on one emulator and link; results in report order."""
    results: list[dict[str, Any]] = []
    size = config.file_size
    staging = tmp / "staging"
    digest = make_file(staging / "probe.mxf", size)
    with bench_link(tmp) as bench, paired_device(bench.emu, bench.project_id, tmp,
                                                 config.parallelism,
                                                 bench.link.device_api_url) as device:
        for index, rtt in enumerate(config.rtts_ms):  # names unique even if an RTT repeats
            bench.link.apply_profile(latency_profile(rtt))
            common = {"rtt_ms": rtt, "file_bytes": size, "link": LINK, **machine_params()}
            source = staging / f"A{index:03d}_R{rtt:03d}.mxf"
            make_file(source, size)
            mine = device_upload(bench.emu, device, source, tmp / "media", size, digest,
                                 config.timeout)
            results.append(result("throughput_MBps", round(mine["mbps"], 2), "MB/s",
                                  peer="reference_device", parts=mine["parts"],
                                  parallelism=config.parallelism,
                                  cpu_s_per_GB=mine["device_cpu_s_per_GB"],
                                  emulator_cpu_s_per_GB=mine["emulator_cpu_s_per_GB"], **common))
            if config.burst_files:
                burst = device_burst(bench, staging, tmp / "media", config, f"{index}_{rtt}")
                results.append(result(
                    "burst_MBps", round(burst["mbps"], 2), "MB/s", peer="reference_device",
                    files=config.burst_files, file_bytes=config.burst_file_size, parts_each=1,
                    parallelism=config.parallelism, rtt_ms=rtt, link=LINK, **machine_params()))
            rates = {}
            for peer in PEERS:
                evict_page_cache(staging / "probe.mxf")  # read cold, as the device's file is
                theirs = peer_upload(bench, peer, staging / "probe.mxf", size, digest,
                                     mine["parts"], config.timeout, f"{index}_{rtt}ms")
                rates[peer] = theirs["mbps"]
                results.append(result("peer_MBps", round(rates[peer], 2), "MB/s", peer=peer,
                                      parts=mine["parts"], cpu_s_per_GB=theirs["cpu_s_per_GB"],
                                      emulator_cpu_s_per_GB=theirs["emulator_cpu_s_per_GB"],
                                      **common))
            ratio = mine["mbps"] / rates["frameioclient"] if rates["frameioclient"] else 0.0
            target = {"target_ratio": TARGET_VS_FRAMEIOCLIENT,
                      "meets_target": ratio >= TARGET_VS_FRAMEIOCLIENT} if rtt == 50 else {}
            results.append(result("device_vs_frameioclient", round(ratio, 3), "ratio",
                                  **target, **common))
    return results


def run(out_dir: Path, config: PeersConfig | None = None) -> dict[str, Any]:
    """Measure device and peers at each RTT; write `<out_dir>/peers.json`."""
    with tempfile.TemporaryDirectory(prefix="c2c-bench-peers-") as tmp:
        results = measure(config or PeersConfig(), Path(tmp))
    return write_report(out_dir, "peers", results)


if __name__ == "__main__":
    sys.exit(child_main())

"""Reference device benchmark: upload throughput against raw PUTs, and peak memory.

Issue 3's targets: a 2 GB file uploads with the device's peak RSS under 100 MB (uploads are
streamed from disk), and the device's throughput is reported next to raw parallel PUTs of
the same bytes to the same emulator in the same run, so the ratio says how much the
device's own machinery costs. The device runs as a real process (`python -m
reference_device run`) over real TLS; the emulator as its own process. Times come from the
emulator's ledger (asset created -> last byte in) for both, so they are measured the same
way. Nothing is asserted: targets are recorded with a `meets_target` flag.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from harness.benchmarks import hostile, machine_params, result, vm_hwm, write_report
from harness.benchmarks.cloud import cpu_seconds
from harness.benchmarks.limit import null_sink
from harness.cloud.ca import ensure_certs
from harness.cloud.runner import EmulatorProcess
from harness.errors import BenchFailure, CloudError, DeliveryFailure, DeviceTimeout
from harness.tls import ssl_context
from reference_device.testing import DeviceProcess

__all__ = ["run"]

GB = 1024**3
MB = 1_000_000
TARGET_RSS_MB = 80.0  # issue 12 (for a 20 GB file; issue 3 had 100 MB for 2 GB)
CLIENT_VERSION = "1.0.0"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FILETYPE = "application/mxf"
_BLOCK = 8 * 1024 * 1024


def run(out_dir: Path, *, file_gb: float = 2.0, parallelism: int = 4,
        timeout: float = 900.0, hostile_path: bool = True,
        sink_file_gb: float | None = 20.0) -> dict[str, Any]:
    """Measure, write `<out_dir>/device.json`, return the report; with `hostile_path`, also
    the device's peak RSS per malformed-answer case (harness.benchmarks.hostile, issue #23);
    with `sink_file_gb`, the device alone against the null TLS sink (`device_to_sink`)."""
    size = int(file_gb * GB)
    with tempfile.TemporaryDirectory(prefix="c2c-bench-device-") as tmp_s:
        tmp = Path(tmp_s)
        with EmulatorProcess(tmp / "cloud", settings={"device_code_interval": 1}) as emu:
            assert emu.control is not None
            project = emu.control.create_project("Device benchmark")
            source = tmp / "staging" / "A001_C001.mxf"
            digest = make_file(source, size)
            device = _measure_device(emu, project["id"], source, size, digest, parallelism,
                                     tmp, timeout)
            raw = _measure_raw_put(emu, project["id"], tmp / "media" / source.name, size, digest,
                                   device["parts"], parallelism, timeout)
    common = {"file_bytes": size, "parts": device["parts"], "parallelism": parallelism,
              "transport": "loopback TLS", **machine_params()}
    results = [
        result("throughput_MBps", round(device["mbps"], 2), "MB/s", **common,
               device_cpu_s_per_GB=device["device_cpu_s_per_GB"],
               emulator_cpu_s_per_GB=device["emulator_cpu_s_per_GB"]),
        result("raw_put_MBps", round(raw["mbps"], 2), "MB/s", **common),
        result("throughput_vs_raw", round(device["mbps"] / raw["mbps"], 3) if raw["mbps"] else 0.0,
               "ratio", **common),
        result("peak_rss_MB", round(device["peak_rss_bytes"] / MB, 1), "MB",
               file_GB=int(file_gb) if float(file_gb).is_integer() else round(file_gb, 3),
               target_MB=TARGET_RSS_MB,
               meets_target=device["peak_rss_bytes"] / MB < TARGET_RSS_MB,
               measured="VmHWM of the device process", **machine_params()),
    ]
    if sink_file_gb:
        results += device_to_sink(sink_file_gb, parallelism, timeout)
    if hostile_path:
        results += hostile.results()
    return write_report(out_dir, "device", results)


def device_to_sink(file_gb: float, parallelism: int, timeout: float) -> list[dict[str, Any]]:
    """The device's own ceiling and its peak RSS for a large file: parts go to the null TLS
    sink (harness.benchmarks.limit), not the emulator.

    Why: through the emulator, the device's MB/s is mostly the emulator's (it hashes twice,
    writes twice and fsyncs every byte); with the part URLs pointing at the sink (emulator
    setting `upload_base_url`, same certificate) the device is the only one that works per
    byte beside TLS, so `device_to_sink_MBps` reads straight against `limit_MBps`, and a
    20 GB file costs no disk. The sink answers every PUT 200 with a non-MD5 ETag, which the
    device accepts; its queue shows the file done when its last part is acknowledged. MB/s is
    wall time from the file appearing to the device's status showing it done (0.2 s polls).
    """
    size = int(file_gb * GB)
    with tempfile.TemporaryDirectory(prefix="c2c-bench-device-sink-") as tmp_s:
        tmp = Path(tmp_s)
        with EmulatorProcess(tmp / "cloud", settings={"device_code_interval": 1}) as emu, \
                null_sink(ensure_certs(tmp / "cloud")) as sink:
            assert emu.control is not None
            project = emu.control.create_project("Device to sink")
            emu.control.update_settings(upload_base_url=f"https://127.0.0.1:{sink.port}")
            source = tmp / "staging" / "A002_C001.mxf"
            source.parent.mkdir(parents=True, exist_ok=True)
            with open(source, "wb") as fh:  # sparse: zeros, no disk; read like any file
                fh.truncate(size)
            with paired_device(emu, project["id"], tmp, parallelism) as device:
                assert device.proc is not None
                pid = device.proc.pid
                cpu_device, cpu_sink = cpu_seconds(pid), cpu_seconds(sink.pid)
                peak = 0
                os.replace(source, tmp / "media" / source.name)
                t0 = time.monotonic()

                def done() -> bool:
                    nonlocal peak
                    peak = max(peak, vm_hwm(pid))
                    status = device.status() or {}
                    return bool(status.get("queue", {}).get("completed", 0) >= 1)

                _poll(done, timeout, f"the device to send {size} bytes to the sink", 0.2,
                      lambda: None if device.is_running() else f"device exited ({device.tail(20)})")
                wall = time.monotonic() - t0
                peak = max(peak, vm_hwm(pid))
                row = _ledger_row(emu, source.name)
                if row is None or int(row.get("bytes_received") or 0) != 0:
                    raise BenchFailure("device to sink: the emulator, not the sink, got part bytes"
                                       f" ({row and row.get('bytes_received')})")
                gigabytes = size / 1e9
                device_cpu = (cpu_seconds(pid) - cpu_device) / gigabytes
                sink_cpu = (cpu_seconds(sink.pid) - cpu_sink) / gigabytes
    label = int(file_gb) if float(file_gb).is_integer() else round(file_gb, 3)
    common = {"file_GB": label, "parallelism": parallelism,
              "transport": "loopback TLS to the null sink (no emulator on the part path)",
              **machine_params()}
    return [
        result("device_to_sink_MBps", round(size / wall / MB, 2), "MB/s", **common,
               device_cpu_s_per_GB=round(device_cpu, 2), sink_cpu_s_per_GB=round(sink_cpu, 2),
               md5_cpu_s_per_GB=md5_cpu_s_per_gb(),
               measured="wall time: file appears -> device status shows it done"),
        result("peak_rss_MB", round(peak / MB, 1), "MB", **common, target_MB=TARGET_RSS_MB,
               meets_target=peak / MB < TARGET_RSS_MB,
               measured="VmHWM of the device process, upload to the null sink"),
    ]


def md5_cpu_s_per_gb(megabytes: int = 256) -> float:
    """CPU seconds one core spends on MD5 per GB here (hashlib, 1 MiB updates, as the device).

    Why: the device checks each part's plain-MD5 ETag against the bytes it sent, so MD5 is a
    floor under `device_cpu_s_per_GB` that no transport change removes; measured in the same
    run, the rest of the device's CPU per GB reads beside it."""
    block = bytes(1024 * 1024)
    digest = hashlib.md5(usedforsecurity=False)
    started = time.process_time()
    for _ in range(megabytes):
        digest.update(block)
    return round((time.process_time() - started) / (megabytes * 1024 * 1024 / 1e9), 2)


# -- the file -------------------------------------------------------------------------------
def make_file(path: Path, size: int) -> str:
    """A sparse file of `size` bytes (zeros: no disk, no time) and its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size)
    h = hashlib.sha256()
    zeros = bytes(_BLOCK)
    left = size
    while left:
        n = min(left, _BLOCK)
        h.update(zeros if n == _BLOCK else zeros[:n])
        left -= n
    return h.hexdigest()


# -- helpers --------------------------------------------------------------------------------
def _poll(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2,
          alive: Callable[[], str | None] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if alive is not None:
            problem = alive()
            if problem:
                raise DeviceTimeout(f"{problem} while waiting for {what}")
        if time.monotonic() > deadline:
            raise DeviceTimeout(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _ledger_row(emu: EmulatorProcess, name: str) -> dict[str, Any] | None:
    assert emu.control is not None
    for row in emu.control.ledger():
        if row.get("name") == name:
            return row
    return None


def _elapsed(row: dict[str, Any], fallback: float) -> float:
    """created -> completed on the emulator's clock (seconds), else our own measurement."""
    try:
        return max(1e-6, float(row["completed_at"]) - float(row["created_at"]))
    except (KeyError, TypeError, ValueError):
        return fallback


def _check_delivery(row: dict[str, Any], size: int, digest: str, who: str) -> None:
    if row.get("state") != "complete" or row.get("filesize") != size:
        raise DeliveryFailure(f"{who}: ledger shows {row.get('state')} / {row.get('filesize')} B")
    if row.get("sha256") not in (None, digest):
        raise DeliveryFailure(f"{who}: sha256 in the ledger does not match the file")


# -- the device -----------------------------------------------------------------------------
@contextlib.contextmanager
def paired_device(emu: EmulatorProcess, project_id: str, tmp: Path, parallelism: int,
                  api_url: str | None = None) -> Iterator[DeviceProcess]:
    """The reference device as a process, paired to `project_id`, watching `tmp/media`.

    `api_url` is where the device reaches the cloud (a proxy in front of the emulator for
    shaped links); the emulator's own URL by default.
    """
    assert emu.control is not None
    media = tmp / "media"
    media.mkdir(parents=True, exist_ok=True)
    device = DeviceProcess(
        {"state_dir": str(tmp / "device-state"), "api_url": api_url or emu.api_url,
         "ca_bundle": str(emu.ca_bundle), "media_dirs": [str(media)], "name": "BENCH-DEVICE",
         "firmware_version": "1.0.0", "parallelism": parallelism, "status_port": 0,
         "scan_interval": 0.2, "quiet_period": 0.5},
        client_secret=emu.control.client_secret(),
    )
    device.start()
    try:
        code = device.wait_for(lambda s: s["pairing"].get("state") == "showing_code"
                               and bool(s["pairing"].get("user_code")), 60, "a pairing code")
        emu.control.approve(code["pairing"]["user_code"], project_id)
        device.wait_for(lambda s: s["token"].get("state") == "valid"
                        and s["pairing"].get("state") == "paired", 60, "pairing to finish")
        yield device
    finally:
        device.stop()


def device_upload(emu: EmulatorProcess, device: DeviceProcess, source: Path, media: Path,
                  size: int, digest: str, timeout: float) -> dict[str, Any]:
    """Move `source` into the device's media folder; MB/s created -> last byte, peak RSS."""
    def gone() -> str | None:
        if not device.is_running():
            return f"device exited ({device.tail(20)})"
        return None

    assert device.proc is not None and emu.proc is not None
    pid = device.proc.pid
    peak_sampled = 0
    cpu_device, cpu_cloud = cpu_seconds(pid), cpu_seconds(emu.proc.pid)
    os.replace(source, media / source.name)  # appears complete: no growing-file wait
    t0 = time.monotonic()

    def complete() -> dict[str, Any] | None:
        nonlocal peak_sampled
        peak_sampled = max(peak_sampled, vm_hwm(pid))
        row = _ledger_row(emu, source.name)
        return row if row and row.get("state") == "complete" else None

    row = _poll(complete, timeout, f"the device to upload {size} bytes", 0.25, gone)
    wall = time.monotonic() - t0
    peak = max(peak_sampled, vm_hwm(pid))
    gigabytes = size / 1e9
    cpu_device = (cpu_seconds(pid) - cpu_device) / gigabytes
    cpu_cloud = (cpu_seconds(emu.proc.pid) - cpu_cloud) / gigabytes
    _check_delivery(row, size, digest, "device")
    elapsed = _elapsed(row, wall)
    return {"mbps": size / elapsed / MB, "peak_rss_bytes": peak, "seconds": elapsed,
            "parts": int(row.get("parts_expected") or 1),
            "device_cpu_s_per_GB": round(cpu_device, 2), "emulator_cpu_s_per_GB": round(cpu_cloud, 2)}


def _measure_device(emu: EmulatorProcess, project_id: str, source: Path, size: int, digest: str,
                    parallelism: int, tmp: Path, timeout: float) -> dict[str, Any]:
    with paired_device(emu, project_id, tmp, parallelism) as device:
        return device_upload(emu, device, source, tmp / "media", size, digest, timeout)


# -- raw PUTs -------------------------------------------------------------------------------
def _token(http: httpx.Client, emu: EmulatorProcess, project_id: str) -> str:
    assert emu.control is not None
    secret = emu.control.client_secret()
    client_id = f"BENCH-RAW-{uuid.uuid4().hex[:8]}"
    headers = {"x-client-version": CLIENT_VERSION}
    code = http.post("/v2/auth/device/code", headers=headers, data={
        "client_id": client_id, "client_secret": secret, "scope": "asset_create offline"})
    if code.status_code != 200:
        raise CloudError(f"device code request failed: HTTP {code.status_code}")
    emu.control.approve(code.json()["user_code"], project_id)
    answer = http.post("/v2/auth/token", headers=headers, data={
        "grant_type": DEVICE_GRANT, "client_id": client_id, "client_secret": secret,
        "device_code": code.json()["device_code"]})
    if answer.status_code != 200:
        raise CloudError(f"token request failed: HTTP {answer.status_code}")
    return str(answer.json()["access_token"])


def _read_range(path: Path, start: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        fh.seek(start)
        left = length
        while left:
            chunk = fh.read(min(left, 1024 * 1024))
            if not chunk:
                raise OSError(f"{path} ended early")
            left -= len(chunk)
            yield chunk


def _measure_raw_put(emu: EmulatorProcess, project_id: str, path: Path, size: int, digest: str,
                     parts: int, parallelism: int, timeout: float) -> dict[str, Any]:
    verify = ssl_context(emu.ca_bundle)
    name = "RAW_" + path.name
    with httpx.Client(base_url=emu.api_url, verify=verify, timeout=60) as http:
        token = _token(http, emu, project_id)
        t0 = time.monotonic()
        created = http.post("/v2/devices/assets", headers={
            "authorization": f"Bearer {token}", "x-client-version": CLIENT_VERSION},
            json={"name": name, "filetype": FILETYPE, "filesize": size, "offset": 0,
                  "parts": parts})
        if created.status_code != 200:
            raise CloudError(f"asset create failed: HTTP {created.status_code}")
        urls: list[str] = created.json()["upload_urls"]
    chunk = -(-size // len(urls))
    local = threading.local()
    clients: list[httpx.Client] = []

    def put(index: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(verify=verify, timeout=120)
            clients.append(client)
        start = index * chunk
        length = min(chunk, size - start)
        r = client.put(urls[index], content=_read_range(path, start, length), headers={
            "Content-Type": FILETYPE, "x-amz-acl": "private", "Content-Length": str(length)})
        if r.status_code != 200:
            raise CloudError(f"raw PUT of part {index + 1} failed: HTTP {r.status_code}")

    try:
        with ThreadPoolExecutor(max_workers=parallelism) as pool:
            list(pool.map(put, range(len(urls))))
    finally:
        for client in clients:
            client.close()
    wall = time.monotonic() - t0
    row = _poll(lambda: (r := _ledger_row(emu, name)) and r.get("state") == "complete" and r,
                min(timeout, 60), "the raw upload to complete in the ledger")
    _check_delivery(row, size, digest, "raw PUT")
    return {"mbps": size / _elapsed(row, wall) / MB, "parts": len(urls)}

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
from harness.cloud.control import ssl_context
from harness.cloud.runner import EmulatorProcess
from harness.errors import CloudError, DeliveryFailure, DeviceTimeout
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
        timeout: float = 900.0, hostile_path: bool = True) -> dict[str, Any]:
    """Measure, write `<out_dir>/device.json`, return the report; with `hostile_path`, also
    the device's peak RSS per malformed-answer case (harness.benchmarks.hostile, issue #23)."""
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
    if hostile_path:
        results += hostile.results()
    return write_report(out_dir, "device", results)


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

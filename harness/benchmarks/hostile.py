"""A short campaign of malformed answers against the reference device (issue #23 "must show").

For each case a fresh reference device (a real process) is paired through a garbling
mitmproxy (harness.faults.http.garble, leaves from the bench CA) in front of a real
emulator; the case's malformed answer is armed on one of the five endpoints (token refresh,
GET /v2/devices/me, asset create, part PUT, heartbeat), a file is captured, and once every
armed answer went out the path is clean again. Per case: did the device crash, did a file
fail for good, did it ask for a new pairing code, did the file arrive intact, and its peak
RSS (VmHWM: the process is new per case, so the peak is the case's own).

`results()` gives bench rows `peak_rss_MB` with params.case (the lead's device.json). Nothing
is asserted here: the outcome is in each row's params and `campaign()` returns it whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.benchmarks import machine_params, result, vm_hwm
from harness.cloud.paths import ASSET_CREATE_PATH, S3_PART_PREFIX, TOKEN_PATH
from harness.cloud.runner import EmulatorProcess
from harness.errors import DeviceTimeout
from harness.faults.http.garble import AnswerGarbler, GarbleRule, trusted_path
from reference_device.testing import DeviceProcess

MB = 1_000_000
HUGE = 50 * 1024 * 1024
FILE_BYTES = 300_000
DEVICE_CODE = "/v2/auth/device/code"


@dataclass(frozen=True)
class Case:
    """One malformed answer on one endpoint, `count` times in a row."""

    name: str
    path: str
    method: str
    kind: str
    count: int = 3
    size: int = HUGE
    expire_tokens: bool = False  # the endpoint is only asked after a 401 (token refresh)


CASES: tuple[Case, ...] = (
    Case("baseline", ASSET_CREATE_PATH, "POST", "html-200", count=0),
    Case("refresh-html-200", f"^{TOKEN_PATH}$", "POST", "html-200", expire_tokens=True),
    Case("refresh-truncated-json", f"^{TOKEN_PATH}$", "POST", "truncated-json", expire_tokens=True),
    Case("me-wrong-types", r"^/v2/devices/me$", "GET", "wrong-types"),
    Case("me-html-200", r"^/v2/devices/me$", "GET", "html-200"),
    Case("create-empty-200", ASSET_CREATE_PATH, "POST", "empty-200"),
    Case("create-huge-50MB", ASSET_CREATE_PATH, "POST", "huge-200", count=2),
    Case("create-http-upload-urls", ASSET_CREATE_PATH, "POST", "http-upload-urls", count=1),
    Case("part-put-unlisted-status", f"^{S3_PART_PREFIX}", "PUT", "unlisted-status"),
    Case("part-put-html-200", f"^{S3_PART_PREFIX}", "PUT", "html-200"),
    Case("heartbeat-html-200", r"^/v2/devices/heartbeat$", "POST", "html-200"),
    Case("heartbeat-huge-50MB", r"^/v2/devices/heartbeat$", "POST", "huge-200", count=1),
)


@dataclass
class Outcome:
    """What one case did to the device."""

    case: str
    garbled: int
    crashed: bool
    files_failed: int
    repaired: bool
    intact: bool
    peak_rss_bytes: int
    seconds: float


def _poll(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise DeviceTimeout(f"after {timeout:.0f} s, still waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def _device(emu: EmulatorProcess, api_url: str, tmp: Path) -> Iterator[DeviceProcess]:
    assert emu.control is not None
    (tmp / "media").mkdir(parents=True)
    device = DeviceProcess(
        {"state_dir": str(tmp / "state"), "api_url": api_url, "ca_bundle": str(emu.ca_bundle),
         "media_dirs": [str(tmp / "media")], "name": "HOSTILE-BENCH", "firmware_version": "1.0.0",
         "status_file": str(tmp / "state" / "status.json"), "websocket": False,
         "heartbeat_interval": 2.0, "me_poll_interval": 2.0, "scan_interval": 0.2,
         "quiet_period": 0.5, "backoff_base": 0.1, "backoff_cap": 2.0},
        client_secret=emu.control.client_secret(),
    )
    device.start()
    try:
        yield device
    finally:
        device.stop()


def run_case(emu: EmulatorProcess, case: Case, workdir: Path, timeout: float = 120.0) -> Outcome:
    """One fresh device through a fresh garbling path; the case's answers, then a clean path."""
    control = emu.control
    assert control is not None
    project = control.create_project(f"Hostile {case.name}")
    garbler = AnswerGarbler()
    started = time.monotonic()
    with (tempfile.TemporaryDirectory(prefix=f"c2c-hostile-{case.name}-", dir=workdir) as tmp_s,
          trusted_path(emu.api_url, Path(emu.ca_bundle), [garbler], Path(tmp_s)) as proxy,
          _device(emu, proxy.url, Path(tmp_s) / "device") as device):
        tmp = Path(tmp_s)
        assert device.proc is not None
        pid = device.proc.pid
        code = device.wait_for(lambda s: bool(s["pairing"].get("user_code")), 60, "a pairing code")
        control.approve(code["pairing"]["user_code"], project["id"])
        device.wait_for(lambda s: s["pairing"].get("state") == "paired" and s["token"].get("state") == "valid",
                        60, "pairing")
        codes_before = sum(1 for j in control.journal() if j["path"] == DEVICE_CODE)
        if case.count:
            garbler.garble(GarbleRule(kind=case.kind, path=case.path, method=case.method,
                                      count=case.count, size=case.size))
        if case.expire_tokens:
            control.expire_tokens()
        clip = tmp / "device" / "media" / f"{case.name}.bin"
        data = os.urandom(FILE_BYTES)
        clip.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        peak = 0

        def met() -> bool:
            nonlocal peak
            peak = max(peak, vm_hwm(pid))
            return not device.is_running() or len(garbler.garbled) >= case.count

        with contextlib.suppress(DeviceTimeout):
            _poll(met, timeout, f"{case.name}: the device to meet {case.count} garbled answers")
        garbler.clear()  # the path is clean again

        def delivered() -> bool:
            nonlocal peak
            peak = max(peak, vm_hwm(pid))
            rows = [r for r in control.ledger() if r.get("name") == clip.name and r.get("state") == "complete"]
            return not device.is_running() or bool(rows)

        with contextlib.suppress(DeviceTimeout):
            _poll(delivered, timeout, f"{case.name}: the file to arrive")
        rows = [r for r in control.ledger() if r.get("name") == clip.name and r.get("state") == "complete"]
        status = device.status() or {}
        codes_after = sum(1 for j in control.journal() if j["path"] == DEVICE_CODE)
        peak = max(peak, vm_hwm(pid))
        return Outcome(
            case=case.name, garbled=len(garbler.garbled), crashed=not device.is_running(),
            files_failed=int(status.get("queue", {}).get("failed", 0) or 0),
            repaired=codes_after > codes_before or status.get("pairing", {}).get("state") != "paired",
            intact=len(rows) == 1 and rows[0].get("sha256") == digest,
            peak_rss_bytes=peak, seconds=round(time.monotonic() - started, 1))


def campaign(cases: tuple[Case, ...] = CASES, workdir: Path | None = None) -> list[Outcome]:
    """Every case against one emulator, one fresh device each."""
    with (tempfile.TemporaryDirectory(prefix="c2c-hostile-", dir=workdir) as tmp_s,
          EmulatorProcess(Path(tmp_s) / "cloud", settings={"device_code_interval": 1}) as emu):
        return [run_case(emu, case, Path(tmp_s)) for case in cases]


def rows(outcomes: list[Outcome]) -> list[dict[str, object]]:
    """Bench rows: `peak_rss_MB` per case, the case's outcome in params."""
    machine = machine_params()
    return [result("peak_rss_MB", round(o.peak_rss_bytes / MB, 1), "MB", case=o.case,
                   measured="VmHWM of the reference device process",
                   **{k: v for k, v in asdict(o).items() if k not in ("case", "peak_rss_bytes")},
                   **machine)
            for o in outcomes]


def results() -> list[dict[str, object]]:
    """The whole campaign as bench rows (for reports/bench/device.json)."""
    return rows(campaign())


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    return {"cases": len(outcomes), "crashes": sum(o.crashed for o in outcomes),
            "files_failed": sum(o.files_failed for o in outcomes),
            "repairs": sum(o.repaired for o in outcomes),
            "not_intact": [o.case for o in outcomes if not o.intact],
            "peak_rss_MB": {o.case: round(o.peak_rss_bytes / MB, 1) for o in outcomes}}


if __name__ == "__main__":
    import json

    found = campaign()
    print(json.dumps({"summary": summary(found), "rows": rows(found)}, indent=2))

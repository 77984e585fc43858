"""Hunt the presence stall: pair fresh reference devices against the emulator, over and over.

    .venv/bin/python -m tests.reference_device.stall_hunt --rounds 20 --out /tmp/stall

Not a test (it runs for minutes): a loop of real device processes, each paired, paused,
renamed, removed in the cloud, paired again, logged out and paired again, like the
pairing-heavy certification scenarios (C2C-PROJ-01, C2C-QA-04). After every pairing the
presence thread must show itself (POST /v2/devices/heartbeat or the status socket) within
--window seconds, and the device's own `socket.last_beat_at` must keep moving. When it does
not, the device is asked for its thread stacks (SIGUSR1, faulthandler) and the dump and the
console are written to --out: the blocked call is in the dump.

What the hunt found, and what it did not: the stall was a status socket whose upgrade request
never reached the cloud. websockets' sync client read the TLS socket in its own thread while
the caller wrote to it, and OpenSSL forbids SSL_read and SSL_write on one session at once (TLS
1.3 session tickets arrive right after the handshake, just as the request goes out). The
device now opens the socket through reference_device/duplex_tls.py (one TLS call at a time;
tests/reference_device/test_duplex_tls.py shows the loss and its absence). A hunt that
finds a stall again should first look for that pattern in the dump: a reader thread inside
SSLSocket.recv while another thread waits in SSLSocket.send.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from harness.cloud.runner import EmulatorProcess
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
FAST_CLOUD = {"device_code_interval": 1, "slow_down_increment": 1}


class Stall(Exception):
    """The presence thread showed nothing within the window."""


class Device:
    """One reference device process, configured like fixtures/devices/reference.toml."""

    def __init__(self, emu: EmulatorProcess, api_url: str, workdir: Path, secret: str) -> None:
        self.workdir = workdir
        self.client_id = f"c2c-bench-hunt-{uuid.uuid4().hex[:8]}"
        state, media = workdir / "state", workdir / "media"
        state.mkdir(parents=True)
        media.mkdir()
        self.state = state
        self.console = workdir / "console.log"
        (state / "device.toml").write_text(
            f'name = "HUNT"\nkind = "camera"\nfirmware_version = "1.0.0"\n'
            f'api_url = "{api_url}"\nca_bundle = "{emu.ca_bundle}"\nclient_id = "{self.client_id}"\n'
            f'state_dir = "{state}"\nmedia_dirs = ["{media}"]\nstatus_port = 0\n'
            f'log_file = "{state}/device.log"\nme_poll_interval = 10\nsocket_heartbeat_interval = 10\n'
        )
        with open(self.console, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reference_device", "run", "--config", str(state / "device.toml")],
                cwd=ROOT, env=dict(os.environ, C2C_CLIENT_SECRET=secret, PYTHONUNBUFFERED="1"),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.url = wait_until(lambda: _read(state / "status-url"), 30, "the status-url file")
        self.http = httpx.Client(timeout=5.0)

    def status(self) -> dict[str, Any]:
        try:
            data = self.http.get(self.url + "/status.json").json()
        except (httpx.HTTPError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def control(self, action: str) -> None:
        self.http.post(f"{self.url}/api/{action}", json={})

    def dump_stacks(self) -> str:
        before = self.console.stat().st_size
        os.kill(self.proc.pid, signal.SIGUSR1)
        wait_until(lambda: "most recent call first" in self.console.read_bytes()[before:].decode(errors="replace"),
                   10, "the stack dump")
        # the dump is written in pieces: the same size at two polls 0.2 s apart is the whole of it
        wait_until(_unchanged_size(self.console), 10, "the whole stack dump", interval=0.2)
        return self.console.read_bytes()[before:].decode(errors="replace")

    def kill(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _unchanged_size(path: Path) -> Callable[[], bool]:
    """A condition that holds once the file's size is what it was at the previous poll."""
    last = [-1]

    def unchanged() -> bool:
        size = path.stat().st_size
        same, last[0] = size == last[0], size
        return same
    return unchanged


class Hunt:
    def __init__(self, emu: EmulatorProcess, api_url: str, out: Path, window: float) -> None:
        self.emu = emu
        self.cloud = emu.control
        self.api_url = api_url
        self.out = out
        self.window = window
        self.found = 0
        self._cursor = 0
        self._sockets_before = 0

    def presence_seen(self, dev: Device, since: int) -> bool:
        """One device runs at a time: any heartbeat since the cursor, or a new socket, is its own."""
        rows = self.cloud.journal(since=since)
        if any(str(r.get("path", "")).endswith("/heartbeat") for r in rows):
            return True
        return len(self.cloud.websockets()) > self._sockets_before

    def sockets(self) -> int:
        self._sockets_before = len(self.cloud.websockets())
        return self._sockets_before

    def cursor(self) -> int:
        while rows := self.cloud.journal(since=self._cursor):
            self._cursor = int(rows[-1]["id"])
        return self._cursor

    def pair(self, dev: Device, project_id: str, what: str) -> None:
        code = wait_until(lambda: ((dev.status().get("pairing") or {}).get("user_code")), 60,
                          f"a pairing code ({what})")
        since = self.cursor()
        self.sockets()
        self.cloud.approve(code, project_id)
        wait_until(lambda: (dev.status().get("pairing") or {}).get("state") == "paired", 60, f"paired ({what})")
        self.watch(dev, since, what)

    def watch(self, dev: Device, since: int, what: str) -> None:
        try:
            wait_until(lambda: self.presence_seen(dev, since), self.window, f"presence after {what}", interval=0.5)
        except AssertionError:
            self.report(dev, f"no heartbeat or socket within {self.window:.0f} s after {what}")

    def beats(self, dev: Device, seconds: float, what: str) -> None:
        """The device's own last_beat_at keeps moving while it is paired."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            st = dev.status()
            sock = st.get("socket") or {}
            paired = (st.get("pairing") or {}).get("state") == "paired"
            if paired and sock.get("last_beat_at") and time.time() - float(sock["last_beat_at"]) > 25:
                self.report(dev, f"last_beat_at {time.time() - float(sock['last_beat_at']):.0f} s old ({what})")
                return
            time.sleep(1.0)

    def report(self, dev: Device, why: str) -> None:
        self.found += 1
        dump = dev.dump_stacks()
        path = self.out / f"stall-{self.found}-{dev.client_id}.txt"
        path.write_text(f"{why}\n\n=== stacks ===\n{dump}\n=== console ===\n{dev.console.read_text(errors='replace')}")
        print(f"STALL: {why}; stacks in {path}", flush=True)
        raise Stall(why)

    def device_id(self, dev: Device) -> str:
        return str(wait_until(lambda: next((d["id"] for d in reversed(self.cloud.devices())
                                             if d.get("client_id") == dev.client_id and not d.get("revoked")),
                                            None), 30, "the cloud device"))

    def round(self, n: int) -> None:
        secret = self.cloud.client_secret()
        project = self.cloud.create_project(f"Hunt {n}")
        dev = Device(self.emu, self.api_url, self.out / f"round-{n}", secret)
        try:
            self.pair(dev, project["id"], "pairing a fresh device")
            self.beats(dev, 12, "after the first pairing")
            self.cloud.rename_project(project["id"], f"Hunt {n} renamed")
            wait_until(lambda: (dev.status().get("project") or {}).get("name") == f"Hunt {n} renamed", 60,
                       "the renamed project")
            dev_id = self.device_id(dev)
            self.cloud.pause_device(dev_id)
            wait_until(lambda: dev.status().get("cloud_status") == "paused", 60, "paused")
            self.cloud.resume_device(dev_id)
            self.cloud.revoke_device(dev_id)
            wait_until(lambda: (dev.status().get("pairing") or {}).get("state") != "paired", 60, "unpaired")
            dev.control("pairing/start")
            self.pair(dev, project["id"], "pairing again after the cloud removed the device")
            self.beats(dev, 12, "after pairing again")
            dev.control("logout")
            wait_until(lambda: (dev.status().get("pairing") or {}).get("state") != "paired", 30, "logged out")
            dev.control("pairing/start")
            self.pair(dev, project["id"], "pairing again after a logout")
            self.beats(dev, 12, "after the logout")
        finally:
            dev.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--window", type=float, default=20.0, help="seconds presence has to show itself")
    parser.add_argument("--out", type=Path, default=Path("/tmp/stall-hunt"))
    parser.add_argument("--link", action="store_true", help="through the bench's network link proxy")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    emu = EmulatorProcess(args.out / "cloud", settings=dict(FAST_CLOUD))
    emu.start()
    link = None
    try:
        api_url = emu.api_url
        if args.link:
            from harness.faults.network.link import NetworkLink

            link = NetworkLink(api_url.split("://", 1)[1], seed=1)
            api_url = link.device_api_url
        hunt = Hunt(emu, api_url, args.out, args.window)
        stalls = 0
        for n in range(args.rounds):
            started = time.monotonic()
            try:
                hunt.round(n)
                console = (args.out / f"round-{n}" / "console.log").read_text(errors="replace")
                recovered = console.count("status socket failed (TimeoutError)")
                print(f"round {n}: ok ({time.monotonic() - started:.0f} s; "
                      f"{recovered} status socket timeout(s) recovered from)", flush=True)
            except Stall:
                stalls += 1
            except Exception as exc:  # a bench hiccup is reported, the hunt goes on
                print(f"round {n}: {type(exc).__name__}: {exc}", flush=True)
        print(f"{stalls} stall(s) in {args.rounds} rounds", flush=True)
        return 1 if stalls else 0
    finally:
        if link is not None:
            link.close()
        emu.kill()
        emu.close()


if __name__ == "__main__":
    raise SystemExit(main())

"""The user-space forwarder: moves IP packets between two TUN devices through the link model.

It runs as its own process (`python -m harness.faults.network.packet.forwarder`) so that the
bench's threads never hold it back: the parent opens both TUN devices and hands over their
file descriptors and one end of a socketpair. Control is JSON lines on that socket
(`{"op": "spec", "spec": {...}}`, `{"op": "down"}`, `{"op": "up"}`, `{"op": "stats"}`; each
answered by one JSON line); end of file on it means the bench is gone, and the forwarder
exits, which closes the TUN devices, which the kernel then deletes.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import time
from dataclasses import asdict
from typing import Any

from harness.faults.network.packet.goodput import GoodputMeter
from harness.faults.network.packet.shaper import DirectionShaper
from harness.faults.network.packet.spec import LinkSpec

READ_BATCH = 64  # packets read from one TUN per wake-up, so one direction cannot starve the other
IDLE_WAIT_S = 0.5
MAX_PACKET = 65536


class Forwarder:
    """The select loop: device side TUN <-> host side TUN, per direction one shaper."""

    def __init__(self, device_fd: int, host_fd: int, control: socket.socket, spec: LinkSpec) -> None:
        self.device_fd = device_fd
        self.host_fd = host_fd
        self.control = control
        now = time.monotonic()
        self.up = DirectionShaper(spec.up, now=now, seed=spec.seed * 2 + 1)
        self.down = DirectionShaper(spec.down, now=now, seed=spec.seed * 2 + 2)
        self.spec = spec
        self.write_errors = 0
        self.meters = {self.up: GoodputMeter(), self.down: GoodputMeter()}
        self.started = now
        self._control_buffer = b""
        for fd in (device_fd, host_fd):
            os.set_blocking(fd, False)

    def run(self) -> None:
        """Forward until the control socket closes."""
        routes = ((self.up, self.host_fd), (self.down, self.device_fd))
        inputs = {self.device_fd: self.up, self.host_fd: self.down}
        control_fd = self.control.fileno()
        while True:
            now = time.monotonic()
            wake: float | None = None
            for shaper, out_fd in routes:
                shaper.advance(now)
                meter = self.meters[shaper]
                for packet in shaper.pop_due(now):
                    meter.account(packet, now)
                    try:
                        os.write(out_fd, packet)
                    except OSError:  # the kernel refused it (e.g. no buffer): a drop
                        self.write_errors += 1
                event = shaper.next_event()
                if event is not None and (wake is None or event < wake):
                    wake = event
            timeout = IDLE_WAIT_S if wake is None else min(IDLE_WAIT_S, max(0.0, wake - time.monotonic()))
            ready, _, _ = select.select([self.device_fd, self.host_fd, control_fd], [], [], timeout)
            for fd in ready:
                if fd == control_fd:
                    if not self._serve_control():
                        return
                    continue
                shaper = inputs[fd]
                for _ in range(READ_BATCH):
                    try:
                        packet = os.read(fd, MAX_PACKET)
                    except BlockingIOError:
                        break
                    shaper.offer(packet, time.monotonic())

    # --- control ------------------------------------------------------------------------
    def _serve_control(self) -> bool:
        data = self.control.recv(65536)
        if not data:
            return False
        self._control_buffer += data
        while b"\n" in self._control_buffer:
            line, self._control_buffer = self._control_buffer.split(b"\n", 1)
            try:
                answer = self._handle(json.loads(line))
            except Exception as exc:  # a bad command must not kill the link
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self.control.sendall(json.dumps(answer).encode() + b"\n")
        return True

    def _handle(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command.get("op")
        now = time.monotonic()
        if op == "spec":
            spec = LinkSpec.from_dict(command["spec"])
            self.up.configure(spec.up, now=now, seed=spec.seed * 2 + 1)
            self.down.configure(spec.down, now=now, seed=spec.seed * 2 + 2)
            self.spec = spec
        elif op in ("down", "up"):
            self.up.set_down(op == "down")
            self.down.set_down(op == "down")
        elif op == "series":
            since = float(command.get("since", 0.0))
            return {"ok": True, "bin_s": 0.1, "up": self.meters[self.up].series(since),
                    "down": self.meters[self.down].series(since)}
        elif op != "stats":
            return {"ok": False, "error": f"unknown op {op!r}"}
        return {"ok": True, **self.stats()}

    def stats(self) -> dict[str, Any]:
        return {
            "uptime_s": time.monotonic() - self.started,
            "cpu_s": sum(os.times()[:2]),
            "link_down": self.up.down,
            "spec": self.spec.name,
            "write_errors": self.write_errors,
            "up": self._direction(self.up),
            "down": self._direction(self.down),
        }


    def _direction(self, shaper: DirectionShaper) -> dict[str, Any]:
        meter = self.meters[shaper]
        return asdict(shaper.stats) | {
            "queued": shaper.queued_packets,
            "payload_bytes": meter.payload_bytes,
            "duplicate_bytes": meter.duplicate_bytes,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device-fd", type=int, required=True)
    parser.add_argument("--host-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    args = parser.parse_args(argv)
    control = socket.socket(fileno=args.control_fd)
    first = b""
    while not first.endswith(b"\n"):  # the first line is the initial spec
        chunk = control.recv(65536)
        if not chunk:
            return 1
        first += chunk
    spec = LinkSpec.from_dict(json.loads(first)["spec"])
    forwarder = Forwarder(args.device_fd, args.host_fd, control, spec)
    control.sendall(json.dumps({"ok": True, "ready": True}).encode() + b"\n")
    try:
        forwarder.run()
    except KeyboardInterrupt:  # the bench's Ctrl-C reaches the whole process group
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

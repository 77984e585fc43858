"""A simulated relay board on a real pty whose relay contact powers a software device.

The harness drives it with the very drivers it uses on real boards (it opens the pty's
slave path like a /dev/ttyUSB*), so CI exercises the same code as the bench. Closing the
chosen relay starts the device command in its own process group; opening it SIGKILLs the
group — a real power cut for a software device.

    c2c-relay-sim --protocol lcus --channels 2 --port-file F --channel 1 -- python device.py

or in-process (a thread), for tests:

    with RelaySimulator("lcus", channels=2, device_channel=1, device_command=[...]) as sim:
        power = RelayPower(LcusBoard(sim.port, channels=2), channel=1)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import sys
import threading
import time
import tty
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.errors import ConfigError
from harness.faults.power import kmtronic, lcus, numato
from harness.faults.power.process import ProcessPower
from harness.timeline import Timeline

PROTOCOLS = ("lcus", "lcus1", "numato", "kmtronic")


class RelaySimulator:
    """Speaks one relay protocol on the master side of a pty; `.port` is the slave path."""

    def __init__(self, protocol: str, channels: int = 1, *, device_channel: int | None = None,
                 device_command: Sequence[str] | None = None,
                 device_env: Mapping[str, str] | None = None, device_cwd: Path | None = None,
                 device_log: Path | None = None, timeline: Timeline | None = None) -> None:
        if protocol not in PROTOCOLS:
            raise ConfigError(f"unknown relay protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
        if protocol == "lcus1":
            channels = 1
        first = 0 if protocol == "numato" else 1
        if not 1 <= channels <= (32 if protocol == "numato" else 8):
            raise ConfigError(f"{protocol} simulator: bad channel count {channels}")
        if device_command and device_channel is None:
            device_channel = first
        if device_channel is not None and not first <= device_channel < first + channels:
            raise ConfigError(f"{protocol} simulator: device channel {device_channel} "
                              f"not in {first}..{first + channels - 1}")
        self.protocol = protocol
        self.channels = channels
        self.device_channel = device_channel
        self.states: dict[int, bool] = {ch: False for ch in range(first, first + channels)}
        self.flips: list[tuple[float, int, bool]] = []
        """(monotonic time, channel, state) of every change, for tests and logs."""
        self.timeline = timeline
        self.device = (ProcessPower(device_command, env=device_env, cwd=device_cwd,
                                    log_path=device_log) if device_command else None)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = -1
        self._slave = -1
        self.port = ""

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> RelaySimulator:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo: our answers must not come back to us as commands
        self.port = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._serve, name=f"relay-sim-{self.protocol}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and cut the device (a board unplugged drops its relays)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self.device is not None:
            self.device.off()
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    def __enter__(self) -> RelaySimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def state(self, channel: int) -> bool:
        with self._lock:
            return self.states[channel]

    # -- the board ------------------------------------------------------------------------
    def _serve(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                continue  # no slave open at the moment (EIO): wait for the next client
            if not data:
                continue
            buffer += data
            buffer = self._handle(buffer)

    def _answer(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self._master, data)

    def _handle(self, buffer: bytes) -> bytes:
        """Consume every complete command in `buffer`; return the incomplete rest."""
        if self.protocol in ("lcus", "lcus1"):
            return self._handle_lcus(buffer)
        if self.protocol == "kmtronic":
            return self._handle_kmtronic(buffer)
        return self._handle_numato(buffer)

    def _handle_lcus(self, buffer: bytes) -> bytes:
        while buffer:
            if buffer[0] == 0xFF:
                buffer = buffer[1:]
                if self.protocol == "lcus":  # the LCUS-1 has no status answer
                    with self._lock:
                        self._answer(lcus.status_text(dict(self.states)))
            elif buffer[0] == lcus.FRAME_START:
                if len(buffer) < 4:
                    return buffer
                frame, buffer = buffer[:4], buffer[4:]
                ch, state = frame[1], frame[2]
                if frame == lcus.frame(ch, state == 1) and ch in self.states:
                    self._set(ch, state == 1)
            else:
                buffer = buffer[1:]  # line noise
        return buffer

    def _handle_kmtronic(self, buffer: bytes) -> bytes:
        while buffer:
            if buffer[0] != kmtronic.START:
                buffer = buffer[1:]
                continue
            if len(buffer) < 3:
                return buffer
            cmd, buffer = buffer[:3], buffer[3:]
            ch, arg = cmd[1], cmd[2]
            if cmd == kmtronic.QUERY_ALL and self.channels >= 4:
                with self._lock:
                    self._answer(bytes(int(self.states[c]) for c in sorted(self.states)))
            elif ch in self.states and arg == kmtronic.QUERY_ONE and self.channels <= 2:
                self._answer(bytes([kmtronic.START, ch, int(self.state(ch))]))
            elif ch in self.states and arg in (0, 1):
                self._set(ch, arg == 1)
        return buffer

    def _handle_numato(self, buffer: bytes) -> bytes:
        while True:
            ends = [i for i in (buffer.find(b"\r"), buffer.find(b"\n")) if i >= 0]
            if not ends:
                return buffer
            cut = min(ends)
            line, buffer = buffer[:cut], buffer[cut + 1:]
            command = line.decode("ascii", errors="replace").strip()
            if not command:
                continue
            answer = self._numato_answer(command)
            reply = command + "\n\r" + (f"{answer}\n\r" if answer else "") + ">"
            self._answer(reply.encode())

    def _numato_answer(self, command: str) -> str:
        words = command.split()
        if words == ["ver"]:
            return "00000008"
        if words[:2] == ["id", "get"]:
            return "C2CBENCH"
        if len(words) == 3 and words[0] == "relay" and words[1] in ("on", "off", "read"):
            try:
                ch = numato.parse_index(words[2])
            except ValueError:
                return ""
            if ch not in self.states:
                return ""
            if words[1] == "read":
                return "on" if self.state(ch) else "off"
            self._set(ch, words[1] == "on")
        return ""

    def _set(self, channel: int, on: bool) -> None:
        with self._lock:
            if self.states[channel] == on:
                return
            self.states[channel] = on
            self.flips.append((time.monotonic(), channel, on))
        if self.timeline is not None:
            self.timeline.record("power", f"sim-{self.protocol}", "flip",
                                 state="on" if on else "off", channel=channel)
        if self.device is not None and channel == self.device_channel:
            if on:
                self.device.on()
            else:
                self.device.off()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="c2c-relay-sim",
        description="Simulated relay board on a pty; its relay powers a software device.")
    parser.add_argument("--protocol", choices=PROTOCOLS, required=True)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--port-file", type=Path, help="write the pty path here when ready")
    parser.add_argument("--channel", type=int, help="the relay that powers the device")
    parser.add_argument("--device-log", type=Path, help="append the device's output here")
    parser.add_argument("device", nargs=argparse.REMAINDER,
                        help="-- followed by the device command")
    args = parser.parse_args(argv)
    command = args.device[1:] if args.device[:1] == ["--"] else args.device
    try:
        sim = RelaySimulator(args.protocol, args.channels, device_channel=args.channel,
                             device_command=command or None, device_log=args.device_log)
    except ConfigError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with sim:
        if args.port_file is not None:
            tmp = args.port_file.with_name(args.port_file.name + ".tmp")
            tmp.write_text(sim.port + "\n")
            tmp.replace(args.port_file)  # atomic: readers never see a half-written path
        print(sim.port, flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

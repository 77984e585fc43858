"""`PacketLink`: a device in its own network namespace behind a shaped, packet-level link.

    spec = LinkSpec.symmetric(trace_ms=constant_trace(12), delay_ms=50, queue_packets=150)
    with PacketLink(spec) as link:
        link.popen_in_namespace([...device argv...])    # reaches the host at link.host_address
        link.down(); ...; link.up(); link.apply(other_spec); link.stats()

Everything is undone on exit, also after an exception or Ctrl-C (KeyboardInterrupt is an
exception too): processes started in the namespace, the forwarder (whose exit makes the kernel
delete both TUN devices) and the namespace. A weakref finaliser covers a link that was never
closed; a namespace left by a killed bench is removed the next time a link is opened.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from harness.children import spawn
from harness.errors import FaultInjectionError
from harness.faults.network.packet import netns
from harness.faults.network.packet.spec import LinkSpec

CONTROL_TIMEOUT_S = 10.0


def packet_links_available() -> str | None:
    """None if this machine can make packet-level links, else why not (for skips and errors)."""
    if os.geteuid() != 0:
        return "packet-level links need root (network namespaces and TUN devices)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun (the tun kernel module is missing)"
    try:
        import pyroute2  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return "pyroute2 is not installed"
    return _namespace_probe()


@functools.cache
def _namespace_probe() -> str | None:
    """Create and remove one namespace, once per process: `ip netns` may be refused here."""
    name = f"{netns.NS_PREFIX}{os.getpid()}-probe"
    try:
        netns.in_namespace(name, lambda: None, create=True)
        netns.unplumb(netns.LinkPlumbing(name, -1, -1, "", "", "", ""))
    except Exception as exc:
        return f"network namespaces are not usable here: {exc}"
    return None


def _teardown(forwarder: subprocess.Popen[bytes] | None, control: socket.socket | None,
              children: list[subprocess.Popen[Any]], plumbing: netns.LinkPlumbing) -> None:
    for child in children:
        _stop(child)
    if control is not None:
        control.close()  # the forwarder sees end of file and exits
    if forwarder is not None:
        _stop(forwarder, grace=2.0)
    netns.unplumb(plumbing)


def _stop(process: subprocess.Popen[Any], grace: float = 1.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
        process.wait(grace)


class PacketLink:
    """One namespace, one TUN pair, one forwarder process; a context manager."""

    def __init__(self, spec: LinkSpec, *, mtu: int = 1500) -> None:
        self.spec = spec
        self.mtu = mtu
        self._forwarder: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        # One request, one answer line: callers on several threads (a profile's phase timer
        # taking the link down while a test reads stats) must not read each other's answers.
        self._control_lock = threading.Lock()
        self._control_file: Any = None
        self._children: list[subprocess.Popen[Any]] = []
        self._plumbing: netns.LinkPlumbing | None = None
        self._finalizer: weakref.finalize[..., PacketLink] | None = None
        self.fast = False

    # --- lifecycle ----------------------------------------------------------------------
    def open(self) -> PacketLink:
        reason = packet_links_available()
        if reason is not None:
            raise FaultInjectionError(reason)
        netns.clean_stale_namespaces()
        self._plumbing = plumbing = netns.plumb(self.mtu)
        ours, theirs = socket.socketpair()
        try:
            self._forwarder = spawn(
                [sys.executable, "-m", "harness.faults.network.packet.forwarder",
                 "--device-fd", str(plumbing.device_fd), "--host-fd", str(plumbing.host_fd),
                 "--control-fd", str(theirs.fileno())],
                pass_fds=(plumbing.device_fd, plumbing.host_fd, theirs.fileno()),
                start_new_session=True,  # Ctrl-C reaches the bench, which tears down in order
            )
        except OSError as exc:
            ours.close()
            theirs.close()
            netns.unplumb(plumbing)
            raise FaultInjectionError(f"cannot start the packet forwarder: {exc}") from exc
        theirs.close()
        plumbing.close_fds()  # the forwarder holds the only copies now: its exit deletes the TUNs
        self._control = ours
        ours.settimeout(CONTROL_TIMEOUT_S)
        self._control_file = ours.makefile("rb")
        self._finalizer = weakref.finalize(
            self, _teardown, self._forwarder, ours, self._children, plumbing)
        try:
            self._call({"op": "spec", "spec": self.spec.to_dict()}, first=True)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # runs _teardown once
            self._finalizer = None
        elif self._plumbing is not None:
            netns.unplumb(self._plumbing)
        self._plumbing = None

    def __enter__(self) -> PacketLink:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- where things are ---------------------------------------------------------------
    @property
    def _plumbed(self) -> netns.LinkPlumbing:
        if self._plumbing is None:
            raise FaultInjectionError("the packet-level link is not open")
        return self._plumbing

    @property
    def namespace(self) -> str:
        return self._plumbed.namespace

    @property
    def host_address(self) -> str:
        """The address the device reaches host services at (they must listen on it or 0.0.0.0)."""
        return self._plumbed.host_address

    @property
    def device_address(self) -> str:
        return self._plumbed.device_address

    def namespace_exec_prefix(self) -> list[str]:
        """Prefix an argv with this to run it in the device's namespace (a launch template)."""
        return ["ip", "netns", "exec", self.namespace]

    def popen_in_namespace(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a process in the namespace; it is stopped when the link closes."""
        kwargs.setdefault("start_new_session", True)
        try:
            process = spawn([*self.namespace_exec_prefix(), *argv], **kwargs)
        except OSError as exc:
            raise FaultInjectionError(f"cannot start {argv[0]!r} in {self.namespace}: {exc}") from exc
        self._children.append(process)
        return process

    def run_in_namespace(self, argv: Sequence[str], *, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run a command in the namespace to completion (stdout/stderr captured)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        try:
            return subprocess.run([*self.namespace_exec_prefix(), *argv], timeout=timeout, check=False, **kwargs)
        except subprocess.TimeoutExpired as exc:
            raise FaultInjectionError(f"{argv[0]!r} in {self.namespace} ran over {timeout} s") from exc

    # --- control ------------------------------------------------------------------------
    def apply(self, spec: LinkSpec) -> dict[str, Any]:
        """New parameters from now on (the queue keeps its packets, trimmed to the new limit)."""
        answer = self._call({"op": "spec", "spec": spec.to_dict()})
        self.spec = spec
        return answer

    def fast_path(self, on: bool) -> None:
        """Carry the traffic over an unshaped veth pair, kernel-forwarded (on), or back through the
        forwarder and its spec (off, the default). For profiles that need no shaping, so the
        Python forwarder's CPU never limits an unshaped link (hardline needs > 50 Mbps)."""
        netns.fast_path(self._plumbed, on)
        self.fast = on

    def down(self) -> dict[str, Any]:
        """Link down: every packet queued, in flight or arriving is dropped until `up`."""
        return self._call({"op": "down"})

    def up(self) -> dict[str, Any]:
        return self._call({"op": "up"})

    def stats(self) -> dict[str, Any]:
        """Per direction counters (arrived, delivered, lost, overflow, queue peaks) and CPU."""
        return self._call({"op": "stats"})

    def series(self, since: float = 0.0) -> dict[str, Any]:
        """Unique TCP payload bytes delivered per 100 ms bin, per direction (see goodput.py)."""
        return self._call({"op": "series", "since": since})

    def _call(self, command: dict[str, Any], *, first: bool = False) -> dict[str, Any]:
        if self._control is None or self._forwarder is None:
            raise FaultInjectionError("the packet-level link is not open")
        try:
            with self._control_lock:
                self._control.sendall(json.dumps(command).encode() + b"\n")
                line = self._control_file.readline()
        except OSError as exc:
            raise FaultInjectionError(f"packet forwarder did not answer {command['op']!r}: {exc}") from exc
        if not line:
            code = self._forwarder.poll()
            raise FaultInjectionError(f"packet forwarder exited (code {code}) before answering {command['op']!r}")
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise FaultInjectionError(f"packet forwarder answered {command['op']!r} with {answer!r}")
        if not answer.get("ok"):
            raise FaultInjectionError(f"packet forwarder refused {command['op']!r}: {answer.get('error')}")
        if first and not answer.get("ready"):
            raise FaultInjectionError("packet forwarder did not report ready")
        return answer

"""Namespaces, TUN devices and addresses for a packet-level link (pyroute2, no raw netlink).

Layout of one link, index i (a /30 out of 10.77.0.0/16):

    [namespace c2c-pl-<pid>-<n>]                 [host]
    device  10.77.a.(b+2)/30 on TUN "c2c<pid>d<n>"  --forwarder--  TUN "c2c<pid>h<n>" 10.77.a.(b+1)/30

Only the /30's own connected routes exist (no default route in the namespace, nothing beyond
10.77/16 on the host), so the device reaches the host's services at the host address and
nothing else. The TUN devices are not persistent: when the last file descriptor closes (the
forwarder exits, or is killed) the kernel deletes them. Only the namespace can outlive a killed
bench; its name carries the owner's pid, and `clean_stale_namespaces` removes those whose owner
is dead.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import ipaddress
import itertools
import os
import shutil
import signal
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.errors import FaultInjectionError

NS_PREFIX = "c2c-pl-"
NETNS_ETC = Path("/etc/netns")  # `ip netns exec NAME` bind-mounts NETNS_ETC/NAME/* over /etc/*
NETWORK = ipaddress.IPv4Network("10.77.0.0/16")
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

_sequence = itertools.count()


def _pyroute2() -> ModuleType:  # imported lazily: only a packet-level link needs it
    try:
        import pyroute2  # type: ignore[import-untyped]  # no stubs, no py.typed
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise FaultInjectionError("packet-level links need pyroute2 (pip install pyroute2)") from exc
    module: ModuleType = pyroute2
    return module


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_bench_namespaces() -> list[str]:
    return [name for name in _pyroute2().netns.listnetns() if name.startswith(NS_PREFIX)]


def kill_namespace_processes(name: str) -> list[int]:
    """SIGKILL every process living in namespace `name` (what `ip netns pids` would list)."""
    try:
        inode = os.stat(f"/var/run/netns/{name}").st_ino
    except OSError:
        return []
    killed: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            link = os.readlink(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if link == f"net:[{inode}]":
            try:
                os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
            except ProcessLookupError:
                pass
    return killed


def clean_stale_namespaces() -> list[str]:
    """Remove the `c2c-pl-<pid>-<n>` namespaces whose bench process is gone, and the processes
    (a device, a sender) still running in them; names the namespaces removed."""
    removed: list[str] = []
    for name in list_bench_namespaces():
        owner = name[len(NS_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not _pid_alive(int(owner)):
            kill_namespace_processes(name)
            try:
                _pyroute2().netns.remove(name)
            except OSError:
                continue  # someone else removed it first
            shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
            removed.append(name)
    return removed


def in_namespace(name: str, work: Callable[[], Any], *, create: bool = False) -> Any:
    """Run `work` in a thread that has entered (or created) namespace `name`, then left it.

    A network namespace belongs to a thread, not a process, so a short-lived thread can enter
    one without forking (pyroute2's own NetNS and netns.create fork, which is unsafe in the
    bench's multi-threaded process). Netlink sockets opened in `work` see that namespace.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if create:
                os.unshare(os.CLONE_NEWNET)
                _pyroute2().netns.attach(name, "thread-self")  # bind-mount /var/run/netns/<name>
            else:
                target = os.open(f"/var/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.setns(target, os.CLONE_NEWNET)
                finally:
                    os.close(target)
            outcome["value"] = work()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            os.setns(own, os.CLONE_NEWNET)
            os.close(own)

    thread = threading.Thread(target=run, name=f"netns-{name}", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def open_tun(name: str) -> int:
    """A non-persistent TUN device without packet info header; its fd is its lifetime."""
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise FaultInjectionError(f"cannot open /dev/net/tun (need root and the tun module): {exc}") from exc
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        raise FaultInjectionError(f"cannot create TUN device {name}: {exc}") from exc
    return fd


def _used_host_networks() -> set[ipaddress.IPv4Network]:
    used: set[ipaddress.IPv4Network] = set()
    with _pyroute2().IPRoute() as ipr:
        for msg in ipr.get_addr(family=2):
            address = ipaddress.IPv4Address(msg.get_attr("IFA_ADDRESS"))
            if address in NETWORK:
                used.add(ipaddress.IPv4Network(f"{address}/30", strict=False))
    return used


def pick_subnet(pid: int, seq: int) -> ipaddress.IPv4Network:
    """A /30 of 10.77/16 no host interface uses, starting from one derived from pid and sequence."""
    subnets = list(NETWORK.subnets(new_prefix=30))
    used = _used_host_networks()
    start = (pid * 64 + seq) % len(subnets)
    for offset in range(len(subnets)):
        candidate = subnets[(start + offset) % len(subnets)]
        if candidate not in used:
            return candidate
    raise FaultInjectionError("no free /30 left in 10.77.0.0/16 for a packet-level link")


@dataclass
class LinkPlumbing:
    """What `plumb` made: the namespace, both TUN fds and the two addresses."""

    namespace: str
    device_fd: int
    host_fd: int
    device_ifname: str
    host_ifname: str
    host_address: str
    device_address: str
    prefixlen: int = 30
    fast_host_ifname: str = ""  # the veth pair of the unshaped fast path (host end, namespace end)
    fast_device_ifname: str = ""

    def close_fds(self) -> None:
        for fd in (self.device_fd, self.host_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.device_fd = self.host_fd = -1


def _link_index(ipr: Any, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise FaultInjectionError(f"interface {ifname} vanished while the link was being built")
    return int(found[0])


def plumb(mtu: int = 1500) -> LinkPlumbing:
    """Create namespace, TUN pair and addresses. On any failure, undo what was made."""
    pyroute2 = _pyroute2()
    pid, seq = os.getpid(), next(_sequence)
    namespace = f"{NS_PREFIX}{pid}-{seq}"
    device_ifname, host_ifname = f"c2c{pid:x}d{seq}", f"c2c{pid:x}h{seq}"
    subnet = pick_subnet(pid, seq)
    host_address, device_address = (str(a) for a in list(subnet.hosts())[:2])
    plumbing = LinkPlumbing(namespace, -1, -1, device_ifname, host_ifname, host_address, device_address,
                            fast_host_ifname=f"c2c{pid:x}v{seq}", fast_device_ifname=f"c2c{pid:x}w{seq}")

    def lo_up() -> None:
        with pyroute2.IPRoute() as ns:
            ns.link("set", index=_link_index(ns, "lo"), state="up")

    def device_up() -> None:
        with pyroute2.IPRoute() as ns:
            index = _link_index(ns, device_ifname)
            ns.link("set", index=index, mtu=mtu)
            ns.addr("add", index=index, address=device_address, prefixlen=30)
            ns.link("set", index=index, state="up")

    try:
        in_namespace(namespace, lo_up, create=True)
        plumbing.device_fd = open_tun(device_ifname)
        plumbing.host_fd = open_tun(host_ifname)
        with pyroute2.IPRoute() as ipr:
            ns_fd = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY | os.O_CLOEXEC)
            try:  # an fd, not the name: pyroute2 may fork to resolve a name
                ipr.link("set", index=_link_index(ipr, device_ifname), net_ns_fd=ns_fd)
            finally:
                os.close(ns_fd)
            index = _link_index(ipr, host_ifname)
            ipr.link("set", index=index, mtu=mtu)
            ipr.addr("add", index=index, address=host_address, prefixlen=30)
            ipr.link("set", index=index, state="up")
        in_namespace(namespace, device_up)
        _plumb_fast_path(plumbing)
    except BaseException as exc:  # Ctrl-C half way through included
        unplumb(plumbing)
        if isinstance(exc, FaultInjectionError) or not isinstance(exc, Exception):
            raise
        raise FaultInjectionError(f"cannot build the packet-level link {namespace}: {exc}") from exc
    return plumbing


def _plumb_fast_path(plumbing: LinkPlumbing) -> None:
    """A veth pair beside the TUN pair, without addresses: `fast_path(True)` routes the two link
    addresses over it (the kernel forwards, no user-space forwarder: an unshaped link at wire
    speed), `fast_path(False)` removes those /32 routes and the TUN's /30 carries them again."""
    pyroute2 = _pyroute2()
    with pyroute2.IPRoute() as ipr:
        ipr.link("add", ifname=plumbing.fast_host_ifname, kind="veth", peer=plumbing.fast_device_ifname)
        ns_fd = os.open(f"/var/run/netns/{plumbing.namespace}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            ipr.link("set", index=_link_index(ipr, plumbing.fast_device_ifname), net_ns_fd=ns_fd)
        finally:
            os.close(ns_fd)
        ipr.link("set", index=_link_index(ipr, plumbing.fast_host_ifname), state="up")

    def device_side_up() -> None:
        with pyroute2.IPRoute() as ns:
            ns.link("set", index=_link_index(ns, plumbing.fast_device_ifname), state="up")
    in_namespace(plumbing.namespace, device_side_up)


def fast_path(plumbing: LinkPlumbing, on: bool) -> None:
    """Route the link's two addresses over the veth pair (on) or the shaped TUN pair (off)."""
    pyroute2 = _pyroute2()

    def route(ipr: Any, ifname: str, destination: str) -> None:
        if on:
            ipr.route("replace", dst=destination, dst_len=32, oif=_link_index(ipr, ifname))
            return
        try:
            ipr.route("del", dst=destination, dst_len=32, oif=_link_index(ipr, ifname))
        except pyroute2.NetlinkError as exc:
            if exc.code not in (errno.ESRCH, errno.ENOENT):
                raise

    try:
        with pyroute2.IPRoute() as ipr:
            route(ipr, plumbing.fast_host_ifname, plumbing.device_address)

        def device_side() -> None:
            with pyroute2.IPRoute() as ns:
                route(ns, plumbing.fast_device_ifname, plumbing.host_address)
        in_namespace(plumbing.namespace, device_side)
    except (OSError, pyroute2.NetlinkError) as exc:
        raise FaultInjectionError(f"cannot switch {plumbing.namespace}'s fast path {'on' if on else 'off'}: {exc}") from exc


def unplumb(plumbing: LinkPlumbing) -> None:
    """Close our TUN fds (the kernel deletes the devices), stop whatever still runs in the
    namespace (a device launched with the exec prefix) and delete the namespace."""
    plumbing.close_fds()
    shutil.rmtree(NETNS_ETC / plumbing.namespace, ignore_errors=True)
    if plumbing.fast_host_ifname:  # deleting one end of a veth pair deletes both
        try:
            with _pyroute2().IPRoute() as ipr:
                found = ipr.link_lookup(ifname=plumbing.fast_host_ifname)
                if found:
                    ipr.link("del", index=found[0])
        except OSError:
            pass  # gone with its namespace
    try:
        if plumbing.namespace in _pyroute2().netns.listnetns():
            kill_namespace_processes(plumbing.namespace)
            _pyroute2().netns.remove(plumbing.namespace)
    except OSError as exc:
        raise FaultInjectionError(f"cannot remove namespace {plumbing.namespace}: {exc}") from exc


def write_namespace_hosts(namespace: str, entries: dict[str, str]) -> Path:
    """/etc/hosts as processes started with `ip netns exec` see it: `entries` = name -> address.

    The emulator's certificate names `localhost`; inside the namespace `localhost` must mean
    the host side of the link so the device's TLS check passes on the shaped path.
    """
    directory = NETNS_ETC / namespace
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "hosts"
    path.write_text("".join(f"{address}\t{name}\n" for name, address in entries.items()), encoding="utf-8")
    return path




CONGESTION_CONTROL = Path("/proc/sys/net/ipv4/tcp_congestion_control")


def congestion_control(namespace: str) -> str:
    """The TCP congestion control a process in the namespace gets by default."""
    def read() -> str:
        return CONGESTION_CONTROL.read_text().strip()
    value: str = in_namespace(namespace, read)
    return value


def set_congestion_control(namespace: str, preferred: tuple[str, ...]) -> str:
    """Make the first of `preferred` the namespace's default TCP congestion control; returns it.

    The default is per namespace (Linux >= 4.15), but a namespace may only pick an algorithm the
    host lists in net.ipv4.tcp_allowed_congestion_control (EPERM otherwise), so the next one is
    tried. None accepted: the host's default stays, and is what `congestion_control` reports.
    """
    for algorithm in preferred:
        try:
            in_namespace(namespace, functools.partial(CONGESTION_CONTROL.write_text, algorithm))
        except OSError:
            continue
        return congestion_control(namespace)
    return congestion_control(namespace)

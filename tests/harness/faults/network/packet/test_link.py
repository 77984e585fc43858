"""A real packet-level link: namespace and addresses, shaping, down/up, teardown, stale cleanup."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.errors import FaultInjectionError
from harness.faults.network.packet import LinkSpec, PacketLink, constant_trace, netns
from tests.harness.faults.network.packet.conftest import needs_packet_links
from tests.waiting import wait_until

pytestmark = needs_packet_links

CONNECT = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()"


def _echo_server(address: str) -> tuple[socket.socket, int]:
    server = socket.create_server((address, 0))
    server.settimeout(0.2)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def _connects(link: PacketLink, port: int, timeout: float = 2.0) -> bool:
    argv = [sys.executable, "-c", CONNECT, link.host_address, str(port), str(timeout)]
    return link.run_in_namespace(argv, timeout=timeout + 20).returncode == 0


def test_the_device_reaches_only_the_host_address_and_everything_goes_away() -> None:
    spec = LinkSpec.symmetric(trace_ms=constant_trace(12), delay_ms=20)
    with PacketLink(spec) as link:
        namespace = link.namespace
        assert namespace.startswith("c2c-pl-") and namespace in netns.list_bench_namespaces()
        assert link.namespace_exec_prefix() == ["ip", "netns", "exec", namespace]
        routes = link.run_in_namespace(["ip", "-4", "route", "show"], timeout=10).stdout
        assert "default" not in routes and routes.count("\n") == 1  # only the /30
        server, port = _echo_server(link.host_address)
        with server:
            assert _connects(link, port)
            assert not _connects(link, 9, timeout=1.0)  # nothing beyond: 127.0.0.1 is the namespace's own
        stats = link.stats()
        assert stats["up"]["delivered"] >= 2 and stats["down"]["delivered"] >= 2
        sleeper = link.popen_in_namespace(["sleep", "60"])
    assert sleeper.poll() is not None  # stopped with the link
    assert namespace not in netns.list_bench_namespaces()
    host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert f"c2c{os.getpid():x}" not in host_links  # both TUN devices gone


def test_link_down_drops_and_up_restores() -> None:
    with PacketLink(LinkSpec.symmetric(rate_bps=10e6, delay_ms=5)) as link:
        server, port = _echo_server(link.host_address)
        with server:
            link.down()
            assert not _connects(link, port, timeout=1.0)
            assert link.stats()["up"]["down_drops"] >= 1
            link.up()
            assert _connects(link, port)


def test_an_exception_inside_tears_down_and_a_stale_namespace_is_cleaned() -> None:
    with pytest.raises(RuntimeError), PacketLink(LinkSpec.symmetric(rate_bps=1e6)) as link:
        namespace = link.namespace
        raise RuntimeError("the bench broke")
    assert namespace not in netns.list_bench_namespaces()
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{netns.NS_PREFIX}{dead.pid}-0"
    netns.in_namespace(stale, lambda: None, create=True)  # what a SIGKILLed bench leaves
    try:
        with PacketLink(LinkSpec.symmetric(rate_bps=1e6)):
            wait_until(lambda: stale not in netns.list_bench_namespaces(), 5, "the stale namespace removed")
    finally:
        if stale in netns.list_bench_namespaces():
            netns._pyroute2().netns.remove(stale)


def test_a_closed_link_refuses_commands() -> None:
    link = PacketLink(LinkSpec.symmetric(rate_bps=1e6))
    with pytest.raises(FaultInjectionError):
        link.stats()
    with pytest.raises(FaultInjectionError):
        _ = link.host_address


def test_commands_from_several_threads_each_get_their_own_answer() -> None:
    """A profile's phase timer takes the link down while a test reads stats: each caller must read
    the answer to its own request (series answers carry bin_s, stats answers do not)."""
    mixed: list[str] = []
    with PacketLink(LinkSpec.symmetric(rate_bps=10e6)) as link:

        def read(series: bool) -> None:
            for _ in range(150):
                try:
                    answer = link.series() if series else link.stats()
                except FaultInjectionError as exc:
                    mixed.append(str(exc))
                    return
                if ("bin_s" in answer) != series:
                    mixed.append(f"{'series' if series else 'stats'} got {sorted(answer)[:4]}")

        threads = [threading.Thread(target=read, args=(flag,)) for flag in (True, False, True, False)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
    assert mixed == []


KILLED_BENCH = """
import sys
from harness.faults.network.packet import LinkSpec, PacketLink
link = PacketLink(LinkSpec.symmetric(rate_bps=1e6)).open()
device = link.popen_in_namespace(["sleep", "120"])
print(link.namespace, device.pid, flush=True)
sys.stdin.read()
"""


def test_a_sigkilled_bench_leaves_nothing_the_next_link_does_not_clean() -> None:
    bench = subprocess.Popen([sys.executable, "-c", KILLED_BENCH], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        namespace, device_pid = bench.stdout.readline().split()  # type: ignore[union-attr]
    finally:
        bench.kill()
        bench.wait(10)
    assert namespace in netns.list_bench_namespaces()

    def tuns_gone() -> bool:  # the orphaned forwarder saw end of file on its control socket
        out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
        return f"c2c{bench.pid:x}h" not in out

    wait_until(tuns_gone, 10, "the killed bench's forwarder to exit and its TUN devices to go")
    with PacketLink(LinkSpec.symmetric(rate_bps=1e6)):
        assert namespace not in netns.list_bench_namespaces()

    def device_dead() -> bool:
        try:
            return Path(f"/proc/{device_pid}/stat").read_text().split()[2] == "Z"
        except OSError:
            return True

    wait_until(device_dead, 5, "the device left running in the stale namespace killed")

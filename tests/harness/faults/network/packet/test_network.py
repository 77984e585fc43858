"""PacketNetwork: a device in the link's namespace reaching the cloud over real TLS, shaped,
with the fault proxy after the link; bridges for its local ports; teardown on failure."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.bdd.session import start_network
from harness.cloud.ca import ensure_certs
from harness.errors import ConfigError, FaultInjectionError
from harness.faults.network.link import applied_profiles
from harness.faults.network.packet import netns
from harness.faults.network.packet.flows import run_bulk_flows
from harness.faults.network.packet.network import PacketNetwork, split_backend
from harness.faults.power.process import ProcessGroupPower, live_group_members
from harness.protocols import (
    DeviceNamespace,
    Network,
    OfferedCapacity,
    RateLimitedLink,
    ReroutableLink,
)
from harness.timeline import Timeline
from tests.harness.faults.network.packet.conftest import needs_packet_links
from tests.waiting import wait_until

pytestmark = needs_packet_links

FETCH = ("import ssl,sys,urllib.request; ctx=ssl.create_default_context(cafile=sys.argv[2]); "
         "print(urllib.request.urlopen(sys.argv[1], context=ctx, timeout=20).read().decode())")


class _Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"hello from the cloud side"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def cloud_tls(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on the host's 127.0.0.1 with the emulator's own certificate (SAN localhost)."""
    certs = ensure_certs(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.server_cert, certs.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", certs.ca_cert
    server.shutdown()
    server.server_close()


def _gone(namespace: str) -> bool:
    return namespace not in netns.list_bench_namespaces() and not (netns.NETNS_ETC / namespace).exists()


def test_device_reaches_the_cloud_over_tls_across_the_shaped_link(cloud_tls: tuple[str, Path]) -> None:
    upstream, ca = cloud_tls
    with PacketNetwork(upstream, timeline=Timeline()) as network:
        assert isinstance(network, Network) and isinstance(network, DeviceNamespace)
        assert isinstance(network, RateLimitedLink) and isinstance(network, ReroutableLink)
        network.apply_profile("cellular")
        before = network.stats()["up"]["delivered"]
        fetched = network.link.run_in_namespace([sys.executable, "-c", FETCH, network.device_api_url, str(ca)],
                                                timeout=60)
        assert fetched.returncode == 0, fetched.stderr
        assert fetched.stdout.strip() == "hello from the cloud side"
        assert network.device_api_url.startswith("https://localhost:")
        assert network.congestion_control == netns.congestion_control(network.link.namespace)
        allowed = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control").read_text().split()
        if {"cubic", "reno"} & set(allowed):  # a loss-based TCP, not the host's BBR, for the device
            assert network.congestion_control in ("cubic", "reno")
        assert network.stats()["up"]["delivered"] > before  # the request crossed the forwarder
        # the cloud's own address is the host's loopback: not reachable from the namespace
        direct = network.link.run_in_namespace(
            [sys.executable, "-c", FETCH, f"https://{upstream}", str(ca)], timeout=60)
        assert direct.returncode != 0


def test_unshaped_profiles_take_the_kernels_veth_path_not_the_forwarder(cloud_tls: tuple[str, Path]) -> None:
    upstream, ca = cloud_tls
    network = PacketNetwork(upstream)
    veth = network.link._plumbed.fast_host_ifname
    try:
        def fetch() -> None:
            done = network.link.run_in_namespace([sys.executable, "-c", FETCH, network.device_api_url, str(ca)],
                                                 timeout=60)
            assert done.returncode == 0, done.stderr
        for unshaped in ("hardline", "blackout-free"):
            if unshaped == "hardline":
                network.apply_profile("hardline")
            else:
                network.clear()
            assert network.link.fast
            before = network.stats()["up"]["arrived"]
            fetch()
            assert network.stats()["up"]["arrived"] == before  # not one packet through the forwarder
        network.apply_profile("mesh-roam")
        assert not network.link.fast
        before = network.stats()["up"]["arrived"]
        fetch()
        assert network.stats()["up"]["arrived"] > before
    finally:
        network.close()
    assert subprocess.run(["ip", "link", "show", veth], capture_output=True).returncode != 0


def test_packet_profiles_shape_the_link_others_go_to_the_proxy(cloud_tls: tuple[str, Path]) -> None:
    timeline = Timeline()
    with PacketNetwork(cloud_tls[0], timeline=timeline) as network:
        network.apply_profile("packet:cellular")
        assert network.link.spec.name == "cellular" and network.profile == "cellular"
        started = [e for e in timeline.events if e.name == "profile:cellular" and e.action == "start"]
        assert started[0].details["backend"] == "packet"
        assert started[0].details["trace"] == "TMobile-LTE-short.up.gz"
        assert started[0].details["loss"] == 0.005 and started[0].details["rtt_ms"] == 100.0
        network.apply_profile("hardline")  # proxy-only: toxics, on an unshaped packet link
        assert network.link.spec.name == "passthrough" and network.proxy.profile == "hardline"
        assert network.limit_rate(4) == "limited-4mbps" and network.link.spec.name == "passthrough"
        network.apply_profile("direct-modem")
        assert network.proxy.profile is None
        assert isinstance(network, OfferedCapacity)
        now = time.time()
        assert network.offered_mbps(now, now + 140) == pytest.approx(1.91, abs=0.2)
        network.apply_profile("packet")  # the backend alone: an unshaped link
        assert network.profile is None and network.offered_mbps(now, now + 1) is None
        network.apply_profile("direct-modem")
        network.clear()
        assert network.link.spec.name == "passthrough" and network.profile is None
    applied = applied_profiles(timeline.events)
    assert [(a["profile"], a["backend"]) for a in applied] == [
        ("cellular", "packet"), ("hardline", "proxy"), ("limited-4mbps", "proxy"), ("direct-modem", "packet"),
        ("direct-modem", "packet")]
    assert applied[3]["trace"] == "ATT-LTE-driving-2016.up" and applied[3]["up_capacity_mbps"] == 1.91


def test_mesh_roam_gaps_take_the_link_down_and_are_on_the_timeline(cloud_tls: tuple[str, Path]) -> None:
    timeline = Timeline()
    with PacketNetwork(cloud_tls[0], timeline=timeline) as network:
        network.apply_profile("mesh-roam")
        wait_until(lambda: network.stats()["link_down"], 20, "the first roaming gap")
        wait_until(lambda: not network.stats()["link_down"], 5, "the link back after the gap")
        roams = [w for w in timeline.windows() if w["name"] == "phase:roaming"]
        assert roams and roams[0]["stop"] is not None
        assert 0.8 <= roams[0]["stop"] - roams[0]["start"] <= 3.0
        network.clear()
        assert not network.stats()["link_down"]


def test_local_ports_are_bridged_both_ways(cloud_tls: tuple[str, Path], tmp_path: Path) -> None:
    with PacketNetwork(cloud_tls[0]) as network:
        # the device's status page on its own loopback, read from the host's
        port = wait_free_port()
        server = network.link.popen_in_namespace(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (tmp_path / "status.json").write_text('{"ok": true}')
        network.bridge_local_port(port)
        import urllib.request

        def status() -> bytes | None:
            try:
                return bytes(urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json", timeout=2).read())
            except OSError:
                return None
        assert wait_until(status, 20, "the status page through the bridge") == b'{"ok": true}'
        server.terminate()
        # a host service on the host's loopback (the plain-HTTP trap), reached from the namespace
        host = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
        threading.Thread(target=host.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{host.server_address[1]}/"
            network.bridge_host_url(url)
            network.bridge_host_url(url)  # a fresh device in the same namespace asks again: one bridge
            network.bridge_local_port(port)
            plain = network.link.run_in_namespace(
                [sys.executable, "-c", "import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())",
                 url], timeout=30)
            assert plain.returncode == 0, plain.stderr
            assert plain.stdout.strip() == "hello from the cloud side"
        finally:
            host.shutdown()
            host.server_close()


def wait_free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_power_cut_kills_the_whole_group_launched_in_the_namespace(cloud_tls: tuple[str, Path], tmp_path: Path) -> None:
    with PacketNetwork(cloud_tls[0]) as network:
        spawn = "import signal,subprocess,sys; subprocess.Popen([sys.executable,'-c','import signal; signal.pause()']); print('up', flush=True); signal.pause()"
        power = ProcessGroupPower([*network.exec_prefix(), sys.executable, "-c", spawn], console=tmp_path / "console.log")
        power.on()
        wait_until(lambda: "up" in (tmp_path / "console.log").read_text(), 20, "the device to start")
        leader = power.pid
        assert leader is not None
        wait_until(lambda: len(live_group_members(leader)) >= 2, 10, "the device's child")
        assert os.readlink(f"/proc/{leader}/ns/net") != os.readlink("/proc/self/ns/net")  # inside the namespace
        power.off()
        assert live_group_members(leader) == []


def test_everything_is_torn_down_after_ctrl_c_and_after_a_failed_start(
    cloud_tls: tuple[str, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(KeyboardInterrupt), PacketNetwork(cloud_tls[0]) as network:
        namespace = network.link.namespace
        sleeper = network.link.popen_in_namespace([sys.executable, "-c", "import signal; signal.pause()"])
        raise KeyboardInterrupt
    assert _gone(namespace)
    assert sleeper.poll() is not None

    def refuse(namespace: str, entries: dict[str, str]) -> Path:
        raise FaultInjectionError("no /etc/netns here")
    monkeypatch.setattr(netns, "write_namespace_hosts", refuse)
    before = set(netns.list_bench_namespaces())
    with pytest.raises(FaultInjectionError):
        PacketNetwork(cloud_tls[0])
    assert set(netns.list_bench_namespaces()) <= before


def test_the_run_chooses_the_backend_from_its_profile(cloud_tls: tuple[str, Path]) -> None:
    assert split_backend("packet:cellular") == (True, "cellular")
    assert split_backend("cellular") == (False, "cellular")
    assert split_backend(None) == (False, None)
    assert split_backend("packet") == (True, None)

    class _Cloud:
        api_url = f"https://{cloud_tls[0]}"

    with pytest.raises(ConfigError, match="software device"):
        start_network(_Cloud(), Timeline(), 1, profile="packet:cellular", software_device=False)  # type: ignore[arg-type]
    network, close = start_network(_Cloud(), Timeline(), 1, profile="packet:cellular")  # type: ignore[arg-type]
    try:
        assert isinstance(network, PacketNetwork)
        namespace = network.link.namespace
    finally:
        close()
    assert _gone(namespace)
    proxy, close = start_network(_Cloud(), Timeline(), 1, profile="cellular")  # type: ignore[arg-type]
    try:
        assert not isinstance(proxy, DeviceNamespace)
    finally:
        close()


def test_sigterm_of_a_namespaced_process_is_not_needed_for_teardown(cloud_tls: tuple[str, Path]) -> None:
    """A process that ignores SIGTERM in the namespace is still gone after close (SIGKILL by namespace)."""
    network = PacketNetwork(cloud_tls[0])
    namespace = network.link.namespace
    stubborn = subprocess.Popen([*network.exec_prefix(), sys.executable, "-c",
                                 "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.pause()"],
                                start_new_session=True)
    try:
        wait_until(lambda: os.path.exists(f"/proc/{stubborn.pid}/ns/net")
                   and os.readlink(f"/proc/{stubborn.pid}/ns/net") != os.readlink("/proc/self/ns/net"),
                   10, "the process to enter the namespace")
    finally:
        network.close()
    assert stubborn.wait(10) == -signal.SIGKILL
    assert _gone(namespace)


def test_capacity_plot_puts_the_links_goodput_under_the_traces_capacity(cloud_tls: tuple[str, Path]) -> None:
    """Four bulk flows on the cellular profile: the plot's goodput (counted where the link
    delivers) never exceeds what the trace offered in a second by much, and fills a good part of it."""
    with PacketNetwork(cloud_tls[0]) as network:
        assert network.capacity_plot(time.time(), time.time() + 1) is None  # unshaped: no capacity to plot
        network.apply_profile("cellular")
        start = time.time()
        run_bulk_flows(network.link, flows=4, seconds=8.0, warmup_s=2.0)
        plot = network.capacity_plot(start, time.time(), note="test")
    assert plot is not None and plot.profile == "cellular" and plot.trace == "TMobile-LTE-short.up.gz"
    assert len(plot.capacity_mbps) == len(plot.goodput_mbps) >= 8
    carried = sum(v for _, v in plot.goodput_mbps)
    offered = sum(v for _, v in plot.capacity_mbps)
    assert 0.1 * offered < carried <= offered  # payload under wire capacity; the flows carried a share of it
    svg = plot.svg("four flows on cellular")
    assert svg.count("<polyline") == 2 and "upload window" in svg

"""Steps on the device's path to the cloud (Network protocol) and the TLS interceptor."""

from __future__ import annotations

import time

from pytest_bdd import given, parsers, when

from harness.bdd.bench import Bench
from harness.bdd.recovery import fault_ending, pending_uploads
from harness.bdd.steps.common import hold_for
from harness.bdd.steps.media_steps import capture_kind
from harness.errors import BenchFailure
from harness.protocols import RateLimitedLink


@given(parsers.parse('the network profile "{name}"'))
def _profile(bench: Bench, name: str) -> None:
    """Shape the link like a real network (hardline, cellular, bonded-cellular, hotspot, mesh-roam...)."""
    bench.network.apply_profile(name)
    bench.state.network_profile = name


@given(parsers.parse("the upload link is limited to {mbps:d} Mbps per connection"))
def _rate_limit(bench: Bench, mbps: int) -> None:
    """A slow uplink (bandwidth per TCP connection), so an upload is still running when the user acts.

    Real links are faster than their names on loopback only when the rate is not shaped;
    a per-connection limit makes every part take a known time, whatever the parallelism.
    """
    link = bench.network
    if not isinstance(link, RateLimitedLink):
        raise BenchFailure("this network link cannot be limited to a rate per connection")
    bench.state.network_profile = link.limit_rate(mbps)
    bench.state.upload_rate_mbps = mbps


@when(parsers.parse('the network profile "{name}" is applied for {seconds:d} seconds'))
def _profile_for(bench: Bench, name: str, seconds: int) -> None:
    """A network episode (e.g. isp-outage) for a while, then a clean link."""
    bench.network.apply_profile(name)
    hold_for(seconds)
    with fault_ending(bench, f"{name} episode"):
        bench.network.clear()


@when(parsers.parse('the network profile "{name}" is applied for {seconds:d} seconds while {count:d} "{kind}" files '
                    'are captured'))
def _profile_for_captures(bench: Bench, name: str, seconds: int, count: int, kind: str) -> None:
    """A network episode that starts before the captures, so they are still waiting when it ends
    (the episode meets a queue however fast the device is); then a clean link."""
    bench.network.apply_profile(name)
    started = time.monotonic()
    for _ in range(count):
        capture_kind(bench, kind, 1)
    hold_for(max(0.0, seconds - (time.monotonic() - started)))
    with fault_ending(bench, f"{name} episode"):
        bench.network.clear()


@when("the link goes down")
def _down(bench: Bench) -> None:
    """Cut the link (connections refused, live ones dropped)."""
    bench.network.link_down()


@when("the link comes back")
def _up(bench: Bench) -> None:
    """Restore the link."""
    with fault_ending(bench, "link down"):
        bench.network.link_up()


@when(parsers.parse("the link goes down for {seconds:d} seconds"))
def _down_for(bench: Bench, seconds: int) -> None:
    """A network disconnection of a given length, mid-queue: with nothing left to upload the
    queue would not be interrupted, so the bench says so (an error, not a pass)."""
    if not pending_uploads(bench):
        raise BenchFailure("the link would go down with every captured file already in the cloud: "
                           "the queue was not interrupted (capture more or larger files first)")
    bench.network.link_down()
    hold_for(seconds)
    with fault_ending(bench, f"link down {seconds} s"):
        bench.network.link_up()


@when("the network path switches")
def _switch(bench: Bench) -> None:
    """Every live connection drops and the device comes back on a new path (network change)."""
    bench.network.switch_path()


# what the interceptor's certificate is, as a scenario says it -> the flaw the bench injects
INTERCEPTOR_CERTIFICATES = {
    "an untrusted certificate": "untrusted-ca",
    "a trusted CA's certificate for another host": "wrong-host",
    "a trusted CA's expired certificate": "expired",
}


@when(parsers.re(r"a TLS interceptor with (?P<certificate>an untrusted certificate"
                 r"|a trusted CA's certificate for another host|a trusted CA's expired certificate)"
                 r" sits on the device's path$"))
def _intercept(bench: Bench, certificate: str) -> None:
    """mitmproxy in the path to the cloud, showing a certificate a correct device refuses:
    from a CA it has never seen, or from the CA it trusts but for another host or expired."""
    flaw = INTERCEPTOR_CERTIFICATES[certificate]
    bench.state.interceptor = bench.start_interceptor(flaw)
    bench.state.interceptor_certificate = certificate
    bench.state.intercept_from = time.time()


@when("the interceptor is removed")
def _unintercept(bench: Bench) -> None:
    """Back to the direct path; queued files must now upload."""
    bench.stop_interceptor()

"""The TLS interceptor's lifetime (C2C-SEC-02): mitmproxy spliced into the network link's
upstream for one scenario, and taken out again however the scenario ends.

The link keeps listening where the device connects; only its upstream moves to mitmproxy
and back, and `switch_path` cuts the device's open connections so the next ones meet (or
stop meeting) the flawed certificate.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from harness.errors import FaultInjectionError
from harness.faults.http.interceptor import Interceptor, interception
from harness.protocols import Cloud, Network, ReroutableLink
from harness.timeline import Timeline


class TlsInterception:
    """One scenario's interception: `start(flaw)` puts mitmproxy in the path, `stop()` undoes it."""

    def __init__(self, network: Network, cloud: Cloud, workdir: Path, timeline: Timeline) -> None:
        self.network = network
        self.cloud = cloud
        self.workdir = workdir
        self.timeline = timeline
        self.flaw = "untrusted-ca"
        self._proxy: contextlib.ExitStack | None = None

    @property
    def active(self) -> bool:
        return self._proxy is not None

    def start(self, flaw: str = "untrusted-ca") -> Interceptor:
        """Show the device a certificate with `flaw`.

        `untrusted-ca`: a fresh CA the device has never seen. `wrong-host` / `expired`: signed
        by the bench CA the device trusts (its key lies beside the CA bundle, ca-key.pem).
        """
        link = self.network
        if not isinstance(link, ReroutableLink):
            raise FaultInjectionError("TLS interception needs a network link whose upstream can be swapped")
        interceptor = Interceptor()
        ca = Path(self.cloud.ca_bundle)
        stack = contextlib.ExitStack()
        proxy = stack.enter_context(interception(self.cloud.api_url, ca, [interceptor], self.workdir,
                                                 flaw=flaw, ca_key=ca.with_name("ca-key.pem")))
        self._proxy = stack  # from here on stop() takes mitmproxy down, whatever fails next
        link.reroute(f"127.0.0.1:{proxy.port}")
        self.timeline.record("tls", f"{flaw}-interceptor", "start")
        self.flaw = flaw
        link.switch_path()
        return interceptor

    def stop(self) -> None:
        """Give the link its real upstream back and take mitmproxy down; nothing when not started."""
        stack, self._proxy = self._proxy, None
        if stack is None:
            return
        link = self.network
        if isinstance(link, ReroutableLink):  # start() refused any other link
            link.reroute(None)
        link.switch_path()
        stack.close()
        self.timeline.record("tls", f"{self.flaw}-interceptor", "stop")
        self.flaw = "untrusted-ca"

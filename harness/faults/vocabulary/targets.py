"""What faults act on: the bench's protocol objects, each asked for by the fault that needs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.errors import ConfigError
from harness.protocols import Cloud, Media, Network, Power
from harness.timeline import Timeline

if TYPE_CHECKING:
    from harness.faults.http.addons import ErrorRule


class TlsPath(Protocol):
    """Puts a TLS interceptor on the device's path and takes it away (the BDD bench does)."""

    def start_interceptor(self, flaw: str = "untrusted-ca") -> Any: ...
    def stop_interceptor(self) -> None: ...


class HttpErrors(Protocol):
    """Error rules inside a running mitmproxy (harness.faults.http.addons.ErrorInjector)."""

    def add(self, rule: ErrorRule) -> ErrorRule: ...
    def remove(self, rule: ErrorRule) -> None: ...


@dataclass
class FaultTargets:
    """The protocol objects faults act on. Only the ones a fault needs must be given."""

    timeline: Timeline = field(default_factory=Timeline)
    network: Network | None = None
    power: Power | None = None
    cloud: Cloud | None = None
    media: Media | None = None
    http: HttpErrors | None = None
    tls: TlsPath | None = None
    device_id: str | None = None
    project_id: str | None = None
    media_path: Path | None = None

    def network_for(self, fault: object) -> Network:
        return _given(self.network, "network", fault)

    def power_for(self, fault: object) -> Power:
        return _given(self.power, "power", fault)

    def cloud_for(self, fault: object) -> Cloud:
        return _given(self.cloud, "cloud", fault)

    def media_for(self, fault: object) -> Media:
        return _given(self.media, "media", fault)

    def http_for(self, fault: object) -> HttpErrors:
        return _given(self.http, "http", fault)

    def tls_for(self, fault: object) -> TlsPath:
        return _given(self.tls, "tls", fault)


def _given[T](value: T | None, what: str, fault: object) -> T:
    if value is None:
        raise ConfigError(f"fault {fault} needs a {what} target and none was given")
    return value

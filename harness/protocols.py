"""The five protocols Gherkin steps talk to: Power, Network, Cloud, Media, Device.

Steps never touch a concrete driver (labgrid's rule: resources vs drivers vs protocols).
A relay board, a process group or a person on the bench all look like `Power`; the
in-process Toxiproxy-compatible server and a real `toxiproxy-server` both look like
`Network`; and any device, ours or a vendor's, looks like `Device`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Power(Protocol):
    """Switches the device's supply. `off` must be abrupt (a SIGKILL or an open relay)."""

    def on(self) -> None: ...
    def off(self) -> None: ...
    def cycle(self, off_time: float | None = None) -> None: ...
    def is_on(self) -> bool | None:
        """Read-back where the backend has it, else None."""
        ...


@runtime_checkable
class Network(Protocol):
    """The device's path to the cloud."""

    @property
    def device_api_url(self) -> str:
        """The https:// base URL the device must be given (through the fault proxy)."""
        ...

    def apply_profile(self, name: str) -> None:
        """Apply a named network profile (hardline, cellular, mesh-roam, blackout ...)."""
        ...

    def link_down(self) -> None: ...
    def link_up(self) -> None: ...
    def switch_path(self) -> None:
        """Drop every live connection and come back on a new path (a network change)."""
        ...

    def drop_connections(self) -> None:
        """Close every live connection at once, link staying up: the bytes in flight are lost.

        What a power cut leaves of a device's sockets; a process killed by SIGKILL would
        otherwise have its kernel deliver the rest of a half-sent part.
        """
        ...

    def clear(self) -> None:
        """Remove every toxic and bring the link up."""
        ...


@runtime_checkable
class Cloud(Protocol):
    """The C2C cloud emulator: the oracle and its control API."""

    api_url: str
    ca_bundle: Path
    plain_http_url: str

    def client_secret(self) -> str: ...
    def create_project(self, name: str) -> dict[str, Any]: ...
    def rename_project(self, project_id: str, name: str) -> None: ...
    def pending_codes(self) -> list[dict[str, Any]]: ...
    def approve(self, user_code: str, project_id: str) -> None: ...
    def deny(self, user_code: str) -> None: ...
    def devices(self) -> list[dict[str, Any]]: ...
    def rename_device(self, device_id: str, name: str) -> dict[str, Any]: ...
    def pause_device(self, device_id: str) -> None: ...
    def resume_device(self, device_id: str) -> None: ...
    def revoke_device(self, device_id: str) -> None: ...
    def update_settings(self, **settings: Any) -> dict[str, Any]: ...
    def expire_tokens(self, device_id: str | None = None) -> None: ...
    def advance_clock(self, seconds: float) -> None: ...
    def add_fault(self, rule: dict[str, Any], client_id: str | None = None) -> str:
        """Arm an emulator rule; with `client_id`, for that device's requests only."""
    def remove_fault(self, rule_id: str) -> None: ...
    def clear_faults(self, client_id: str | None = None) -> None:
        """Remove every rule, or with `client_id` only that device's."""
    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        """Every request row after id `since`, oldest first (however many pages that takes)."""
    def now(self) -> float:
        """Emulator time: the clock journal and ledger rows are stamped with (wall + advanced)."""
    def ledger(self, device_id: str | None = None) -> list[dict[str, Any]]: ...
    def assets(self, device_id: str | None = None) -> list[dict[str, Any]]: ...
    def plain_http_attempts(self) -> list[dict[str, Any]]: ...
    def reset(self) -> None: ...


@runtime_checkable
class Media(Protocol):
    """Makes capture fixtures and corrupts them; every call adds to a manifest."""

    def generate(self, kinds: Sequence[str], directory: Path, *, count: int = 1) -> list[dict[str, Any]]: ...
    def corrupt(self, path: Path, how: str) -> dict[str, Any]: ...
    def manifest(self) -> list[dict[str, Any]]: ...


@runtime_checkable
class Device(Protocol):
    """A device under test, whatever drives it."""

    name: str
    kind: str
    firmware: str

    def start(self) -> None:
        """Power the device and wait until it is up."""
        ...

    def stop(self) -> None: ...
    def power(self) -> Power: ...
    def status(self) -> dict[str, Any] | None:
        """The device's status in the c2c-status/1 shape, or None if it offers none."""
        ...

    def pairing_code(self, timeout: float) -> str: ...
    def capture(self, files: Sequence[Path]) -> list[Path]:
        """Make the device record these files (copy to a watch folder, trigger a camera...)."""
        ...

    def control(self, action: str, **args: Any) -> bool:
        """Ask for a user action (mode, upload, cancel, priority, retry, logout, cancel_pairing).

        Returns False when the device has no automatic way to do it (an operator must).
        """
        ...

    def inspect_paths(self) -> list[Path]:
        """Logs and state the profile exposes, for secret scanning."""
        ...


@runtime_checkable
class StackDumps(Protocol):
    """A device that prints every thread's stack on request (a signal to its faulthandler).

    The evidence of a failed scenario: a device that stopped doing something without a log
    line names the call it is blocked in.
    """

    def dump_stacks(self) -> str:
        """The dump, secrets redacted; '' when this device's profile offers none.

        Raises DeviceTimeout when the device was asked and printed no dump in time.
        """
        ...


@runtime_checkable
class CloudWitness(Protocol):
    """What the emulator can witness beyond the journal, for oracles that must ask it
    rather than the device: the tokens it issued, the device-code polls it answered, and a
    device's real-time status beats. A cloud without these leaves those checks a bench error."""

    def issued_tokens(self, device_id: str) -> list[str]:
        """Access and refresh token values issued to the device (scan for them; never log them)."""
        ...

    def bench_token(self) -> str | None:
        """The run's control-plane credential, which must no more leak than a device's tokens."""
        ...

    def token_polls(self, client_id: str | None = None) -> list[dict[str, Any]]:
        """Device-code polls: {client_id, started_at, t, answer}, cloud time, oldest first."""
        ...

    def status_beats(self, device_id: str, since: float = 0.0) -> dict[str, Any]:
        """{"now": cloud time, "beats": [{"t", "kind"}]}: socket beats and heartbeats since `since`."""
        ...

    def websockets(self) -> list[dict[str, Any]]:
        """Every status socket session, open ones too (the journal has a socket once it closes)."""
        ...


@runtime_checkable
class PlainHttpTrap(Protocol):
    """A network path that records plain-HTTP requests sent to the API's own host:port
    (the first bytes of a connection are an HTTP method, not a TLS record)."""

    def plain_http_attempts(self) -> list[dict[str, Any]]:
        """{t (wall clock), method, path, client} per trapped request, oldest first."""
        ...


# --- capabilities beyond the five protocols: steps ask with isinstance, and a bench whose
# driver lacks one raises BenchFailure (never a silent pass) -------------------------------
@runtime_checkable
class LargeMedia(Protocol):
    """A media kit that makes a data file of an exact size (several upload parts)."""

    def large(self, directory: Path, size: int, *, name: str | None = None) -> dict[str, Any]: ...


@runtime_checkable
class NamedMedia(Protocol):
    """A media kit that makes a file under a name the scenario chooses (hostile names)."""

    def generate_named(self, kind: str, directory: Path, name: str) -> dict[str, Any]: ...


@runtime_checkable
class GrowingMedia(Protocol):
    """A media kit that keeps appending to a file the device already sees (a recording in
    progress): `corrupt(path, "grow", chunk=, interval=, max_bytes=)`, then `stop_growing`."""

    def corrupt(self, path: Path, how: str, **params: Any) -> dict[str, Any]: ...
    def stop_growing(self, path: Path) -> int:
        """Stop appending; returns the bytes appended."""
        ...


@runtime_checkable
class WatchFolder(Protocol):
    """A device the bench gives files by placing them in its capture folder."""

    incoming_dir: Path  # staging on the folder's filesystem, so a rename into it is atomic

    def watch_folder(self) -> Path: ...


@runtime_checkable
class ConsoleLog(Protocol):
    """A device whose console output the bench keeps (evidence of a failed scenario)."""

    def console_text(self) -> str: ...


@runtime_checkable
class ClientIdentity(Protocol):
    """A device whose OAuth client id the bench knows (to find it among the cloud's devices)."""

    client_id: str


@runtime_checkable
class ReroutableLink(Protocol):
    """A network link whose upstream can be swapped (a TLS interceptor put in the path)."""

    def reroute(self, upstream: str | None = None) -> None:
        """Send the device's traffic to `upstream` (host:port); None gives back the real one."""
        ...


@runtime_checkable
class RateLimitedLink(Protocol):
    """A network link shaped to a fixed rate per connection, beyond the named profiles."""

    def limit_rate(self, mbps: int) -> str:
        """Apply the limit; returns the name of the profile it applied."""
        ...


@runtime_checkable
class DeviceNamespace(Protocol):
    """A network link the device must run inside (a packet-level link's network namespace).

    A software device launches with `exec_prefix()` before its argv (same process, same
    process group: a power cut still SIGKILLs all of it), and asks for its local ports to be
    reachable across the namespace boundary.
    """

    def exec_prefix(self) -> list[str]: ...

    def bridge_local_port(self, port: int) -> None:
        """The device's 127.0.0.1:`port` (status page, local API) reachable at the host's."""
        ...

    def bridge_host_url(self, url: str) -> None:
        """A host-loopback service URL given to the device (the plain-HTTP trap) reachable from it."""
        ...


@runtime_checkable
class OfferedCapacity(Protocol):
    """A link that knows the capacity it offered (a packet-level link replaying a trace), so a
    throughput verdict can be relative to what the network allowed, not an absolute figure."""

    def offered_mbps(self, start: float, end: float) -> float | None:
        """Mean uplink capacity between two wall-clock times (journal times); None if unshaped."""
        ...

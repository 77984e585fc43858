"""One exception tree for the whole bench.

Every verdict the harness gives is either about the device or about the bench.
`DeviceFailure` means the device under test did something the checklist forbids
(the item fails). `BenchFailure` means our own equipment broke (emulator down,
relay busy, proxy port taken): the item's verdict is "error", never "fail".
"""

from __future__ import annotations


class C2CBenchError(Exception):
    """Base of every error raised by c2c-bench."""


# --- the device failed -------------------------------------------------------------------
class DeviceFailure(C2CBenchError):
    """The device under test did not meet a checklist requirement."""

    def __init__(self, message: str, *, item: str | None = None) -> None:
        super().__init__(message)
        self.item = item


class DeliveryFailure(DeviceFailure):
    """A captured file was lost, duplicated, corrupted or uploaded when it must not be."""


class ProtocolViolation(DeviceFailure):
    """The device broke the C2C API contract (missing header, plain HTTP, bad part sizes...)."""


class DeviceTimeout(DeviceFailure):
    """The device did not reach an expected state within the allowed time."""


# --- the bench failed ---------------------------------------------------------------------
class BenchFailure(C2CBenchError):
    """The bench itself failed; the affected verdicts are "error"."""


class ConfigError(BenchFailure):
    """A profile, option or settings file is invalid. The message names the field."""


class CloudError(BenchFailure):
    """The cloud emulator could not be started or its control API refused a call."""


class FaultInjectionError(BenchFailure):
    """A fault injector (network proxy, mitmproxy, relay, media) failed."""


class RelayError(FaultInjectionError):
    """A relay board did not answer or answered something unexpected."""


class RelayInUse(RelayError):
    """The relay board's port is held by another process or harness."""


class MediaError(FaultInjectionError):
    """A media fixture could not be generated or corrupted."""


class OperatorUnavailable(BenchFailure):
    """An item needs a person on the bench and the run is not interactive."""


class OperatorTimeout(BenchFailure):
    """The person on the bench did not answer in the time allowed (verdict "error", not "operator")."""

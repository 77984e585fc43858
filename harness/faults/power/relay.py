"""`harness.protocols.Power` over one channel of a relay board.

`on()` waits until the relay has been open at least `min_off_time` (the bookkeeping is
`MinOffTimePower`'s, shared with labgrid's power). Every flip is recorded on the fault
timeline so reports can show it beside the uploads.

Profile example (a device profile's relay channel; the board's own options are in
lcus.py, numato.py, kmtronic.py, modemlines.py):

    [power]
    driver = "relay"
    board = "lcus"        # lcus (default), numato, kmtronic, modemlines
    port = "/dev/ttyUSB0"
    channel = 1
    off_time = 2.0        # the minimum off-time
"""

from __future__ import annotations

from harness.errors import ConfigError
from harness.faults.power.base import MinOffTimePower, RelayBoard
from harness.timeline import Timeline


class RelayPower(MinOffTimePower):
    """Power for a device whose supply runs through `channel` of `board`."""

    def __init__(self, board: RelayBoard, channel: int, min_off_time: float = 2.0, *,
                 timeline: Timeline | None = None, name: str = "relay") -> None:
        super().__init__(min_off_time)
        self.board = board
        self.channel = channel
        self.timeline = timeline
        self.name = name

    def is_on(self) -> bool | None:
        """The board's read-back; None when the board has none (LCUS-1, bare DTR/RTS)."""
        return self.board.get(self.channel)

    def close(self) -> None:
        self.board.close()

    def _flip(self, on: bool) -> None:
        self.board.set(self.channel, on)
        if self.timeline is not None:
            self.timeline.record("power", self.name, "flip", state="on" if on else "off",
                                 channel=self.channel, port=self.board.port)


_POWER_KEYS = {"driver", "port", "channel", "channels", "min_off_time", "signal", "invert",
               "feedback", "timeout"}


def open_board(driver: str, port: str, *, channel: int = 1, channels: int | None = None,
               **options: object) -> RelayBoard:
    """Open a board by its profile name (`lcus`, `numato`, `kmtronic`, `modemlines`).

    Without `channels` the smallest board that has `channel` is assumed (an LCUS with
    channel 1 is then an LCUS-1, which has no read-back).
    """
    from harness.faults.power.kmtronic import KmtronicBoard
    from harness.faults.power.lcus import LcusBoard
    from harness.faults.power.modemlines import ModemLineRelay
    from harness.faults.power.numato import NumatoBoard

    timeout = float(options.pop("timeout", 1.0))  # type: ignore[arg-type]
    if driver == "modemlines":
        return ModemLineRelay(port, **options)  # type: ignore[arg-type]
    if options:
        raise ConfigError(f"power driver {driver!r} does not take {', '.join(sorted(options))}")
    if driver == "lcus":
        return LcusBoard(port, channels or channel, timeout=timeout)
    if driver == "numato":
        return NumatoBoard(port, channels or channel + 1, timeout=timeout)
    if driver == "kmtronic":
        default = next((n for n in (1, 2, 4, 8) if n >= channel), 8)
        return KmtronicBoard(port, channels or default, timeout=timeout)
    raise ConfigError(f"unknown relay driver {driver!r}; known: lcus, numato, kmtronic, modemlines")


def relay_power_from_config(config: dict[str, object], *, timeline: Timeline | None = None,
                            name: str = "relay") -> RelayPower:
    """`RelayPower` from a profile's `[power]` table (see each driver module's docstring)."""
    unknown = set(config) - _POWER_KEYS
    if unknown:
        raise ConfigError(f"[power] has unknown key(s): {', '.join(sorted(unknown))}")
    for key in ("driver", "port"):
        if not isinstance(config.get(key), str) or not config[key]:
            raise ConfigError(f"[power] {key} must be a non-empty string")
    driver, port = str(config["driver"]), str(config["port"])
    channel = config.get("channel", 0 if driver == "numato" else 1)
    if isinstance(channel, bool) or not isinstance(channel, int):
        raise ConfigError(f"[power] channel must be an integer, got {channel!r}")
    channels = config.get("channels")
    if channels is not None and (isinstance(channels, bool) or not isinstance(channels, int)):
        raise ConfigError(f"[power] channels must be an integer, got {channels!r}")
    min_off = config.get("min_off_time", 2.0)
    if isinstance(min_off, bool) or not isinstance(min_off, int | float):
        raise ConfigError(f"[power] min_off_time must be a number, got {min_off!r}")
    options = {k: config[k] for k in ("signal", "invert", "feedback", "timeout") if k in config}
    board = open_board(driver, port, channel=channel, channels=channels, **options)
    try:
        return RelayPower(board, channel, float(min_off), timeline=timeline, name=name)
    except BaseException:
        board.close()
        raise


def relay_power(port: str, channel: int, board: str | None, timeline: Timeline | None,
                off_time: float = 2.0) -> RelayPower:
    """`RelayPower` on one channel of a relay board, opened by board name (a profile's `[power]`)."""
    relay = open_board(board or "lcus", port, channel=channel)
    return RelayPower(relay, channel, min_off_time=off_time, timeline=timeline)

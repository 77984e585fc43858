"""Which sources a device runs, and the engine-side hooks of the tethered camera.

Kept out of the engine so the engine stays about queues and uploads: here the config turns
into sources (watch folders, a tethered camera), the `shutter` control action fires the
camera, and a finished upload is reported back to the source that captured the file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reference_device.config import DeviceConfig
from reference_device.sources.base import Source
from reference_device.sources.tether import TetherError, TetherNotReady, TetherRetry, TetherSource
from reference_device.sources.watch import WatchSource

log = logging.getLogger(__name__)
MAX_SHUTTER_COUNT = 100
SHUTTER_TIMEOUT = 20.0  # seconds a shutter request waits for a (re)connecting camera


def build_sources(config: DeviceConfig, on_problem: Callable[[Path, str], None]) -> list[Source]:
    """Watch folders for `media_dirs`, a tethered camera for `[sources.tether]` / --tether."""
    sources: list[Source] = []
    if config.media_dirs:
        sources.append(WatchSource(config.media_dirs, interval=config.scan_interval,
                                   quiet_period=config.quiet_period, realtime=config.realtime,
                                   max_growth_time=config.max_growth_time, on_problem=on_problem))
    if config.tether is not None:
        # gphoto2 is imported by the source's worker thread, not here: a device without the
        # library or without a camera still starts, and says so in its status.
        sources.append(TetherSource(config.tether))
    return sources


def tether_sources(sources: Sequence[Source]) -> list[TetherSource]:
    return [s for s in sources if isinstance(s, TetherSource)]


def shutter(sources: Sequence[Source], count: int, stop: threading.Event,
            timeout: float = SHUTTER_TIMEOUT) -> int:
    """Fire the tethered camera `count` times; returns how many fired.

    Waits (up to `timeout` in all) while the source is starting or the camera session is
    being re-initialised (TetherRetry). Raises ValueError naming the problem otherwise.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SHUTTER_COUNT:
        raise ValueError(f"count must be an integer from 1 to {MAX_SHUTTER_COUNT}")
    cameras = tether_sources(sources)
    if not cameras:
        raise ValueError("no tethered camera is configured ([sources.tether] or --tether)")
    camera = cameras[0]
    deadline = time.monotonic() + timeout
    fired = 0
    while fired < count:
        try:
            camera.trigger()
            fired += 1
            continue
        except TetherRetry as exc:
            problem = str(exc)
        except TetherNotReady as exc:
            # Not started yet or starting (right after power-on): wait. Searching / unplugged /
            # claimed by another program: the user must act, so say so at once.
            if camera.status().get("state") not in ("stopped", "starting"):
                raise ValueError(f"{exc} (fired {fired} of {count})") from None
            problem = str(exc)
        except TetherError as exc:
            raise ValueError(f"{exc} (fired {fired} of {count})") from None
        if time.monotonic() >= deadline or stop.wait(0.1):
            raise ValueError(f"{problem} (fired {fired} of {count} in {timeout:g} s)")
    return fired


def confirm_upload(sources: Sequence[Source], path: Path, origin: str) -> None:
    """The cloud has `path`: tell the tethered camera (card_files = until_confirmed)."""
    for camera in tether_sources(sources):
        if origin != "tether" and not path.is_relative_to(camera.config.dest):
            continue
        try:
            camera.on_confirmed(path)
        except Exception:
            log.exception("tether on_confirmed(%s) failed", path.name)


def sources_status(sources: Sequence[Source]) -> list[dict[str, Any]]:
    out = []
    for source in sources:
        try:
            out.append(source.status())
        except Exception as exc:  # a status call must never break the status page
            out.append({"kind": getattr(source, "name", "?"), "state": "error", "message": str(exc)})
    return out

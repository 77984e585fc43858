"""One emulator for every lane of a campaign, each lane seeing it through its own `LaneCloud`.

Why one: an emulator per lane was one more Python process per device on a 2-core box. Its
fault rules were global, so lanes could not share one; now a rule names the device it is for
(its client id) and the emulator answers only that device's requests with it. A `LaneCloud`
is the control client of one lane: every rule it arms, lists or clears is its device's, so a
lane's fault never touches a neighbour and each schedule can still be replayed alone.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from harness.cloud.control import CloudControl
from harness.cloud.runner import EmulatorProcess, forget_secrets
from harness.errors import CloudError, ConfigError

MIB = 1024 * 1024
CLOUD_SETTINGS = {"device_code_interval": 1, "default_part_size": 5 * MIB, "serial_ingest_rate": 20_000_000}
"""Device-code polls once a second (pairing a lane takes seconds); each device's part bodies
taken in one at a time at 20 MB/s (its own uplink: lanes do not queue behind each other), so
the parts of a large capture are stored one after another and a power cut can land between
them (resumption is exercised, as in the certification's power-cut scenario); 5 MiB parts
(the S3 minimum) for a device that leaves the part count to the cloud (c2c-api.md §11.10; the
reference device asks for size // 8 MiB parts itself)."""


class LaneCloud(CloudControl):
    """The shared emulator's control API as one lane sees it: fault rules are its device's.

    `add_fault`, `faults` and `clear_faults` default to the lane's client id; `reset` is
    refused (it would wipe every lane). Everything else is the shared emulator's as is."""

    def __init__(self, control: CloudControl, client_id: str) -> None:
        super().__init__(control.api_url, control.ca_bundle, plain_http_url=control.plain_http_url,
                         client_secret_file=control.client_secret_file, token_file=control.token_file)
        self.client_id = client_id

    def add_fault(self, rule: dict[str, Any], client_id: str | None = None) -> str:
        return super().add_fault(rule, client_id or self.client_id)

    def faults(self, client_id: str | None = None) -> list[dict[str, Any]]:
        return super().faults(client_id or self.client_id)

    def clear_faults(self, client_id: str | None = None) -> None:
        super().clear_faults(client_id or self.client_id)

    def reset(self) -> None:
        raise ConfigError("a chaos lane must not reset the emulator its neighbours share")


class SharedCloud:
    """The campaign's emulator: started once, closed (and its secrets forgotten) at the end."""

    def __init__(self, data_dir: Path) -> None:
        self.emulator = EmulatorProcess(data_dir, settings=dict(CLOUD_SETTINGS))
        self._closed = False

    def start(self) -> SharedCloud:
        self.emulator.start()
        if self.emulator.control is None:
            self.emulator.close()
            raise CloudError("the emulator started without a control client")
        return self

    @property
    def control(self) -> CloudControl:
        if self.emulator.control is None:
            raise CloudError("the shared emulator is not running")
        return self.emulator.control

    def lane_cloud(self, client_id: str) -> LaneCloud:
        return LaneCloud(self.control, client_id)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for step in (self.emulator.close, lambda: forget_secrets(self.emulator.data_dir)):
            with contextlib.suppress(Exception):
                step()

    def __enter__(self) -> SharedCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Security suite: one real emulator per session (harness.cloud.testing fixtures)."""

from __future__ import annotations

from harness.cloud.testing import (  # noqa: F401 - pytest fixtures
    api,
    cloud,
    cloud_process,
    paired_device,
)

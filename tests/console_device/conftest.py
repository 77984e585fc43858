"""A real emulator process for the stand-in's tests (session), reset before each test."""

from harness.cloud.testing import cloud, cloud_process  # noqa: F401 - pytest fixtures

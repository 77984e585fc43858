"""A real emulator for the tests that read the cloud's journal (started only if asked for)."""

from harness.cloud.testing import api, cloud, cloud_process, paired_device  # noqa: F401

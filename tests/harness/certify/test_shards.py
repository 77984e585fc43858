"""Which scenarios a sharded run keeps on one worker, and what it refuses to shard."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.certify.cli import pytest_command
from harness.certify.shards import check_shardable, exclusive_group, xdist_args
from harness.errors import ConfigError

POWER_CUT = ["a fresh device", "the power is cut once the cloud has received part of the upload"]
INTERCEPTOR = ["When a TLS interceptor with an untrusted certificate sits on the device's path"]


def test_relay_power_cuts_share_one_worker_process_power_does_not() -> None:
    assert exclusive_group(POWER_CUT, power_driver="relay", network_profile=None) == "power-relay"
    assert exclusive_group(POWER_CUT, power_driver="process", network_profile=None) is None


def test_interceptor_scenarios_are_grouped_plain_ones_are_free() -> None:
    assert exclusive_group(INTERCEPTOR, power_driver="process", network_profile=None) == "tls-interceptor"
    assert exclusive_group(["a file is captured"], power_driver="process", network_profile="lte") is None


def test_a_namespace_network_holds_every_scenario() -> None:
    for profile in ("packet", "packet:cellular"):
        assert exclusive_group(["a file is captured"], power_driver="process", network_profile=profile) == "netns"
    assert exclusive_group(["a file is captured"], power_driver="process", network_profile="packetised") is None


def test_one_physical_device_or_one_person_is_not_sharded() -> None:
    check_shardable(1, launchable=False, interactive=True)
    check_shardable(4, launchable=True, interactive=False)
    with pytest.raises(ConfigError, match="launch"):
        check_shardable(2, launchable=False, interactive=False)
    with pytest.raises(ConfigError, match="interactive"):
        check_shardable(2, launchable=True, interactive=True)
    with pytest.raises(ConfigError, match="at least 1"):
        check_shardable(0, launchable=True, interactive=False)


def test_workers_become_xdist_loadgroup_arguments() -> None:
    assert xdist_args(1) == []
    argv = pytest_command("reference", reports=Path("/tmp/r"), workers=3)
    assert argv[argv.index("-n") + 1] == "3" and argv[argv.index("--dist") + 1] == "loadgroup"
    assert "-n" not in pytest_command("reference", reports=Path("/tmp/r"))

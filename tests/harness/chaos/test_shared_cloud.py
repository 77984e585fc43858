"""Two lanes' views of one real emulator: each lane's rules are its device's alone."""

from __future__ import annotations

import pytest

from harness.chaos.shared_cloud import LaneCloud
from harness.cloud.control import CloudControl
from harness.errors import ConfigError
from harness.faults.vocabulary import FaultTargets, inject


def test_each_lane_arms_lists_and_clears_only_its_own_devices_rules(cloud: CloudControl) -> None:
    with LaneCloud(cloud, "cam-lane-1") as one, LaneCloud(cloud, "cam-lane-2") as two:
        inject("s3:slowdown x2", FaultTargets(cloud=one))  # through the vocabulary, as a schedule does
        inject("api:internal-error x1", FaultTargets(cloud=two))
        assert [(r["kind"], r["client_id"]) for r in one.faults()] == [("slowdown", "cam-lane-1")]
        assert [(r["kind"], r["client_id"]) for r in two.faults()] == [("internal_error", "cam-lane-2")]
        one.clear_faults()  # a lane put back between schedules
        assert one.faults() == [] and len(two.faults()) == 1
        with pytest.raises(ConfigError, match="neighbours"):
            one.reset()
        assert len(cloud.faults()) == 1

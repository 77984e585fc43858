"""Validation answers the contract leaves to inference are settings, with their evidence beside them.

c2c-api.md names the status for realtime parts (§3.10, 400 [SPEC]) and comments (§3.11, 400
[DOC]); those are pinned in test_realtime.py / test_devices.py. Where it says [INF] the
emulator keeps its choice in `harness.cloud.settings` and a bench can switch it: these tests
pin the default and the switch.
"""

from __future__ import annotations

from dataclasses import fields

import httpx
import pytest

from harness.cloud.control import CloudControl
from harness.cloud.settings import ANSWER_EVIDENCE, CloudSettings
from harness.cloud.testing import DEVICE_GRANT, PairedDevice
from harness.errors import ConfigError

from .conftest import assert_detailed, create_asset

TAGS = {"DOC", "SPEC", "SDK", "OBS", "INF"}


def test_answer_evidence_names_real_settings_with_a_known_tag() -> None:
    names = {f.name for f in fields(CloudSettings)}
    assert set(ANSWER_EVIDENCE) <= names
    for name, evidence in ANSWER_EVIDENCE.items():
        assert evidence.tag in TAGS, name
        assert evidence.section.startswith("§"), name


@pytest.mark.parametrize("status", [400, 422])
def test_asset_create_validation_status_is_a_setting(api: httpx.Client, cloud: CloudControl,
                                                     paired_device: PairedDevice,
                                                     status: int) -> None:
    """§3.8 says "400/422" [INF]: default 422, a bench may switch to 400; both paths alike."""
    if status != 422:
        cloud.update_settings(asset_create_invalid_status=status)
    for path in ("/v2/devices/assets", "/v2/assets"):
        answer = create_asset(api, paired_device, path, filetype="video/mp4", filesize=10)
        assert "name is required" in assert_detailed(answer, status)["errors"][0]["detail"]
    assert cloud.assets() == []


def test_channel_validation_status_is_a_setting(api: httpx.Client, cloud: CloudControl,
                                                paired_device: PairedDevice) -> None:
    """§3.12 lists only 401/409 for connect [DOC]; a bad body's status is [INF]."""
    bad = {"client_id": "x"}
    assert_detailed(api.post("/v2/devices/channels", json=bad, headers=paired_device.headers), 422)
    cloud.update_settings(channel_invalid_status=400)
    assert_detailed(api.post("/v2/devices/channels", json=bad, headers=paired_device.headers), 400)


@pytest.mark.parametrize("status", [400, 401])
def test_refresh_reuse_status_is_a_setting(api: httpx.Client, cloud: CloudControl,
                                           paired_device: PairedDevice, status: int) -> None:
    """§2.2: the body {"error":"invalid_request"} is [DOC], its status 400 is [INF] (§11.8)."""
    if status != 400:
        cloud.update_settings(refresh_reuse_status=status)
    form = {"grant_type": "refresh_token", "client_id": paired_device.client_id,
            "client_secret": paired_device.client_secret,
            "refresh_token": paired_device.refresh_token}
    assert api.post("/v2/auth/token", data=form).status_code == 200
    again = api.post("/v2/auth/token", data=form)
    assert again.status_code == status and again.json() == {"error": "invalid_request"}
    assert DEVICE_GRANT.startswith("urn:")  # the other grant is untouched by this setting


@pytest.mark.parametrize(("name", "value"), [
    ("asset_create_invalid_status", 500), ("channel_invalid_status", 401),
    ("refresh_reuse_status", 422),
])
def test_answer_settings_refuse_statuses_outside_the_contract(name: str, value: int) -> None:
    with pytest.raises(ConfigError, match=name):
        CloudSettings().updated({name: value})

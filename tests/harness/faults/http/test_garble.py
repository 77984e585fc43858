"""The garbler in front of the real emulator, showing leaves minted from the bench CA: a client
that trusts only the bench CA reads each malformed answer as the cloud's, and rules run out."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from harness.cloud.testing import FIRMWARE, cloud, cloud_process, paired_device  # noqa: F401
from harness.errors import ConfigError
from harness.faults.http.addons import ErrorInjector
from harness.faults.http.garble import (
    GARBLE_KINDS,
    AnswerGarbler,
    GarbleRule,
    garble_fault,
    trusted_path,
)


def without_clock(device: dict[str, object]) -> dict[str, object]:
    """The device's record without the field that ticks with every request a second apart."""
    return {key: value for key, value in device.items() if key != "last_seen_at"}


def test_each_kind_reaches_a_client_that_trusts_only_the_bench_ca(tmp_path: Path, cloud, paired_device) -> None:  # noqa: F811
    garbler = AnswerGarbler()
    headers = {"Authorization": f"Bearer {paired_device.access_token}", "x-client-version": FIRMWARE}
    before = len([j for j in cloud.journal() if j["path"] == "/v2/devices/me"])
    with trusted_path(cloud.api_url, Path(cloud.ca_bundle), [garbler], tmp_path) as proxy:
        verify = ssl.create_default_context(cafile=str(cloud.ca_bundle))
        with httpx.Client(base_url=proxy.url, verify=verify, headers=headers, timeout=30) as http:
            real = http.get("/v2/devices/me")
            assert real.status_code == 200 and real.json()["id"]
            seen: dict[str, httpx.Response] = {}
            for kind in ("html-200", "empty-200", "truncated-json", "html-403", "unlisted-status",
                         "wrong-types", "missing-fields"):
                garbler.garble(GarbleRule(kind=kind, path=r"^/v2/devices/me$"))
                seen[kind] = http.get("/v2/devices/me")
            stop = garble_fault(garbler, "huge-200", {"path": "^/v2/devices/me$", "size": 2_000_000, "count": 1})
            seen["huge-200"] = http.get("/v2/devices/me")
            stop()
            after = http.get("/v2/devices/me")
    assert seen["html-200"].status_code == 200 and b"<html>" in seen["html-200"].content
    assert seen["html-200"].headers["content-type"] == "text/html"
    assert seen["empty-200"].status_code == 200 and seen["empty-200"].content == b""
    with pytest.raises(ValueError):
        seen["truncated-json"].json()
    assert seen["html-403"].status_code == 403 and seen["unlisted-status"].status_code == 418
    mistyped = seen["wrong-types"].json()
    assert set(mistyped) == set(real.json()) and isinstance(mistyped["id"], int)
    assert seen["missing-fields"].json() == {}
    assert len(seen["huge-200"].content) == 2_000_000
    # every rule ran out: the cloud's own answer again (last_seen_at is a clock: it moves when
    # a second or more passes between the two reads, as it did on a loaded CI machine)
    assert after.status_code == 200
    assert without_clock(after.json()) == without_clock(real.json())
    assert after.json()["last_seen_at"] >= real.json()["last_seen_at"]
    assert [g.kind for g in garbler.garbled][:2] == ["html-200", "empty-200"]
    assert len(garbler.garbled) == 8
    # answer kinds never reached the cloud; rewrites did (the cloud answered, then was spoiled)
    reached = [j for j in cloud.journal() if j["path"] == "/v2/devices/me"]
    assert len(reached) - before == 1 + 2 + 1


def test_a_body_rule_garbles_refreshes_not_polls(tmp_path: Path, cloud) -> None:  # noqa: F811
    garbler = AnswerGarbler()
    garbler.garble(GarbleRule(kind="html-200", path=r"^/v2/auth/token$", request_body="refresh_token", count=None))
    with trusted_path(cloud.api_url, Path(cloud.ca_bundle), [garbler], tmp_path) as proxy:
        verify = ssl.create_default_context(cafile=str(cloud.ca_bundle))
        with httpx.Client(base_url=proxy.url, verify=verify, timeout=30) as http:
            poll = http.post("/v2/auth/token", files={"grant_type": (None, "urn:ietf:params:oauth:grant-type:device_code"),
                                                      "client_id": (None, "x"), "device_code": (None, "y")})
            refresh = http.post("/v2/auth/token", data={"grant_type": "refresh_token", "client_id": "x",
                                                        "refresh_token": "z"})
    assert poll.headers["content-type"].startswith("application/json")  # the cloud's own refusal
    assert refresh.status_code == 200 and b"<html>" in refresh.content
    assert [g.kind for g in garbler.garbled] == ["html-200"]


def test_hang_closes_without_an_answer(tmp_path: Path, cloud, paired_device) -> None:  # noqa: F811
    garbler = AnswerGarbler()
    garbler.garble(GarbleRule(kind="hang", path=r"^/v2/devices/me$", seconds=1.0))
    headers = {"Authorization": f"Bearer {paired_device.access_token}", "x-client-version": FIRMWARE}
    with trusted_path(cloud.api_url, Path(cloud.ca_bundle), [garbler], tmp_path) as proxy:
        verify = ssl.create_default_context(cafile=str(cloud.ca_bundle))
        with httpx.Client(base_url=proxy.url, verify=verify, headers=headers, timeout=30) as http:
            with pytest.raises(httpx.HTTPError):
                http.get("/v2/devices/me")
            assert http.get("/v2/devices/me").status_code == 200


def test_bad_rules_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown garble kind"):
        GarbleRule(kind="teapot")
    with pytest.raises(ConfigError, match="unknown parameter"):
        garble_fault(AnswerGarbler(), "html-200", {"colour": "red"})
    with pytest.raises(ConfigError, match="needs an AnswerGarbler"):
        garble_fault(ErrorInjector(), "html-200", {})
    assert set(GARBLE_KINDS) >= {"html-200", "empty-200", "truncated-json", "huge-200"}

"""The 409 `slow_down` / `invalid_client` kinds of asset creation: the shared table, the
vocabulary's api: and http: forms, then through the real emulator over HTTPS."""

from __future__ import annotations

import json

import httpx
import pytest

from harness.cloud.fault_responses import (
    ALL_KINDS,
    API_ONLY_KINDS,
    api_error,
    check_kind,
    error_response,
    s3_error,
)
from harness.cloud.paths import ASSET_CREATE_PATH
from harness.cloud.testing import api, cloud, cloud_process, paired_device  # noqa: F401
from harness.errors import ConfigError
from harness.faults.cloud import fault_rule
from harness.faults.http.addons import ErrorInjector
from harness.faults.vocabulary import REGISTRY, Fault, FaultTargets, active, inject
from harness.timeline import Timeline

from .test_cloud_faults import FakeCloud

MESSAGES = {"conflict_slow_down": "slow_down", "conflict_invalid_client": "invalid_client"}


# --- the table -----------------------------------------------------------------------------
def test_the_table_lists_the_409_kinds_as_api_only() -> None:
    assert set(API_ONLY_KINDS) == set(MESSAGES)
    assert set(MESSAGES) <= set(ALL_KINDS)


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_detailed_409_with_the_exact_message(kind: str) -> None:
    status, body, headers = api_error(kind, "/v2/devices/assets")
    payload = json.loads(body)
    assert status == 409 and payload["code"] == 409
    assert payload["message"] == MESSAGES[kind]
    (error,) = payload["errors"]
    assert error["code"] == error["status"] == 409
    assert error["title"] == MESSAGES[kind] and error["detail"]
    assert headers == {"Content-Type": "application/json"}  # no Retry-After unless asked
    assert api_error(kind, retry_after=4)[2]["Retry-After"] == "4"


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_simple_shape_on_auth_paths(kind: str) -> None:
    status, body, _ = api_error(kind, "/v2/auth/token")
    assert status == 409 and json.loads(body) == {"error": MESSAGES[kind]}


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_s3_target_is_a_clear_config_error(kind: str) -> None:
    for call in (lambda: check_kind(kind, "s3"), lambda: s3_error(kind),
                 lambda: error_response("s3", kind), lambda: fault_rule("s3", kind)):
        with pytest.raises(ConfigError, match=rf"{kind}.*S3 never sends: use target 'api'"):
            call()
    assert check_kind(kind, "api") is not None and check_kind(kind) is not None


def test_the_other_kinds_still_answer_s3() -> None:
    assert s3_error("slowdown")[0] == 503
    assert check_kind("expired_url", "s3") is not None


# --- the vocabulary's api: form ----------------------------------------------------------------
def test_asset_conflict_rule_and_timeline() -> None:
    fake, timeline = FakeCloud(), Timeline()
    targets = FaultTargets(timeline=timeline, cloud=fake)
    running = [inject("api:conflict-slow-down x4", targets),
               inject("api:conflict-invalid-client retry_after=2", targets)]
    assert fake.rules["f1"] == {"target": "api", "kind": "conflict_slow_down", "count": 4,
                                "path": ASSET_CREATE_PATH, "method": "POST"}
    assert fake.rules["f2"]["kind"] == "conflict_invalid_client"
    assert fake.rules["f2"]["retry_after"] == 2 and fake.rules["f2"]["count"] == 1
    for fault in running:
        fault.stop()
    names = sorted(w["name"] for w in timeline.windows())
    assert names == ["api-conflict-invalid-client", "api-conflict-slow-down"]
    assert all(w["stop"] is not None for w in timeline.windows())


@pytest.mark.parametrize(("text", "error"), [
    ("api:conflict-channel-paused", "unknown fault"),
    ("api:conflict-slowdown", "unknown fault"),
    ("api:conflict-slow-down count=0", "count"),
])
def test_bad_asset_conflicts_are_refused_before_sending(text: str, error: str) -> None:
    fake = FakeCloud()
    with pytest.raises(ConfigError, match=error):
        inject(text, FaultTargets(cloud=fake))
    assert fake.rules == {}


# --- vocabulary ----------------------------------------------------------------------------
def test_vocabulary_has_api_and_http_forms_but_no_s3_form() -> None:
    for name in ("conflict-slow-down", "conflict-invalid-client"):
        assert ("cloud", f"api-{name}") in REGISTRY and ("http", name) in REGISTRY
        assert ("cloud", f"s3-{name}") not in REGISTRY
    with pytest.raises(ConfigError, match="unknown fault 's3:conflict-slow-down'"):
        Fault.parse("s3:conflict-slow-down")


def test_vocabulary_aims_the_409s_at_asset_creation() -> None:
    fake = FakeCloud()
    running = inject("api:conflict-slow-down x4", FaultTargets(cloud=fake))
    assert list(fake.rules.values()) == [{"target": "api", "kind": "conflict_slow_down", "count": 4,
                                          "path": ASSET_CREATE_PATH, "method": "POST"}]
    running.stop()
    inject("api:conflict-invalid-client path=^/v2/devices/me method=GET", FaultTargets(cloud=fake))
    assert next(iter(fake.rules.values()))["path"] == "^/v2/devices/me"


def test_http_form_defaults_to_the_api_target() -> None:
    injector = ErrorInjector()
    with active("http:conflict-invalid-client x2", FaultTargets(http=injector)):
        (rule,) = injector.rules
        assert (rule.kind, rule.target, rule.count, rule.path, rule.method) == (
            "conflict_invalid_client", "api", 2, ASSET_CREATE_PATH, "POST")
    with pytest.raises(ConfigError, match="use target 'api'"):
        inject("http:conflict-slow-down target=s3", FaultTargets(http=injector))
    assert injector.rules == []


# --- through the real emulator -------------------------------------------------------------
def test_asset_conflict_on_the_emulator(cloud, api, paired_device) -> None:  # noqa: F811
    targets = FaultTargets(cloud=cloud)
    body = {"name": "A001.jpg", "filetype": "image/jpeg", "filesize": 10, "offset": 1}
    inject("api:conflict-slow-down x2", targets)
    for path in ("/v2/devices/assets", "/v2/assets"):
        answer = api.post(path, json=body, headers=paired_device.headers)
        assert answer.status_code == 409 and answer.json()["message"] == "slow_down"
    inject("api:conflict-invalid-client", targets)
    answer = api.post("/v2/devices/assets", json=body, headers=paired_device.headers)
    assert answer.status_code == 409 and answer.json()["message"] == "invalid_client"
    created = api.post("/v2/devices/assets", json=body, headers=paired_device.headers)
    assert created.status_code == 200, created.text
    assert isinstance(created, httpx.Response)

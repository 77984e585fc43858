"""Applicability as data: the expression grammar, the checklist's use of it, the certificate's."""

from __future__ import annotations

import copy
import tomllib

import pytest

from harness.certify.certificate import build_certificate
from harness.errors import ConfigError
from harness.items.applies import ProfileCodes, parse_applies
from harness.items.checklist import DEFAULT_CHECKLIST, codes, load_checklist, parse_checklist

CHECKLIST = load_checklist()
RAW = tomllib.loads(DEFAULT_CHECKLIST.read_text(encoding="utf-8"))
CAMERA = ProfileCodes("camera", frozenset({"parallel", "status"}))


@pytest.mark.parametrize(("text", "expected"), [
    ("all", True),
    ("kind == camera", True),
    ("kind in [encoder, audio]", False),
    ("has(parallel)", True),
    ("has(priority)", False),
    ("not has(priority)", True),
    ("kind == camera and has(status)", True),
    ("kind == app or has(priority)", False),
    ("kind == app or has(parallel) and has(status)", True),  # and binds tighter than or
    ("(kind == app or has(parallel)) and not has(status)", False),
    ("not not kind in [camera]", True),
])
def test_expressions_evaluate_over_kind_and_capabilities(text: str, expected: bool) -> None:
    expr = parse_applies(text)
    assert expr.evaluate(CAMERA) is expected
    assert parse_applies(str(expr)) == expr  # the canonical text reads back to the same expression


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("kind == toaster", "expected a device kind"),
    ("has(paralel)", "expected a capability"),
    ("kind in [camera", "expected ']'"),
    ("has(parallel) and", "expected 'all'"),
    ("__import__('os')", "cannot read"),
    ("all all", "expected 'and', 'or' or the end"),
])
def test_a_bad_expression_is_a_config_error_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_applies(text, "item C2C-X-01 field 'applies'")
    assert "C2C-X-01" in str(info.value)


def test_unknown_capabilities_never_drop_an_item() -> None:
    """An old record without capabilities: only the kind can exclude (never "test nothing")."""
    assert parse_applies("has(parallel)").evaluate(ProfileCodes("app", None))
    assert parse_applies("kind == camera").evaluate(ProfileCodes("", frozenset()))


def _item(item_id: str) -> dict[str, object]:
    return next(i for i in RAW["item"] if i["id"] == item_id)


def test_a_required_item_may_not_depend_on_a_capability() -> None:
    data = copy.deepcopy(RAW)
    next(i for i in data["item"] if i["id"] == "C2C-WF-04")["applies"] = "kind == camera and has(proxies)"
    with pytest.raises(ConfigError, match="required"):
        parse_checklist(data)
    data = copy.deepcopy(RAW)
    del next(i for i in data["item"] if i["id"] == "C2C-UPL-01")["applies"]
    with pytest.raises(ConfigError, match="missing field 'applies'"):
        parse_checklist(data)
    data = copy.deepcopy(RAW)
    data["scenario_applies"] = {"No such scenario": "has(tether)"}
    with pytest.raises(ConfigError, match="no item lists"):
        parse_checklist(data)


def test_the_packaged_checklist_decides_applicability_from_data() -> None:
    assert CHECKLIST["C2C-UPL-03"].applies_to("camera") and not CHECKLIST["C2C-UPL-03"].applies_to("app")
    assert not CHECKLIST["C2C-OPT-05"].applies_to("camera", ["status"])
    assert CHECKLIST["C2C-OPT-05"].applies_to("camera", ["parallel"])
    # every capability-dependent item is optional
    assert all(i.optional for i in CHECKLIST if i.applies.capabilities)
    no_proxies = codes("camera", ["status"])
    reason = CHECKLIST.scenario_not_applicable("Proxies match their hero file", ["C2C-WF-04"], no_proxies)
    assert reason is not None and "has(proxies)" in reason
    assert CHECKLIST.scenario_not_applicable("Proxies match their hero file", ["C2C-WF-04"], codes("camera", ["proxies"])) is None
    assert CHECKLIST.scenario_not_applicable("Captured media is uploaded automatically", ["C2C-UPL-01"], no_proxies) is None
    burst = CHECKLIST.scenario_not_applicable("A burst of captures is uploaded concurrently", ["C2C-OPT-05"], no_proxies)
    assert burst is not None and "C2C-OPT-05 applies when has(parallel)" in burst


def _whole_run() -> list[dict[str, object]]:
    by_name: dict[str, list[str]] = {}
    for item in CHECKLIST:
        for ref in item.scenarios:
            by_name.setdefault(ref.name, []).append(item.id)
    return [{"scenario": n, "outline": n, "items": ids, "verdict": "pass", "reason": "", "measurements": []}
            for n, ids in by_name.items()]


def test_the_certificate_gives_the_expression_as_the_reason_and_it_is_sticky() -> None:
    device = {"name": "dut", "kind": "app", "firmware": "1", "capabilities": [], "not_applicable": {}}
    results = _whole_run()
    for r in results:
        if "C2C-OPT-05" in r["items"]:  # type: ignore[operator]
            r["verdict"] = "fail"  # it ran anyway (an old run): the checklist said first it does not apply
    cert = build_certificate(results, device, checklist=CHECKLIST)
    entry = cert["items"]["C2C-OPT-05"]
    assert entry["verdict"] == "not-applicable" and entry["applies"] == "has(parallel)"
    assert "applies it when has(parallel)" in entry["reason"] and "device kind app" in entry["reason"]
    assert cert["items"]["C2C-WF-04"]["verdict"] == "not-applicable"  # kind in [encoder, camera]
    assert "C2C-OPT-05" not in cert["summary"]["declared_not_applicable"]
    # a required item is never excluded by a missing capability: WF-04 on a camera without proxies
    # whose scenarios were skipped as not applicable needs a person (or a declaration)
    camera = {**device, "kind": "camera"}
    skipped = [{**r, "verdict": "not-applicable"} if "C2C-WF-04" in r["items"] else r for r in _whole_run()]  # type: ignore[operator]
    assert build_certificate(skipped, camera, checklist=CHECKLIST)["items"]["C2C-WF-04"]["verdict"] == "operator"

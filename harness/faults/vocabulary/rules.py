"""Error-rule faults: the emulator (`s3:`, `api:`, the token endpoint) or mitmproxy (`http:`) answers with an error.

The emulator's rule format stays private to `harness.faults.cloud` (`arm`).
"""

from __future__ import annotations

from typing import Any

from harness.cloud.fault_responses import API_ONLY_KINDS, check_kind
from harness.cloud.paths import ASSET_CREATE_PATH, TOKEN_RULE
from harness.errors import ConfigError
from harness.faults.cloud import EVERY_TIME, S3_KINDS, arm
from harness.faults.vocabulary.language import Fault, StartFn, StopFn, register
from harness.faults.vocabulary.targets import FaultTargets


def _rule_args(f: Fault, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    unknown = set(f.params) - {"count", "path", "method", "retry_after", *extra}
    if unknown:
        raise ConfigError(f"fault {f}: unknown parameter(s) {', '.join(sorted(unknown))}")
    args: dict[str, Any] = {k: f.params[k] for k in ("path", "method", "retry_after") if k in f.params}
    args["count"] = int(f.params.get("count", 1))
    return args


def _asset_create_default(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """API-only kinds (the 409s of asset creation) aim at asset creation unless told otherwise."""
    if kind in API_ONLY_KINDS and "path" not in args:
        args = {**args, "path": ASSET_CREATE_PATH, "method": args.get("method", "POST")}
    return args


@register("auth", "refresh-failure")
def _refresh_failure(t: FaultTargets, f: Fault) -> StopFn:
    """The token endpoint as a whole fails, so device-code polls fail too while it is active."""
    return arm(t.cloud_for(f), "api", str(f.params.get("kind", "unauthorized")),
               count=int(f.params.get("count", EVERY_TIME)), path=TOKEN_RULE, method="POST")


@register("auth", "poll-slow-down")
def _poll_slow_down(t: FaultTargets, f: Fault) -> StopFn:
    return arm(t.cloud_for(f), "api", "slow_down",
               **_rule_args(f) | {"path": TOKEN_RULE, "method": "POST"})


def _cloud_rule(target: str, kind: str) -> StartFn:
    def start(t: FaultTargets, f: Fault) -> StopFn:
        return arm(t.cloud_for(f), target, kind, **_asset_create_default(kind, _rule_args(f)))

    return start


def _http_rule(kind: str) -> StartFn:
    def start(t: FaultTargets, f: Fault) -> StopFn:
        from harness.faults.http.addons import ErrorRule

        injector = t.http_for(f)
        args = _asset_create_default(kind, _rule_args(f, extra=("target",)))
        target = str(f.params.get("target", "api" if kind in API_ONLY_KINDS else "s3"))
        check_kind(kind, target)
        rule = injector.add(ErrorRule(kind=kind, target=target, **args))
        return lambda: injector.remove(rule)

    return start


for _kind in S3_KINDS:
    _hyphen = _kind.replace("_", "-")
    if _kind not in API_ONLY_KINDS:
        register("cloud", f"s3-{_hyphen}")(_cloud_rule("s3", _kind))
    register("cloud", f"api-{_hyphen}")(_cloud_rule("api", _kind))
    register("http", _hyphen)(_http_rule(_kind))

"""Auth and cloud-side faults, through the emulator's control API (`harness.protocols.Cloud`).

These are the faults the cloud itself produces: tokens that expire now, a refresh that
fails, a revoked device, a paused device, a renamed project, S3 and API error rules, the
409 answers of asset creation (`slow_down`, `invalid_client`, c2c-api.md §3.8). Each
call records itself on the fault timeline (instant faults as a start/stop pair at the same
moment, lasting ones as a window closed by the matching call or by `clear()`), so reports
show exactly when the cloud misbehaved.

    faults = CloudFaults(cloud, timeline)
    faults.s3_error("slowdown", count=3)
    faults.asset_conflict("slow_down", count=4)
    with faults.paused(device_id):
        ...
    faults.clear()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.cloud.fault_responses import ALL_KINDS, check_kind
from harness.cloud.paths import ASSET_CREATE_PATH, TOKEN_RULE
from harness.errors import ConfigError
from harness.protocols import Cloud
from harness.timeline import Timeline

S3_KINDS = ALL_KINDS
"""slowdown, internal_error, request_timeout, expired_url, too_many_requests, unauthorized, drop,
and the API-only conflict_slow_down, conflict_invalid_client (refused for target s3)."""

CONFLICT_MESSAGES = ("slow_down", "invalid_client")
"""The `message` of the spec's other 409s on asset creation -> kind `conflict_<message>`."""
EVERY_TIME = 1_000_000
"""`count` for a rule that should keep firing until cleared (the emulator needs a number)."""


def kind_name(kind: str) -> str:
    """The vocabulary's spelling of a rule kind (`internal_error` -> `internal-error`)."""
    return kind.replace("_", "-")


def fault_rule(target: str, kind: str, *, count: int = 1, path: str | None = None,
               method: str | None = None, retry_after: int | None = None) -> dict[str, Any]:
    """A rule in the shape of the emulator's `/faults` API (CONTRACTS.md §2), validated here
    so a typo fails with the bad field named before anything is sent."""
    kind = kind.replace("-", "_")
    if target not in ("s3", "api"):
        raise ConfigError(f"fault target must be 's3' or 'api', got {target!r}")
    if kind not in S3_KINDS:
        raise ConfigError(f"unknown fault kind {kind!r}; known kinds: {', '.join(S3_KINDS)}")
    check_kind(kind, target)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"fault count must be an integer >= 1, got {count!r}")
    rule: dict[str, Any] = {"target": target, "kind": kind, "count": count}
    if path is not None:
        rule["path"] = path
    if method is not None:
        rule["method"] = method.upper()
    if retry_after is not None:
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
            raise ConfigError(f"retry_after must be an integer >= 0, got {retry_after!r}")
        rule["retry_after"] = retry_after
    return rule


class CloudFaults:
    """Cloud-side fault injection for one emulator, recorded on one timeline."""

    def __init__(self, cloud: Cloud, timeline: Timeline | None = None) -> None:
        self.cloud = cloud
        self.timeline = timeline if timeline is not None else Timeline()
        self._open_rules: dict[str, tuple[str, str, dict[str, Any]]] = {}

    # -- auth ---------------------------------------------------------------------------
    def expire_tokens(self, device_id: str | None = None) -> None:
        """Every access token (or one device's) expires now; the device must refresh."""
        self.cloud.expire_tokens(device_id)
        self._instant("auth", "expire-tokens", device_id=device_id)

    def fail_refresh(self, *, kind: str = "unauthorized", count: int = EVERY_TIME) -> str:
        """Make `/v2/auth/token` answer with an error `count` times (until `clear()` by default).

        The rule matches the token endpoint as a whole, so device-code polling fails too
        while it is active; inject it once the device is paired.
        """
        return self._add_rule("auth", "refresh-failure",
                              fault_rule("api", kind, count=count, path=TOKEN_RULE, method="POST"))

    def revoke(self, device_id: str) -> None:
        """Revoke the device's authorization; it must notice and go back to pairing."""
        self.cloud.revoke_device(device_id)
        self._instant("auth", "revoke", device_id=device_id)

    # -- cloud --------------------------------------------------------------------------
    def pause(self, device_id: str) -> None:
        self.cloud.pause_device(device_id)
        self.timeline.record("cloud", "pause", "start", device_id=device_id)

    def resume(self, device_id: str) -> None:
        self.cloud.resume_device(device_id)
        self.timeline.record("cloud", "pause", "stop", device_id=device_id)

    @contextmanager
    def paused(self, device_id: str) -> Iterator[None]:
        """The device is paused inside the block and resumed after it, even on error."""
        self.pause(device_id)
        try:
            yield
        finally:
            self.resume(device_id)

    def rename_project(self, project_id: str, name: str) -> None:
        self.cloud.rename_project(project_id, name)
        self._instant("cloud", "rename-project", project_id=project_id, new_name=name)

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock forward (tokens and upload URLs age accordingly)."""
        self.cloud.advance_clock(seconds)
        self._instant("cloud", "advance-clock", seconds=seconds)

    def s3_error(self, kind: str, *, count: int = 1, path: str | None = None,
                 method: str | None = None, retry_after: int | None = None) -> str:
        """The next `count` matching S3 requests fail with `kind` (e.g. 503 SlowDown)."""
        rule = fault_rule("s3", kind, count=count, path=path, method=method,
                          retry_after=retry_after)
        return self._add_rule("cloud", f"s3-{kind_name(rule['kind'])}", rule)

    def api_error(self, kind: str, *, count: int = 1, path: str | None = None,
                  method: str | None = None, retry_after: int | None = None) -> str:
        """The next `count` matching API requests fail with `kind` (detailed error body)."""
        rule = fault_rule("api", kind, count=count, path=path, method=method,
                          retry_after=retry_after)
        return self._add_rule("cloud", f"api-{kind_name(rule['kind'])}", rule)

    def asset_conflict(self, message: str, *, count: int = 1,
                       retry_after: int | None = None) -> str:
        """The next `count` asset creations answer 409 with `message` slow_down or invalid_client.

        Both create routes match; other API calls are untouched, so a device that refreshes
        its token or re-reads /v2/devices/me meets no error there.
        """
        if message not in CONFLICT_MESSAGES:
            raise ConfigError(f"unknown 409 message {message!r} on asset creation; known: "
                              f"{', '.join(CONFLICT_MESSAGES)}")
        rule = fault_rule("api", f"conflict_{message}", count=count, path=ASSET_CREATE_PATH,
                          method="POST", retry_after=retry_after)
        return self._add_rule("cloud", f"api-{kind_name(rule['kind'])}", rule)

    def remove(self, rule_id: str) -> None:
        """Remove one fault rule (others stay armed); its timeline window closes now."""
        self.cloud.remove_fault(rule_id)
        opened = self._open_rules.pop(rule_id, None)
        if opened is not None:
            layer, name, rule = opened
            self.timeline.record(layer, name, "stop", rule_id=rule_id, **rule)

    def clear(self) -> None:
        """Remove every fault rule; their timeline windows close now."""
        self.cloud.clear_faults()
        for rule_id, (layer, name, rule) in list(self._open_rules.items()):
            self.timeline.record(layer, name, "stop", rule_id=rule_id, **rule)
        self._open_rules.clear()

    # -- internals ------------------------------------------------------------------------
    def _add_rule(self, layer: str, name: str, rule: dict[str, Any]) -> str:
        rule_id = self.cloud.add_fault(rule)
        self._open_rules[rule_id] = (layer, name, rule)
        self.timeline.record(layer, name, "start", rule_id=rule_id, **rule)
        return rule_id

    def _instant(self, layer: str, name: str, **details: Any) -> None:
        self.timeline.record(layer, name, "start", **details)
        self.timeline.record(layer, name, "stop", **details)

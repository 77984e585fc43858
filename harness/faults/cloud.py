"""Cloud-side fault rules: the one place that builds the emulator's `/faults` rule format.

The emulator answers S3 and API requests with errors when a rule matches (CONTRACTS.md §2);
`fault_rule` builds and checks that rule, `arm` sends it and returns how to take it back.
Nothing else writes rule dicts: steps, the chaos campaign and people at the command line
name faults in `harness.faults.vocabulary` (`s3:slowdown x3`, `api:conflict-slow-down x4`,
`auth:refresh-failure`), which builds on this module and records each fault on the timeline.

    stop = arm(cloud, "s3", "slowdown", count=3)
    ...
    stop()  # the rule is removed (others stay armed)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.cloud.core import HANDLER_KINDS
from harness.cloud.fault_responses import ALL_KINDS, check_kind
from harness.errors import ConfigError
from harness.protocols import Cloud

S3_KINDS = ALL_KINDS
"""slowdown, internal_error, request_timeout, expired_url, too_many_requests, unauthorized, drop,
and the API-only conflict_slow_down, conflict_invalid_client (refused for target s3)."""

POLL_KINDS = HANDLER_KINDS
"""slow_down: answered by the token route to device-code polls only (RFC 8628), api target."""

CONFLICT_MESSAGES = ("slow_down", "invalid_client")
"""The `message` of the spec's other 409s on asset creation -> kind `conflict_<message>`."""
EVERY_TIME = 1_000_000
"""`count` for a rule that should keep firing until removed (the emulator needs a number)."""


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
    if kind in POLL_KINDS:
        if target != "api":
            raise ConfigError(f"fault kind {kind} answers device-code polls: target must be 'api'")
    elif kind not in S3_KINDS:
        raise ConfigError(f"unknown fault kind {kind!r}; known kinds: "
                          f"{', '.join((*S3_KINDS, *POLL_KINDS))}")
    else:
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


def arm(cloud: Cloud, target: str, kind: str, *, count: int = 1, path: str | None = None,
        method: str | None = None, retry_after: int | None = None) -> Callable[[], None]:
    """Send one checked rule to the emulator; the returned function removes just that rule
    (a spent rule stays listed until removed, so removing it is always safe)."""
    rule_id = cloud.add_fault(fault_rule(target, kind, count=count, path=path, method=method,
                                         retry_after=retry_after))
    return lambda: cloud.remove_fault(rule_id)

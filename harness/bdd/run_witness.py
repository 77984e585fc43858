"""Rules of the checklist that hold for every request of the run, judged over the whole run.

"HTTPS only" (C2C-SEC-01) and "a semver x-client-version on every call" (C2C-HDR-01) are
not about one scenario: a device that breaks them once, in whatever scenario, breaks them.
Their scenarios judge their own window; this judges the whole journal and the whole trap
record once the run is over, so a violation in another scenario (a one-off connectivity
check over http://, a request of the first pairing) is not missed because it fell outside
the window of the scenario tagged with the item.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


# The emulator's readiness probe: the bench asks it before any device runs.
BENCH_PATHS = frozenset({"/health"})


def api_requests(journal: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The requests the version-header rule covers: HTTPS API calls (S3 part PUTs and the bench's
    own readiness probe excluded)."""
    return [r for r in journal if r.get("scheme", "https") == "https" and r.get("method") != "PUT"
            and str(r.get("path") or "").split("?", 1)[0] not in BENCH_PATHS]


def bad_version_headers(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """'METHOD /path: value' for each request without a semver x-client-version."""
    return [f"{r.get('method')} {str(r.get('path') or '').split('?', 1)[0]}: {r.get('client_version')!r}"
            for r in rows if not SEMVER.match(str(r.get("client_version") or ""))]


def run_findings(journal: Sequence[Mapping[str, Any]], plain_http: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Per item, what the whole run shows against it ('' items are absent)."""
    found: dict[str, str] = {}
    bad = bad_version_headers(api_requests(journal))
    if bad:
        found["C2C-HDR-01"] = (f"{len(bad)} request(s) of the run without a semver x-client-version, "
                               f"e.g. {'; '.join(bad[:3])}")
    if plain_http:
        first = plain_http[0]
        found["C2C-SEC-01"] = (f"{len(plain_http)} plain-HTTP request(s) during the run, e.g. {first.get('method')} "
                               f"{str(first.get('path') or '').split('?', 1)[0]}")
    return found

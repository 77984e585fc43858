"""What the profile declares, checked against what the device did (Matter's TC-IDM-10.4 idea).

A profile's capabilities decide which scenarios apply and how they are judged, so a false
declaration can pass a device: it is checked against the oracle once the run is over, over
the whole request journal. A declaration is only judged when a scenario that exercises it
ran (a partial run that never uploaded a burst says nothing about `parallel`). Each
contradiction goes into the sealed results and the certificate ("declaration
contradicted", with its evidence) and keeps the device from being CERTIFIED.

Besides capabilities, two more declarations are checked:

- `[not_applicable]` on an item while the journal shows the behaviour the item is about
  (`NOT_APPLICABLE_SHOWN`: only items the journal can prove; the rest cannot be judged);
- `[status] driver = "none"` while the device serves a status API. The bench looks where it
  can see one: the `{status_port}` it gave the device in the launch, and any loopback
  `http://.../status.json` URL the device printed on its console (a port of its own
  choosing). Each is probed (GET, the contract's path) after each scenario; a JSON object
  answered there is the evidence. Only loopback is probed (the bench sends nothing to other
  hosts); a device that serves status elsewhere, or on hardware, is not judged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.bdd.measures import max_overlap, part_put_spans
from harness.device.profile import DeviceProfile
from harness.tls import default_context

REALTIME_PARTS = "/realtime_upload/parts"
# The scenarios that exercise a declaration: only after one of them ran is silence evidence
# (a smoke run's single small file says nothing about parallel parts or a growing file).
EXERCISED_BY = {
    "parallel": frozenset({"A burst of captures is uploaded concurrently",
                           "Upload speed reaches 50 Mbps when the network allows"}),
    "realtime": frozenset({"A growing file is uploaded while it is being recorded or when it completes"}),
}


@dataclass(frozen=True)
class Contradiction:
    """A declaration the device's own traffic contradicts, with what the oracle saw."""

    declaration: str
    evidence: str

    def row(self) -> dict[str, str]:
        return asdict(self)


def contradictions(profile: DeviceProfile, journal: Sequence[Mapping[str, Any]],
                   scenarios_run: Iterable[str], *, sockets: Sequence[Mapping[str, Any]] = ()) -> list[Contradiction]:
    """Every capability the profile declares that the journal shows the device did not live up to
    (`scenarios_run`: the Gherkin names of the scenarios that ran to a verdict on the device), and
    every item it declares not applicable that the journal (or the emulator's socket sessions,
    `sockets`: a socket still open is journaled only when it closes) shows it doing."""
    ran = set(scenarios_run)
    found: list[Contradiction] = []
    caps = profile.capabilities
    if "parallel" in caps and ran & EXERCISED_BY["parallel"]:
        spans = [(a, b) for _, a, b in part_put_spans(journal)]
        most = max_overlap(spans)
        if spans and most < 2:
            found.append(Contradiction(
                "capabilities: parallel",
                f"never had two part uploads in flight at once over the whole run (most {most}, {len(spans)} part PUTs)"))
    if "realtime" in caps and ran & EXERCISED_BY["realtime"]:
        realtime = sum(1 for r in journal if REALTIME_PARTS in str(r.get("path") or ""))
        if realtime == 0:
            found.append(Contradiction(
                "capabilities: realtime",
                "never asked for a real-time part URL (realtime_upload/parts), not even for a growing file"))
    found += _not_applicable_shown(profile, Observed(journal, sockets))
    return found


def _ok(row: Mapping[str, Any]) -> bool:
    try:
        return 200 <= int(row.get("status") or 0) < 300 or int(row.get("status") or 0) == 101
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Observed:
    """What the oracle saw over the run: the request journal and the emulator's socket sessions."""

    journal: Sequence[Mapping[str, Any]]
    sockets: Sequence[Mapping[str, Any]] = ()


def _overlapping_parts(seen: Observed) -> str | None:
    spans = [(a, b) for _, a, b in part_put_spans(seen.journal)]
    most = max_overlap(spans)
    return f"{most} part uploads were in flight at once ({len(spans)} part PUTs)" if most >= 2 else None


def _realtime_parts(seen: Observed) -> str | None:
    n = sum(1 for r in seen.journal if REALTIME_PARTS in str(r.get("path") or "") and _ok(r))
    return f"the cloud answered {n} real-time part URL request(s) (realtime_upload/parts)" if n else None


def _status_channel(seen: Observed) -> str | None:
    closed = sum(1 for r in seen.journal if str(r.get("path") or "").startswith("/devices/websocket") and _ok(r))
    sockets = max(closed, len(seen.sockets))
    beats = sum(1 for r in seen.journal if str(r.get("path") or "").startswith("/v2/devices/heartbeat") and _ok(r))
    if not sockets and not beats:
        return None
    return f"{sockets} status websocket(s) accepted and {beats} heartbeat(s) answered"


@dataclass(frozen=True)
class ShownBehaviour:
    """An item whose behaviour the journal can prove: declaring it not applicable and doing it is a contradiction."""

    item: str
    behaviour: str
    shown: Callable[[Observed], str | None]  # evidence text, or None when not seen


NOT_APPLICABLE_SHOWN = (
    ShownBehaviour("C2C-OPT-05", "parallel part uploads", _overlapping_parts),
    ShownBehaviour("C2C-UPL-01", "real-time upload of a growing file", _realtime_parts),
    ShownBehaviour("C2C-SOCK-01", "real-time status (websocket or heartbeats)", _status_channel),
)


def _not_applicable_shown(profile: DeviceProfile, seen: Observed) -> list[Contradiction]:
    """Items the profile declares not applicable although the journal shows the device doing them."""
    found: list[Contradiction] = []
    for rule in NOT_APPLICABLE_SHOWN:
        if rule.item not in profile.not_applicable:
            continue
        evidence = rule.shown(seen)
        if evidence:
            found.append(Contradiction(f"not_applicable: {rule.item} ({profile.not_applicable[rule.item]})",
                                       f"the journal shows {rule.behaviour}: {evidence}"))
    return found


def status_port_to_probe(profile: DeviceProfile, placeholders: Iterable[str], port: int | None) -> int | None:
    """The port to probe for a status API the profile says the device does not have: only where the
    launch told the device `{status_port}` (anything else the bench cannot see)."""
    if profile.status.driver != "none" or port is None or "status_port" not in set(placeholders):
        return None
    return port


def probe_status_api(port: int, *, timeout: float = 1.0) -> str | None:
    """GET http://127.0.0.1:PORT/status.json: the evidence when a JSON object answers, else None."""
    return probe_status_url(f"http://127.0.0.1:{port}/status.json", timeout=timeout)


# A status URL on this machine as a device prints it (the contract's path); nothing else is probed.
LOOPBACK_STATUS_URL = re.compile(r"http://(?:127\.0\.0\.1|localhost|\[::1\]):\d{1,5}/status\.json")
CONSOLE_READ_LIMIT = 8 << 20  # the console's last 8 MiB: a device prints its URL at each start


def status_urls_in(console: str) -> list[str]:
    """The loopback status URLs a console shows, latest first, each once."""
    return list(dict.fromkeys(reversed(LOOPBACK_STATUS_URL.findall(console))))


def console_status_evidence(profile: DeviceProfile, console_log: Path, *, timeout: float = 1.0) -> str | None:
    """For a profile without a status API: a status API answering at a URL the device printed on its console."""
    if profile.status.driver != "none" or not console_log.is_file():
        return None
    with console_log.open("rb") as fh:
        fh.seek(max(0, console_log.stat().st_size - CONSOLE_READ_LIMIT))
        text = fh.read().decode("utf-8", errors="replace")
    for url in status_urls_in(text):
        evidence = probe_status_url(url, timeout=timeout)
        if evidence:
            return f"the device's console printed {url}; {evidence}"
    return None


def probe_status_url(url: str, *, timeout: float = 1.0) -> str | None:
    """GET a status URL: the evidence when a JSON object answers, else None."""
    try:
        # trust_env=False: a bench's HTTP proxy settings must not send a loopback probe elsewhere
        with httpx.Client(timeout=timeout, trust_env=False, verify=default_context()) as client:
            answer = client.get(url)
        data = answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    schema = data.get("schema")
    return f"GET {url} answered 200 with a JSON status" + (f" (schema {schema})" if schema else "")


def status_contradiction(evidence: str | None) -> list[Contradiction]:
    """The `[status] driver = "none"` declaration, contradicted when a probe found a status API."""
    return [Contradiction("status: driver = none (no status API)", evidence)] if evidence else []

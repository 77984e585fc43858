"""Jepsen-style delivery ledger: every captured file classified from three histories.

Ground truth is the capture manifest written by the harness (never the device): what was
captured, when, its SHA-256, whether it was captured inside a cloud pause window and any
corruption the bench made on purpose. The device's claims (its status `files`) and the
emulator's ledger (what the cloud received and hashed) are checked against it.

Classes (per captured file):
- intact       delivered once, SHA-256 equal to the captured bytes
- corrupt      delivered, SHA-256 differs (the bytes were damaged on the way)
- duplicated   delivered as more than one asset
- lost         not delivered by the deadline and not excusable (worse if the device claims done)
- pending      not delivered yet and the run has not drained (deadline not reached)
- withheld     captured while paused and correctly not uploaded (409 Channel Paused)
- leaked       captured while paused but uploaded anyway (a failure)
- rejected     intentionally corrupt/unreadable media the device refused (allowed)
Cloud assets matching no captured file are reported as `unexpected` (a file uploaded twice
under another name, a file the device was not given): they make the ledger invalid. The
caller scopes the cloud rows to the device under test and to the scenario's window
(`since`, emulator time, see `window_start`); names the bench captured in other scenarios
of the same run (`known_names`) are excused, and with `proxies=True` an upload named after
a captured file's stem is that file's proxy (`proxies`), not unexpected.

Pure logic: no I/O, so it is unit-tested with hand-built rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

FAILING = frozenset({"lost", "corrupt", "duplicated", "leaked"})
CLASSES = ("intact", "corrupt", "duplicated", "lost", "pending", "withheld", "leaked", "rejected")
DELIVERED_STATES = frozenset({"complete", "completed", "done", "uploaded"})


@dataclass(frozen=True)
class Capture:
    """One manifest row: a file the bench made the device record."""

    name: str
    sha256: str | None
    size: int
    captured_at: float
    path: str = ""
    paused: bool | None = None  # None: decide from pause windows
    corruption: str | None = None  # the bench's intended corruption (zero-length, truncate, vanish...)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Capture:
        name = row.get("name") or str(row.get("path", "")).rsplit("/", 1)[-1]
        return cls(
            name=str(name),
            sha256=row.get("sha256"),
            size=int(row.get("size", row.get("filesize", 0)) or 0),
            captured_at=float(row.get("captured_at", row.get("at", 0.0)) or 0.0),
            path=str(row.get("path", "")),
            paused=row.get("paused"),
            corruption=row.get("corruption") or row.get("how"),
        )


@dataclass
class FileVerdict:
    """The ledger's line for one captured file."""

    name: str
    outcome: str
    captured_at: float
    sha256: str | None
    size: int
    paused: bool
    corruption: str | None
    assets: list[str] = field(default_factory=list)
    cloud_sha256: list[str | None] = field(default_factory=list)
    device_state: str | None = None
    device_claims_done: bool = False
    completed_at: float | None = None
    latency_s: float | None = None
    bytes_duplicate: int = 0
    note: str = ""


@dataclass
class Ledger:
    """All verdicts plus Jepsen-style totals."""

    files: list[FileVerdict]
    unexpected: list[dict[str, Any]]
    drained: bool
    proxies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(CLASSES, 0)
        for f in self.files:
            out[f.outcome] += 1
        out["unexpected"] = len(self.unexpected)
        return out

    @property
    def valid(self) -> bool:
        """Nothing lost, corrupt, duplicated, leaked or unexpected (and nothing pending once drained)."""
        c = self.counts
        bad = sum(c[k] for k in FAILING) + c["unexpected"]
        return bad == 0 and (not self.drained or c["pending"] == 0)

    def by_outcome(self, outcome: str) -> list[FileVerdict]:
        return [f for f in self.files if f.outcome == outcome]

    def problems(self) -> list[str]:
        """One line per failing file, for assertion messages."""
        lines = [f"{f.name}: {f.outcome}{' (' + f.note + ')' if f.note else ''}" for f in self.files
                 if f.outcome in FAILING or (self.drained and f.outcome == "pending")]
        lines += [f"{u.get('name')}: unexpected asset {u.get('asset_id')}" for u in self.unexpected]
        return lines

    def latency_quantiles(self) -> dict[str, float]:
        """Capture-to-available latency p50/p95/p99/max over delivered files."""
        values = sorted(f.latency_s for f in self.files if f.latency_s is not None)
        if not values:
            return {}

        def q(p: float) -> float:
            return values[min(len(values) - 1, round(p * (len(values) - 1)))]

        return {"p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "max": values[-1]}

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "drained": self.drained,
            "counts": self.counts,
            "latency_s": self.latency_quantiles(),
            "files": [asdict(f) for f in self.files],
            "unexpected": self.unexpected,
            "proxies": self.proxies,
        }


def window_start(journal: Iterable[Mapping[str, Any]]) -> float:
    """The scenario's window start in emulator time: when its first request reached the cloud.

    Emulator time, not the bench's clock: the emulator's clock may have been advanced by an
    earlier scenario. No request yet means no asset can be this scenario's (+inf). A WebSocket
    is journaled when it closes, often scenarios after it opened: its start would reach back
    into an earlier scenario (and call that scenario's uploads this one's "unexpected"
    assets), so a socket counts from when it closed.
    """
    times = [float((r.get("t") if r.get("method") == "WS" else r.get("started_at")) or r.get("t") or 0.0)
             for r in journal]
    times = [t for t in times if t > 0]
    return min(times) if times else float("inf")


def in_windows(at: float, windows: Iterable[Mapping[str, Any]]) -> bool:
    """Whether `at` falls inside any {start, stop} window (stop None = still open)."""
    for w in windows:
        start, stop = w.get("start"), w.get("stop")
        if start is not None and at >= float(start) and (stop is None or at <= float(stop)):
            return True
    return False


def _delivered(row: Mapping[str, Any]) -> bool:
    if row.get("state") in DELIVERED_STATES:
        return True
    return bool(row.get("completed_at"))


def _claims_done(claim: Mapping[str, Any] | None) -> bool:
    return claim is not None and str(claim.get("state")) in {"done", "completed", "uploaded"}


def build_ledger(
    manifest: Sequence[Mapping[str, Any] | Capture],
    cloud_rows: Sequence[Mapping[str, Any]],
    *,
    device_files: Sequence[Mapping[str, Any]] = (),
    pause_windows: Sequence[Mapping[str, Any]] = (),
    drained: bool = True,
    since: float | None = None,
    known_names: Collection[str] = (),
    proxies: bool = False,
) -> Ledger:
    """Classify every captured file.

    `cloud_rows` are the emulator's ledger rows (name, sha256, state, completed_at,
    bytes_duplicate...). Rows are matched to captures by name; a duplicate capture name
    (a second "A001.jpg") is matched in capture order. `since` ignores cloud rows created
    before the scenario began (the emulator is shared across scenarios). Rows left over match
    no capture: `unexpected`, unless their name is in `known_names` (captured in another
    scenario of the run, e.g. delivered late) or, with `proxies`, starts with a captured
    file's stem (a proxy of it).
    """
    captures = [m if isinstance(m, Capture) else Capture.from_row(m) for m in manifest]
    rows = [r for r in cloud_rows if since is None or float(r.get("created_at") or since) >= since]
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_name.setdefault(str(r.get("name")), []).append(r)
    claims: dict[str, list[Mapping[str, Any]]] = {}
    for d in device_files:
        claims.setdefault(str(d.get("name")), []).append(d)
    name_count: dict[str, int] = {}
    for c in captures:
        name_count[c.name] = name_count.get(c.name, 0) + 1

    used: set[int] = set()
    files: list[FileVerdict] = []
    for cap in captures:
        paused = cap.paused if cap.paused is not None else in_windows(cap.captured_at, pause_windows)
        candidates = [r for r in by_name.get(cap.name, []) if id(r) not in used]
        if name_count[cap.name] > 1:
            # Several captures share a name: prefer the row with this capture's hash, else one row each.
            exact = [r for r in candidates if cap.sha256 and r.get("sha256") == cap.sha256]
            candidates = exact[:1] or candidates[:1]
        for r in candidates:
            used.add(id(r))
        delivered = [r for r in candidates if _delivered(r)]
        claim_list = claims.get(cap.name, [])
        claim = claim_list.pop(0) if claim_list else None
        verdict = FileVerdict(
            name=cap.name, outcome="pending", captured_at=cap.captured_at, sha256=cap.sha256, size=cap.size,
            paused=paused, corruption=cap.corruption,
            assets=[str(r.get("asset_id")) for r in candidates],
            cloud_sha256=[r.get("sha256") for r in delivered],
            device_state=str(claim.get("state")) if claim else None,
            device_claims_done=_claims_done(claim),
            bytes_duplicate=sum(int(r.get("bytes_duplicate") or 0) for r in candidates),
        )
        if delivered:
            done_at = min(float(r.get("completed_at") or 0) for r in delivered) or None
            verdict.completed_at = done_at
            if done_at:
                verdict.latency_s = max(0.0, done_at - cap.captured_at)
        if paused:
            if delivered or candidates:
                verdict.outcome, verdict.note = "leaked", "captured while paused but uploaded"
            else:
                verdict.outcome = "withheld"
        elif len(delivered) > 1:
            verdict.outcome, verdict.note = "duplicated", f"{len(delivered)} assets"
        elif delivered:
            got = delivered[0].get("sha256")
            if cap.sha256 is None or got == cap.sha256:
                verdict.outcome = "intact"
            else:
                verdict.outcome, verdict.note = "corrupt", f"sha256 {str(got)[:12]} != {cap.sha256[:12]}"
        elif cap.corruption:
            verdict.outcome = "rejected" if drained else "pending"
            verdict.note = f"intentionally {cap.corruption}"
        elif drained:
            verdict.outcome = "lost"
            verdict.note = "device claims it is done" if verdict.device_claims_done else "never completed"
        files.append(verdict)

    known = set(known_names)
    stems = {c.name.rsplit(".", 1)[0] for c in captures}
    unexpected: list[dict[str, Any]] = []
    proxy_rows: list[dict[str, Any]] = []
    for r in rows:
        name = str(r.get("name"))
        if id(r) in used or name in known:
            continue
        if proxies and any(name.startswith(stem) for stem in stems):
            proxy_rows.append(dict(r))
        else:
            unexpected.append(dict(r))
    return Ledger(files=files, unexpected=unexpected, drained=drained, proxies=proxy_rows)

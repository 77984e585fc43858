"""One reading of the c2c-status/1 snapshot, shared by the status page, the TUI and the CLI.

The engine owns the status model; the faces only render it. They all go through
`normalize` (so a partial snapshot never crashes a renderer) and `redact` (so a secret
that slipped into the model by mistake never reaches a screen, a page or a log).
"""

from __future__ import annotations

import copy
import math
from typing import Any

__all__ = [
    "SECRET_KEYS",
    "human_bytes",
    "human_rate",
    "normalize",
    "printable",
    "progress_fraction",
    "redact",
    "summary_line",
]

# Keys that must never be shown, wherever they sit in the snapshot.
SECRET_KEYS = frozenset(
    {
        "client_secret",
        "access_token",
        "refresh_token",
        "token_value",
        "id_token",
        "authorization",
        "password",
        "secret",
        "device_code",
    }
)

_DEFAULTS: dict[str, Any] = {
    "schema": "c2c-status/1",
    "device": {"name": "", "firmware": "", "kind": ""},
    "pairing": {
        "state": "unpaired",
        "user_code": None,
        "verification_uri": None,
        "verification_uri_complete": None,
        "expires_at": None,
        "error": None,
    },
    "project": {"id": None, "name": None},
    "token": {"state": "none", "expires_at": None, "refresh_count": 0},
    "mode": "auto",
    "queue": {
        "remaining_count": 0,
        "remaining_bytes": 0,
        "completed": 0,
        "queued": 0,
        "uploading": 0,
        "failed": 0,
        "quarantined": 0,
        "paused": 0,
        "cancelled": 0,
        "held": 0,
    },
    "current": None,
    "files": [],
    "network": {
        "online": False,
        "type": "unknown",
        "throughput_bps": 0,
        "health": "down",
        "last_error": None,
    },
    "socket": {"connected": False, "kind": None, "last_beat_at": None},
    "cloud_status": "unknown",
}


def redact(value: Any) -> Any:
    """A deep copy of `value` without any key named like a credential."""
    if isinstance(value, dict):
        return {
            k: redact(v) for k, v in value.items() if str(k).lower() not in SECRET_KEYS
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def normalize(snapshot: dict[str, Any] | None) -> dict[str, Any]:
    """The snapshot, redacted, with every section the renderers read filled in."""
    out = copy.deepcopy(_DEFAULTS)
    src = redact(snapshot or {})
    for key, value in src.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key].update(value)
        elif value is not None or key not in out:
            out[key] = value
    if not isinstance(out.get("files"), list):
        out["files"] = []
    out["files"] = [f for f in out["files"] if isinstance(f, dict)]
    cur = out.get("current")
    if not isinstance(cur, dict) or not (cur.get("file_id") or cur.get("name")):
        out["current"] = None  # the engine reports idle as a current with no file
    return out


def human_bytes(n: Any) -> str:
    """1536 -> '1.5 KiB'; anything not a finite number -> '?'."""
    try:
        value = float(n)
    except (TypeError, ValueError):
        return "?"
    if not math.isfinite(value) or value < 0:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "?"  # pragma: no cover


def human_rate(bits_per_second: Any) -> str:
    """Network throughput in bits per second as people read it (12.5 Mbit/s)."""
    try:
        value = float(bits_per_second)
    except (TypeError, ValueError):
        return "?"
    if not math.isfinite(value) or value < 0:
        return "?"
    for unit in ("bit/s", "kbit/s", "Mbit/s", "Gbit/s"):
        if value < 1000 or unit == "Gbit/s":
            return f"{value:.0f} {unit}" if unit == "bit/s" else f"{value:.1f} {unit}"
        value /= 1000
    return "?"  # pragma: no cover


def progress_fraction(current: dict[str, Any] | None) -> float:
    """The current file's progress in [0, 1], from `progress` or bytes_done/size."""
    if not current:
        return 0.0
    try:
        p = current.get("progress")
        if p is None:
            size = float(current.get("size") or 0)
            p = float(current.get("bytes_done") or 0) / size if size > 0 else 0.0
        p = float(p)
    except (TypeError, ValueError, ZeroDivisionError):
        return 0.0
    if not math.isfinite(p):
        return 0.0
    return min(1.0, max(0.0, p))


def printable(text: Any) -> str:
    """One printable line: control characters (ANSI escapes, newlines) become '?'."""
    s = "" if text is None else str(text)
    return "".join(ch if ch.isprintable() else "?" for ch in s)


def source_lines(snapshot: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, state, one-line text) for every source that reports a state (e.g. the camera)."""
    out = []
    sources = snapshot.get("sources")
    for src in sources if isinstance(sources, list) else []:
        if not isinstance(src, dict) or not src.get("state"):
            continue
        text = printable(src.get("message") or src.get("state"))
        if src.get("downloaded") is not None:
            text += f" · {printable(src.get('downloaded'))} downloaded"
        if src.get("last_error") and src.get("state") != "connected":
            text += f" · last error: {printable(src.get('last_error'))}"
        out.append((printable(src.get("kind") or "source"), printable(src.get("state")), text))
    return out


def summary_line(snapshot: dict[str, Any] | None) -> str:
    """The status as one plain log line (no control characters), for logs and `status`."""
    s = normalize(snapshot)
    p, q, n, t, k = s["pairing"], s["queue"], s["network"], s["token"], s["socket"]
    parts = [f"pairing={printable(p.get('state'))}"]
    if p.get("user_code") and p.get("state") in ("showing_code", "requesting_code"):
        parts.append(f"code={printable(p['user_code'])}")
        if p.get("verification_uri_complete"):
            parts.append(f"link={printable(p['verification_uri_complete'])}")
    if p.get("error"):
        parts.append(f"pairing_error={printable(p['error'])!r}")
    parts.append(f"project={printable(s['project'].get('name') or '-')!r}")
    parts.append(f"mode={printable(s['mode'])}")
    parts.append(
        f"remaining={printable(q.get('remaining_count'))} ({human_bytes(q.get('remaining_bytes'))})"
    )
    parts.append(
        "done={} queued={} uploading={} failed={} quarantined={} held={}".format(
            *(printable(q.get(x, 0)) for x in
              ("completed", "queued", "uploading", "failed", "quarantined", "held"))
        )
    )
    cur = s.get("current")
    if cur:
        parts.append(
            f"current={printable(cur.get('name'))!r} {progress_fraction(cur) * 100:.0f}%"
        )
    parts.append(
        "net={} {} {} {}".format(
            "online" if n.get("online") else "offline",
            printable(n.get("type")),
            printable(n.get("health")),
            human_rate(n.get("throughput_bps")),
        )
    )
    parts.append(f"token={printable(t.get('state'))}")
    parts.append(f"socket={'connected' if k.get('connected') else 'disconnected'}")
    parts.append(f"cloud={printable(s.get('cloud_status'))}")
    parts.extend(f"{kind}={state}" for kind, state, _ in source_lines(s))
    return " ".join(parts)

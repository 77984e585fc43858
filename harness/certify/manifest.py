"""A signed manifest of a certification's reports folder (`MANIFEST.json`).

results.json is sealed by the run itself (harness.certify.seal); this goes one step
further, as Android CTS does with the checksum file in each result folder: after the run,
every file of the folder (results, certificate, progress, pytest log, Allure results and
attachments, device evidence) is listed with its SHA-256, bound to the device fingerprint
(firmware, profile digest), the emulator's journal digest and the bench version (git
commit, dirty flag), and signed with the lab's Ed25519 key. `c2c-certify verify REPORTS`
checks it; `c2c-certify report` builds nothing from a folder that does not verify.

Left out, because `report` makes them afterwards from what is listed: html/, allurerc.mjs
and the two Allure extras (categories.json, environment.properties); and work/, the bench's
scratch (device state, media), which is not evidence.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature

from harness.certify.seal import SealBroken, bench_key, canonical, key_id, public_text

MANIFEST = "MANIFEST.json"
SCHEME = "c2c-manifest/ed25519/1"
NOT_LISTED_DIRS = frozenset({"html", "work"})
NOT_LISTED_FILES = frozenset({MANIFEST, "allurerc.mjs", "allure-results/categories.json",
                              "allure-results/environment.properties"})
REPO_ROOT = Path(__file__).resolve().parents[2]


def bench_version(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """The harness that ran: its git commit and whether the checkout had uncommitted changes."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    return {"commit": commit or "unknown", "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))
            if commit else None}


def listed_files(reports: Path) -> dict[str, str]:
    """Every evidence file under `reports` (relative path -> SHA-256), in a stable order."""
    out: dict[str, str] = {}
    for path in sorted(p for p in reports.rglob("*") if p.is_file()):
        rel = path.relative_to(reports).as_posix()
        if rel.split("/", 1)[0] in NOT_LISTED_DIRS or rel in NOT_LISTED_FILES or path.is_symlink():
            continue
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        out[rel] = h.hexdigest()
    return out


def write_manifest(reports: Path, *, version: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """List and sign every file of a finished run's folder; returns the manifest."""
    results = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    run_seal = results.get("seal", {})
    key = bench_key()
    body = {
        "scheme": SCHEME,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": {"firmware": str(results.get("device", {}).get("firmware", "")),
                   "profile_sha256": run_seal.get("profile_sha256", "")},
        "journal_sha256": run_seal.get("journal_sha256", ""),
        "bench": dict(version if version is not None else bench_version()),
        "files": listed_files(reports),
        "public_key": public_text(key.public_key()),
        "key_id": key_id(key.public_key()),
    }
    manifest = {**body, "signature": base64.b64encode(key.sign(canonical(body))).decode("ascii")}
    (reports / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def verify_folder(reports: Path) -> dict[str, Any]:
    """Check the folder against its manifest and the lab's key; raise SealBroken naming what differs."""
    try:
        manifest = json.loads((reports / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SealBroken(f"{reports}: no {MANIFEST}; it was not written by `c2c-certify run`") from None
    except json.JSONDecodeError as exc:
        raise SealBroken(f"{reports / MANIFEST}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise SealBroken(f"{reports / MANIFEST}: not a JSON object")
    trusted = bench_key(create=False).public_key()
    if manifest.get("key_id") != key_id(trusted) or manifest.get("public_key") != public_text(trusted):
        raise SealBroken(f"{reports}: signed by another bench (key {manifest.get('key_id')})")
    body = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        trusted.verify(base64.b64decode(str(manifest.get("signature", ""))), canonical(body))
    except (InvalidSignature, ValueError):
        raise SealBroken(f"{reports / MANIFEST}: the signature does not verify (the manifest was edited)") from None
    listed = dict(manifest.get("files", {}))
    found = listed_files(reports)
    changed = sorted(p for p in listed if p in found and found[p] != listed[p])
    missing = sorted(p for p in listed if p not in found)
    added = sorted(p for p in found if p not in listed)
    problems = [f"{label}: {', '.join(paths[:5])}" + (f" (+{len(paths) - 5} more)" if len(paths) > 5 else "")
                for label, paths in (("changed", changed), ("missing", missing), ("added", added)) if paths]
    if problems:
        raise SealBroken(f"{reports}: does not match its manifest ({'; '.join(problems)})")
    return manifest

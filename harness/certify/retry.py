"""Retry what failed, as Android CTS's `run retry --retry <session>` does, without losing a thing.

`c2c-certify retry --from REPORTS` reruns exactly the items of an earlier, verified run whose
verdict was fail, error or not-run (or what `--only` names), with its seed, network profile
and device, into a new folder. It refuses when the device's firmware or profile, or the
bench's commit, differ from the earlier run's: that would be another certification. The
new results carry the earlier run's other records forward unchanged and keep every earlier
attempt of the retried items in `run.history`, so the certificate shows "pass after 2
attempts", never a silently replaced verdict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.certify.seal import digest, profile_digest, verify
from harness.errors import ConfigError

RETRYABLE = ("fail", "error", "not-run", "operator", "fail (inferred)")


def _attempt(record: Mapping[str, Any]) -> int:
    return int(record.get("attempt", 1))


def carry_forward(prior_path: Path, fresh: Sequence[dict[str, Any]], run: dict[str, Any], *,
                  deselected: Sequence[str]) -> list[dict[str, Any]]:
    """The retry run's records: the prior run's records for items not retried, then the fresh ones.

    Records of retried items move into `run["history"]` (one entry per earlier attempt), and
    `run["selection"]["deselected"]` counts only what neither run covered.
    """
    prior = json.loads(prior_path.read_text(encoding="utf-8"))
    verify(prior)  # the earlier evidence is only carried if it is what that run wrote
    retried = {item for r in fresh for item in r.get("items", ())}
    attempt = 1 + max((_attempt(r) for r in prior.get("results", [])), default=1)
    for h in prior.get("run", {}).get("history", []):
        attempt = max(attempt, int(h.get("attempt", 1)) + 1)
    carried = [r for r in prior.get("results", []) if not set(r.get("items", ())) & retried]
    replaced = [r for r in prior.get("results", []) if set(r.get("items", ())) & retried]
    history = list(prior.get("run", {}).get("history", []))
    by_attempt: dict[int, list[dict[str, Any]]] = {}
    for r in replaced:
        by_attempt.setdefault(_attempt(r), []).append(r)
    for n, records in sorted(by_attempt.items()):
        history.append({"attempt": n, "finished_at": prior.get("run", {}).get("finished_at"),
                        "seal_results_sha256": prior.get("seal", {}).get("results_sha256"), "records": records})
    for r in fresh:
        r["attempt"] = attempt
    covered = {str(r.get("scenario")) for r in carried}
    selection = dict(run.get("selection", {}))
    selection["deselected"] = sum(1 for name in deselected if name not in covered)
    selection["retry_of"] = str(prior_path)
    selection["retried_items"] = sorted(retried)
    run["selection"] = selection
    run["history"] = history
    run["attempt"] = attempt
    return [*carried, *fresh]


def attempts_by_item(run: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per item, every attempt's scenario verdicts, oldest first (for the certificate)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for h in run.get("history", []):
        for r in h.get("records", []):
            for item in r.get("items", ()):
                out.setdefault(item, []).append({"attempt": h.get("attempt"), "scenario": r.get("scenario"),
                                                 "verdict": (r.get("item_verdicts") or {}).get(item, r.get("verdict"))})
    for r in results:
        if "attempt" in r:
            for item in r.get("items", ()):
                if item in out:
                    out[item].append({"attempt": r["attempt"], "scenario": r.get("scenario"),
                                      "verdict": (r.get("item_verdicts") or {}).get(item, r.get("verdict"))})
    return out


def retry_plan(reports: Path, only: Sequence[str], current_commit: str) -> dict[str, Any]:
    """What to rerun from a verified earlier run; ConfigError when it would not be the same certification."""
    from harness.certify.manifest import verify_folder
    from harness.device.profile import load_profile

    manifest = verify_folder(reports)
    results = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    cert = json.loads((reports / "certificate.json").read_text(encoding="utf-8"))
    run = results.get("run", {})
    device_arg = str(run.get("device_arg") or results.get("device", {}).get("name", ""))
    profile = load_profile(device_arg)
    sealed = results.get("seal", {})
    differ = []
    if profile.firmware != sealed.get("firmware"):
        differ.append(f"firmware {sealed.get('firmware')} -> {profile.firmware}")
    if profile_digest(profile.path, profile.summary()) != sealed.get("profile_sha256"):
        differ.append("the profile changed")
    bench = manifest.get("bench", {})
    if bench.get("commit") != current_commit:
        differ.append(f"bench {str(bench.get('commit'))[:12]} -> {current_commit[:12]}")
    if differ:
        raise ConfigError(f"retry: {reports} is another certification ({'; '.join(differ)}); run it anew")
    items = sorted(i for i, e in cert.get("items", {}).items() if e.get("verdict") in only)
    return {"device": device_arg, "seed": int(run.get("seed", 1)), "network": run.get("network"), "items": items,
            "strict": bool(run.get("strict", False)),
            "prior": reports / "results.json", "prior_digest": digest(sealed)}

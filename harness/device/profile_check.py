"""Static review of a device profile before anything runs (`c2c-certify check-profile`).

Bluetooth's ICS review and Matter's PICS consistency check refuse an implementer's
declarations before a test is run: a missing or contradictory declaration must never turn
into "test nothing" or "pass". Parsing (harness.device.profile) already refuses what cannot
be read (unknown fields, secrets in argv, items the checklist does not have); this review
adds what is readable but inconsistent, each finding naming the field:

- a capability code the harness does not know (a typo silently disables its scenarios);
- capabilities that contradict the drivers (`status` without a status driver, a control
  capability with no control driver, `tether` without a tethered capture);
- a launch command whose program cannot be found on this bench;
- (a note, not a refusal) a not-applicable declaration on an item the checklist's kinds
  already exclude: harmless, but the reason will never be printed.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.certify.checklist import Checklist, load_checklist
from harness.device.profile import DeviceProfile

REPO_ROOT = Path(__file__).resolve().parents[2]
# What each capability code tells the bench (scenarios read these; anything else is a typo).
CAPABILITIES = {
    "status": "serves a status the bench can read ([status] driver)",
    "local-api": "takes user actions through a control API ([control] driver)",
    "url-pairing": "shows verification_uri_complete (link or QR)",
    "parallel": "uploads parts of a file in parallel",
    "realtime": "uploads a growing file while it is recorded",
    "priority": "lets the user prioritise files or file types",
    "manual-mode": "has a manual upload mode (upload a selection)",
    "cancel": "lets the user cancel uploads",
    "tether": "tethers a camera over USB/PTP (libgphoto2)",
    "proxies": "makes proxies of the hero files it records",
}
NEEDS_CONTROL = frozenset({"local-api", "priority", "manual-mode", "cancel"})


@dataclass(frozen=True)
class Finding:
    """One problem in a profile: the field it is about and what is wrong."""

    field: str
    message: str
    refuses: bool = True  # False: a note; the profile can still be certified

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" + ("" if self.refuses else " (note)")


def review(profile: DeviceProfile, checklist: Checklist | None = None) -> list[Finding]:
    """Every inconsistency in a parsed profile (empty when it is fit to certify)."""
    checklist = checklist or load_checklist()
    found: list[Finding] = []
    for cap in sorted(profile.capabilities - set(CAPABILITIES)):
        found.append(Finding("capabilities", f"unknown capability {cap!r}; known: {', '.join(sorted(CAPABILITIES))}"))
    caps = profile.capabilities
    if "status" in caps and profile.status.driver == "none":
        found.append(Finding("capabilities", "declares 'status' but [status] driver is 'none'"))
    if "status" not in caps and profile.status.driver != "none":
        found.append(Finding("capabilities", f"[status] driver is {profile.status.driver!r} but 'status' is not declared"))
    for cap in sorted(caps & NEEDS_CONTROL):
        if profile.control.driver == "none":
            found.append(Finding("capabilities", f"declares {cap!r} but [control] driver is 'none' (the bench cannot act)"))
    if "tether" in caps and profile.launch is None and profile.capture.driver != "gphoto2":
        found.append(Finding("capabilities", "declares 'tether' but captures with neither gphoto2 nor a launched device"))
    for item_id in sorted(profile.not_applicable):
        if profile.kind and not checklist[item_id].applies_to(profile.kind):
            found.append(Finding(f"not_applicable.{item_id}",
                                 f"the checklist already excludes a {profile.kind} ({', '.join(checklist[item_id].kinds)} only); "
                                 "the declaration is never used", refuses=False))
    if profile.launch is not None and profile.launch.command:
        program = profile.launch.command[0].replace("{python}", sys.executable).replace("{repo}", str(REPO_ROOT))
        if "{" not in program and not (Path(program).is_file() or shutil.which(program)):
            found.append(Finding("launch.command[0]", f"program {program!r} is not found on this bench"))
    return found

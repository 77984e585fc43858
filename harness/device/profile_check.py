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
- (notes, not refusals) the items whose `applies` expression excludes this device (they will
  be "not-applicable" without running), a not-applicable declaration on an item the checklist
  already excludes (harmless, but the reason will never be printed), and a device given a
  status port while its profile says it has no status (the bench probes that port: a status
  API found there is a contradicted declaration).

A [not_applicable] declaration on an item that applies needs its reason (parsing refuses an
empty one); with it, it stands only where no scenario could decide (harness.certify.certificate).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.device.profile import DeviceProfile
from harness.device.software import profile_placeholders
from harness.items.applies import CAPABILITIES
from harness.items.checklist import Checklist, codes, load_checklist

REPO_ROOT = Path(__file__).resolve().parents[2]
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
    device = codes(profile.kind, profile.capabilities)
    excluded = [item for item in checklist if not item.applies.evaluate(device)]
    if excluded:
        found.append(Finding("kind/capabilities", f"{len(excluded)} item(s) do not apply to this device and will not run: "
                             + ", ".join(f"{i.id} ({i.applies})" for i in excluded), refuses=False))
    for item_id in sorted(profile.not_applicable):
        item = checklist[item_id]
        if not item.applies.evaluate(device):
            found.append(Finding(f"not_applicable.{item_id}",
                                 f"the checklist already excludes this device (applies when {item.applies}); "
                                 "the declaration is never used", refuses=False))
    if profile.status.driver == "none" and "status_port" in profile_placeholders(profile):
        found.append(Finding("status.driver", "is 'none' but the launch gives the device {status_port}: the bench probes "
                             "that port, and a status API found there is listed as a contradicted declaration",
                             refuses=False))
    if profile.launch is not None and profile.launch.command:
        program = profile.launch.command[0].replace("{python}", sys.executable).replace("{repo}", str(REPO_ROOT))
        if "{" not in program and not (Path(program).is_file() or shutil.which(program)):
            found.append(Finding("launch.command[0]", f"program {program!r} is not found on this bench"))
    return found

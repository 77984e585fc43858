"""Seeded defects of the independent device (tests/console_device), the device we did not write.

The reference device's mutants prove the bench catches a defect in code it knows; these prove
it catches the same defects in a console-only device with no status or control API, where
the oracle alone must decide. Each is the stand-in's own build switch (C2C_CONSOLE_DEFECT),
launched through tests/mutants/launch.py like every other mutant (`--device mutant:NAME`
resolves to fixtures/devices/independent.toml: see harness.device.profile.load_profile).

- independent-restart-from-zero: never records finished parts on disk; after a power cut it
  re-PUTs every part of the asset it was uploading.
- independent-forget-queue: the queue lives in memory only; after a power cut it uploads the
  whole watch folder again (duplicates) and the interrupted file from its first part.
- independent-stall-behind-bad-file: queues whatever stands in the folder as a clip (a dangling
  symlink, a folder, a FIFO) and retries the first it cannot read forever at the head of
  its queue; nothing captured after it is uploaded (caught as root too: no mode-000 needed).

Why each `also`: forget-queue's power-cut scenarios are shared by QUE-03, RTY-02, CTL-01 and
RES-01 (as the reference's loses-queue); stall-behind-bad-file's scenario is RES-04's too.
"""

from __future__ import annotations

from tests.mutants.patching import Mutant


def _built_in() -> None:
    """Nothing to patch: the defect is a build of the stand-in, selected by the mutant's env."""


def _independent(name: str, item: str, what: str, **kw: object) -> Mutant:
    defect = name.removeprefix("independent-")
    return Mutant(name, item, what, f"tests.console_device.device:--defect {defect}", _built_in,
                  env={"C2C_CONSOLE_DEFECT": defect}, device="independent", **kw)  # type: ignore[arg-type]


INDEPENDENT_MUTANTS: tuple[Mutant, ...] = (
    _independent("independent-restart-from-zero", "C2C-CTL-01",
             "independent device: finished parts kept in memory only; re-sends the whole file after a cut"),
    _independent("independent-forget-queue", "C2C-QUE-03", "independent device: queue in memory only; a cut forgets it",
             also=("C2C-RTY-02", "C2C-CTL-01", "C2C-RES-01")),
    _independent("independent-stall-behind-bad-file", "C2C-CTL-04",
             "independent device: blocks its queue behind the first unreadable media object",
             also=("C2C-RES-04",), quick_k="not corrupted or dangling"),
)

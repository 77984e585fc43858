"""Media fixtures and corruptors: valid files in every checklist format, and the ways they break."""

from harness.faults.media.corrupt import HOWS, Grower, ScheduledFault
from harness.faults.media.generate import KINDS, Fixture, FixtureGenerator, sha256_file
from harness.faults.media.manifest import MediaKit, load_manifest
from harness.faults.media.validate import Validation, validate

__all__ = [
    "HOWS",
    "KINDS",
    "Fixture",
    "FixtureGenerator",
    "Grower",
    "MediaKit",
    "ScheduledFault",
    "Validation",
    "load_manifest",
    "sha256_file",
    "validate",
]

"""Where a certification's feature files live: the checkout's features/, or a lab's own folder.

A ground-floor module because both ends read it: the suite collects the scenarios from it and
`c2c-certify` checks it (and sets pytest's rootdir) before a run starts.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
FEATURES_DIR = CHECKOUT / "features"
"""The checklist's own feature files."""
FEATURES_ENV = "C2C_FEATURES"
"""Names a lab's own folder of .feature files to certify against instead."""


def features_dir() -> Path:
    """The certification's feature files: $C2C_FEATURES (a lab's own folder) or the checkout's."""
    chosen = os.environ.get(FEATURES_ENV)
    return Path(chosen).expanduser().resolve() if chosen else FEATURES_DIR

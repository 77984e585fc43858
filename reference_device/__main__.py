"""`python -m reference_device` is `c2c-device` (see reference_device/cli.py)."""

import sys

from reference_device.cli import main

sys.exit(main())

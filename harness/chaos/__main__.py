"""`python -m harness.chaos`: see harness/chaos/cli.py."""

from harness.chaos.cli import main

raise SystemExit(main())

"""Commands started the way a terminal starts its foreground job: SIGINT at its default.

A process whose parent ignores SIGINT keeps ignoring it (Python installs its KeyboardInterrupt
handler only where SIGINT was not ignored), and a non-interactive shell's `make test &` ignores
it. A test of what Ctrl-C does must not depend on how the test run itself was started."""

from __future__ import annotations

import sys


def _exec_with_sigint(disposition: str, argv: list[str]) -> list[str]:
    """`argv` behind a one-line exec that sets SIGINT to `disposition` (SIG_DFL or SIG_IGN) first."""
    code = f"import os, signal, sys; signal.signal(signal.SIGINT, signal.{disposition}); os.execv(sys.argv[1], sys.argv[1:])"
    return [sys.executable, "-c", code, *argv]


def as_a_terminal_starts_it(argv: list[str]) -> list[str]:
    """`argv` (argv[0] a path) started with SIGINT back at its default."""
    return _exec_with_sigint("SIG_DFL", argv)


def with_sigint_ignored(argv: list[str]) -> list[str]:
    """`argv` started as a script's `command &` starts it: SIGINT ignored."""
    return _exec_with_sigint("SIG_IGN", argv)

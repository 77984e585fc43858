"""Commands started the way a terminal starts its foreground job: SIGINT at its default.

A process whose parent ignores SIGINT keeps ignoring it (Python installs its KeyboardInterrupt
handler only where SIGINT was not ignored), and a non-interactive shell's `make test &` ignores
it. A test of what Ctrl-C does must not depend on how the test run itself was started."""

from __future__ import annotations

import sys

_DEFAULT_SIGINT_THEN_EXEC = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


def as_a_terminal_starts_it(argv: list[str]) -> list[str]:
    """`argv` (argv[0] a path) behind a two-line exec that puts SIGINT back to its default."""
    return [sys.executable, "-c", _DEFAULT_SIGINT_THEN_EXEC, *argv]


def with_sigint_ignored(argv: list[str]) -> list[str]:
    """`argv` started as a script's `command &` starts it: SIGINT ignored."""
    return [sys.executable, "-c", _DEFAULT_SIGINT_THEN_EXEC.replace("SIG_DFL", "SIG_IGN"), *argv]

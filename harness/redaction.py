"""What counts as a secret in text the bench copies into a report, and how it is removed.

One definition for every floor: the device driver redacts a stack dump with it, the scenario
evidence a console, C2C-SEC-04 scans a device's logs and state with the same token shapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# A token in plain text (group 1 is what precedes it): what C2C-SEC-04 looks for in a device's
# logs, state and status.
TOKEN_PATTERNS = (
    re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]{16,}"),
    re.compile(r"(\"?(?:access|refresh)_token\"?\s*[:=]\s*\"?)[A-Za-z0-9._~+/=-]{16,}"),
)
# A vendor device may log its grant: never copy a token into a report. Redaction also takes
# the URL-encoded and query-parameter forms.
_TOKEN_SHAPES = (
    *TOKEN_PATTERNS,
    re.compile(r"(Bearer(?:%20|\+))[A-Za-z0-9._~+/=%-]{16,}"),
    re.compile(r"((?:Authorization|client_secret|refresh_token|token)=)[^&\s\"']{8,}", re.IGNORECASE),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every known secret and anything shaped like a token replaced by [redacted]."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    for shape in _TOKEN_SHAPES:
        text = shape.sub(r"\1[redacted]", text)
    return text

"""The create answer's JSON (harness/cloud/responses.py): Starlette's bytes, one encoder."""

from __future__ import annotations

import pytest
from starlette.responses import JSONResponse

from harness.cloud.responses import CompactJSONResponse


@pytest.mark.parametrize("content", [
    {"name": "Clip é ✓ 日本.mov", "parts": [1, 2.5, None, True], "nested": {"a": []}},
    {"line separator": "\u2028", "quote": '"\\'},
    [],
])
def test_the_answer_is_starlettes_byte_for_byte(content: object) -> None:
    assert CompactJSONResponse(content).body == JSONResponse(content).body


def test_a_nan_is_refused_as_starlette_refuses_it() -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        CompactJSONResponse({"n": float("nan")})

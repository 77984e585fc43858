from __future__ import annotations

import httpx
import pytest

from reference_device.api import classify_api_error, classify_s3_error
from reference_device.errors import (
    ChannelPaused,
    ExpiredUrlError,
    FatalUploadError,
    RetryableError,
    UnauthorizedError,
)
from reference_device.uploader import basic_layout


def _detailed(status: int, title: str, message: str | None = None) -> httpx.Response:
    body = {"code": status, "errors": [{"code": status, "detail": "d", "status": status, "title": title}],
            "message": message or title}
    return httpx.Response(status, json=body)


def _s3(status: int, code: str, message: str = "m") -> httpx.Response:
    return httpx.Response(status, text=f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{message}</Message></Error>")


@pytest.mark.parametrize(
    ("resp", "kind"),
    [
        (_detailed(401, "Not Authorized"), UnauthorizedError),
        (_detailed(409, "Not Authorized"), UnauthorizedError),
        (_detailed(409, "Channel Paused"), ChannelPaused),
        (_detailed(409, "x", "slow_down"), RetryableError),
        (_detailed(429, "Too Many Requests"), RetryableError),
        (_detailed(500, "Internal"), RetryableError),
        (httpx.Response(502, text="bad gateway"), RetryableError),
        (_detailed(422, "Invalid"), FatalUploadError),
    ],
)
def test_api_taxonomy(resp: httpx.Response, kind: type) -> None:
    err = classify_api_error(resp)
    assert type(err) is kind


def test_retry_after_honoured() -> None:
    resp = httpx.Response(429, headers={"Retry-After": "7"}, json={"message": "Too Many Requests"})
    err = classify_api_error(resp)
    assert isinstance(err, RetryableError) and err.retry_after == 7


@pytest.mark.parametrize(
    ("resp", "kind"),
    [
        (_s3(503, "SlowDown"), RetryableError),
        (_s3(500, "InternalError"), RetryableError),
        (_s3(400, "RequestTimeout"), RetryableError),
        (_s3(400, "IncompleteBody"), RetryableError),
        (_s3(403, "AccessDenied", "Request has expired"), ExpiredUrlError),
        (_s3(403, "SignatureDoesNotMatch"), FatalUploadError),
        (_s3(400, "EntityTooSmall"), FatalUploadError),
    ],
)
def test_s3_taxonomy(resp: httpx.Response, kind: type) -> None:
    assert type(classify_s3_error(resp)) is kind


def test_basic_layout_matches_contract_example() -> None:
    layout = basic_layout(21_136_250, 2)
    assert layout == [(1, 0, 10_568_125), (2, 10_568_125, 10_568_125)]
    three = basic_layout(50_645_990, 3)
    assert [s for _, _, s in three] == [16_881_997, 16_881_997, 16_881_996]
    assert sum(s for _, _, s in basic_layout(11, 4)) == 11

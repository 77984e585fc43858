"""Page.goto against a scripted DevTools channel (harness/cloud/browser.py): a network change on
the host is navigated again; any other navigation error is the bench's, at once."""

from __future__ import annotations

from typing import Any

import pytest

from harness.cloud.browser import NETWORK_CHANGED, BrowserError, Page


class _ScriptedChannel:
    """Answers Page.navigate with the next scripted error ('' = loaded), then `then` for ever;
    every page reads as complete."""

    def __init__(self, errors: list[str], then: str = "") -> None:
        self.errors = errors
        self.then = then
        self.navigations = 0

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float | None = None) -> dict[str, Any]:
        if method == "Page.navigate":
            self.navigations += 1
            error = self.errors.pop(0) if self.errors else self.then
            return {"frameId": "f", "errorText": error} if error else {"frameId": "f"}
        if method == "Runtime.evaluate":
            return {"result": {"value": True}}
        return {}


def test_a_network_change_during_the_load_is_navigated_again() -> None:
    channel = _ScriptedChannel([NETWORK_CHANGED, NETWORK_CHANGED, ""])
    Page(channel, "tab").goto("https://127.0.0.1:1/pair")  # type: ignore[arg-type]
    assert channel.navigations == 3


def test_a_certificate_error_is_not_retried() -> None:
    channel = _ScriptedChannel(["net::ERR_CERT_AUTHORITY_INVALID", ""])
    with pytest.raises(BrowserError, match="ERR_CERT_AUTHORITY_INVALID"):
        Page(channel, "tab").goto("https://127.0.0.1:1/pair")  # type: ignore[arg-type]
    assert channel.navigations == 1


def test_a_network_that_keeps_changing_fails_when_the_time_is_up() -> None:
    channel = _ScriptedChannel([], then=NETWORK_CHANGED)
    with pytest.raises(BrowserError, match="ERR_NETWORK_CHANGED"):
        Page(channel, "tab").goto("https://127.0.0.1:1/pair", timeout=0.05)  # type: ignore[arg-type]

"""The operator's browser session, request by request over real TLS (issue #17 point 2).

test_browser.py shows a cross-origin page failing in Chromium; this pins each guard on its
own, so none can go missing behind another: the cookie's attributes, the Origin check, the
CSRF token, JSON-only bodies and sign-out. Without a session every control route is 401
(test_control_auth.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.cloud.control import CloudControl
from harness.cloud.runner import EmulatorProcess
from harness.cloud.security import read_token
from harness.cloud.testing import api_client


@pytest.fixture
def browser_like(cloud: CloudControl) -> Iterator[httpx.Client]:
    """A client that keeps cookies, as a browser on the emulator's own origin does."""
    with api_client(cloud.api_url, cloud.ca_bundle) as client:
        yield client


def origin(cloud: CloudControl) -> dict[str, str]:
    return {"origin": cloud.api_url, "sec-fetch-site": "same-origin"}


def sign_in(client: httpx.Client, cloud: CloudControl, token_file: Path) -> str:
    answer = client.post("/_bench/session", json={"token": read_token(token_file)},
                         headers=origin(cloud))
    assert answer.status_code == 200, answer.text
    csrf: str = answer.json()["csrf"]
    return csrf


def test_the_session_cookie_is_host_only_httponly_secure_and_strict(
        browser_like: httpx.Client, cloud: CloudControl, cloud_process: EmulatorProcess) -> None:
    answer = browser_like.post("/_bench/session", headers=origin(cloud),
                               json={"token": read_token(cloud_process.token_file)})
    cookie = answer.headers["set-cookie"]
    name = cookie.split("=", 1)[0]
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert name.startswith("__Host-")  # browsers refuse it unless Secure, Path=/, no Domain
    assert {"httponly", "secure", "samesite", "path"} <= attributes and "domain" not in attributes
    assert "samesite=strict" in cookie.lower().replace(" ", "")
    assert read_token(cloud_process.token_file) not in cookie + answer.text


def test_each_guard_refuses_on_its_own(browser_like: httpx.Client, cloud: CloudControl,
                                       cloud_process: EmulatorProcess) -> None:
    csrf = sign_in(browser_like, cloud, cloud_process.token_file)
    good = {**origin(cloud), "x-c2c-csrf": csrf}
    assert browser_like.get("/_bench/v1/projects").status_code == 200  # reading needs the cookie only
    refusals = {
        "no CSRF token": (origin(cloud), {"name": "a"}),
        "wrong CSRF token": ({**good, "x-c2c-csrf": "x" * len(csrf)}, {"name": "b"}),
        "no Origin": ({"x-c2c-csrf": csrf}, {"name": "c"}),
        "other origin": ({**good, "origin": "https://127.0.0.1:1"}, {"name": "d"}),
        "cross-site fetch": ({**good, "sec-fetch-site": "cross-site"}, {"name": "e"}),
    }
    for why, (headers, body) in refusals.items():
        answer = browser_like.post("/_bench/v1/projects", json=body, headers=headers)
        assert answer.status_code == 403, (why, answer.text)
    form = browser_like.post("/_bench/v1/projects", content=b'{"name": "f"}',
                             headers={**good, "content-type": "text/plain"})
    assert form.status_code == 415  # what an HTML form or a no-cors fetch can send
    assert cloud.projects() == []  # nothing got through
    made = browser_like.post("/_bench/v1/projects", json={"name": "ok"}, headers=good)
    assert made.status_code in (200, 201), made.text
    assert [p["name"] for p in cloud.projects()] == ["ok"]


def test_sign_in_needs_the_token_and_the_own_origin(browser_like: httpx.Client,
                                                    cloud: CloudControl,
                                                    cloud_process: EmulatorProcess) -> None:
    token = read_token(cloud_process.token_file)
    wrong = browser_like.post("/_bench/session", json={"token": "x" * len(token)},
                              headers=origin(cloud))
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    foreign = browser_like.post("/_bench/session", json={"token": token},
                                headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403 and "set-cookie" not in foreign.headers
    assert browser_like.get("/_bench/v1/projects").status_code == 401


def test_sign_out_ends_the_session(browser_like: httpx.Client, cloud: CloudControl,
                                   cloud_process: EmulatorProcess) -> None:
    sign_in(browser_like, cloud, cloud_process.token_file)
    assert browser_like.get("/_bench/session").status_code == 200
    assert browser_like.delete("/_bench/session", headers=origin(cloud)).status_code == 204
    assert browser_like.get("/_bench/v1/projects").status_code == 401

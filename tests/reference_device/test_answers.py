"""The answer-parsing layer (reference_device.answers) through the real ApiClient.

The client's httpx pool is swapped for one on a MockTransport, so every answer goes through
the same streamed, capped read as on the wire; the byte counters show what was pulled.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reference_device.answers import MAX_ANSWER_BYTES, BadAnswer
from reference_device.api import ApiClient
from reference_device.config import load_config
from reference_device.credentials import CredentialStore
from reference_device.errors import RetryableError, UnusableUrlError
from reference_device.tokens import TokenManager

MB = 1024 * 1024


@pytest.fixture
def config(tmp_path: Path) -> Any:
    (tmp_path / "m").mkdir()
    return load_config(None, env={"C2C_CLIENT_SECRET": "sec-123456"},
                       overrides={"state_dir": tmp_path / "s", "media_dirs": [tmp_path / "m"],
                                  "api_url": "https://cloud.test", "backoff_base": 0.01,
                                  "backoff_cap": 0.02})


def mock_api(config: Any, handler: Callable[[httpx.Request], httpx.Response]) -> ApiClient:
    api = ApiClient(config)
    client = httpx.Client(transport=httpx.MockTransport(handler),
                          headers={"x-client-version": config.firmware_version})
    api._get = lambda: client  # type: ignore[method-assign]
    return api


class Endless(httpx.SyncByteStream):
    """A body of `total` bytes sent in 64 KiB chunks, counting what the client pulled."""

    def __init__(self, total: int, first: bytes = b'{"id": "') -> None:
        self.total = total
        self.first = first
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        chunk = b"x" * 65536
        self.pulled += len(self.first)
        yield self.first
        while self.pulled < self.total:
            self.pulled += len(chunk)
            yield chunk


GARBLED_200 = {
    "html": (b"<html><body>Welcome to Hotel Wi-Fi. Please log in.</body></html>", "text/html",
             "text/html instead of JSON"),
    "empty": (b"", "application/json", "empty body"),
    "truncated": (b'{"id": "a1", "upload_urls": ["https://x/1"', "application/json", "invalid JSON"),
    "array": (b"[1, 2]", "application/json", "JSON list instead of an object"),
    "no urls": (b'{"id": "a1"}', "application/json", "upload_urls"),
    "wrong id type": (b'{"id": 7, "upload_urls": ["https://x/1"]}', "application/json", "field 'id'"),
}


@pytest.mark.parametrize("case", list(GARBLED_200))
def test_garbled_asset_create_is_a_transient_bad_answer(config: Any, case: str) -> None:
    body, ctype, problem = GARBLED_200[case]
    api = mock_api(config, lambda req: httpx.Response(200, content=body, headers={"content-type": ctype}))
    with pytest.raises(BadAnswer) as info:
        api.create_asset("tok", {"name": "a.bin", "filetype": "application/octet-stream", "filesize": 3})
    assert isinstance(info.value, RetryableError)
    assert str(info.value).startswith("POST /v2/devices/assets answered 200: ")
    assert problem in str(info.value)
    assert "Hotel" not in str(info.value)  # what the answer said never goes to the log


def test_a_50mb_answer_is_refused_before_it_is_in_memory(config: Any) -> None:
    undeclared = Endless(50 * MB)
    api = mock_api(config, lambda req: httpx.Response(
        200, headers={"content-type": "application/json"}, stream=undeclared))
    with pytest.raises(BadAnswer, match="answer too large"):
        api.me("tok")
    assert undeclared.pulled <= MAX_ANSWER_BYTES + 2 * 65536, undeclared.pulled

    declared = Endless(50 * MB)
    api = mock_api(config, lambda req: httpx.Response(
        200, headers={"content-type": "application/json", "content-length": str(50 * MB)},
        stream=declared))
    with pytest.raises(BadAnswer, match=r"answer too large \(52428800 bytes"):
        api.create_asset("tok", {"name": "a.bin", "filetype": "x/y", "filesize": 3})
    assert declared.pulled == 0  # refused on the declared length, nothing read


def test_me_without_project_id_is_a_bad_answer(config: Any) -> None:
    api = mock_api(config, lambda req: httpx.Response(200, json={"id": "d1", "project": "nope"}))
    with pytest.raises(BadAnswer, match=r"GET /v2/devices/me answered 200: no project id"):
        api.me("tok")


def _put_api(config: Any, headers: dict[str, str], seen: list[bytes]) -> ApiClient:
    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req.read())
        return httpx.Response(200, headers=headers)
    return mock_api(config, handler)


def test_part_put_200_without_etag_is_not_stored(config: Any) -> None:
    api = _put_api(config, {}, [])
    with pytest.raises(BadAnswer, match="no ETag: the part was not stored"):
        api.put_part("https://s3.test/p1?X-Amz-Expires=60", [b"abc"], 3, "x/y")


def test_part_put_plain_md5_etag_is_compared_with_the_bytes_sent(config: Any) -> None:
    seen: list[bytes] = []
    wrong = _put_api(config, {"ETag": '"' + hashlib.md5(b"other").hexdigest() + '"'}, seen)
    with pytest.raises(BadAnswer, match="ETag is not the MD5 of the part sent"):
        wrong.put_part("https://s3.test/p1", [b"ab", b"c"], 3, "x/y")
    right = _put_api(config, {"ETag": '"' + hashlib.md5(b"abc").hexdigest() + '"'}, seen)
    right.put_part("https://s3.test/p1", [b"ab", b"c"], 3, "x/y")
    multipart = _put_api(config, {"ETag": '"0123456789abcdef0123456789abcdef-2"'}, seen)
    multipart.put_part("https://s3.test/p1", [b"abc"], 3, "x/y")  # not a plain MD5: not compared
    assert seen[-1] == b"abc"


def test_http_upload_url_is_refused_not_https(config: Any) -> None:
    api = mock_api(config, lambda req: httpx.Response(200, headers={"ETag": "x"}))
    with pytest.raises(UnusableUrlError, match="refused: not HTTPS"):
        api.put_part("http://s3.test/p1?X-Amz-Expires=60", [b"abc"], 3, "x/y")


def test_non_s3_refusal_of_a_part_names_what_came_back(config: Any) -> None:
    api = mock_api(config, lambda req: httpx.Response(418, content=b"<html>teapot</html>",
                                                      headers={"content-type": "text/html"}))
    with pytest.raises(BadAnswer) as info:
        api.put_part("https://s3.test/p1", [b"abc"], 3, "x/y")
    assert "no S3 error document (text/html, 19 bytes)" in str(info.value)
    assert "S3 418 :" not in str(info.value)


# --- token refresh through the answer layer ------------------------------------------------
class RefreshScript:
    """Answers refreshes from a script; a dict is a real (rotating) token answer."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.n = 0

    def __call__(self, req: httpx.Request) -> httpx.Response:
        item = self.script.pop(0) if self.script else "ok"
        if item == "ok":
            self.n += 1
            return httpx.Response(200, json={"access_token": f"acc-{self.n}", "refresh_token": f"ref-{self.n}",
                                             "expires_in": 3600, "token_type": "bearer"})
        if isinstance(item, dict):
            self.n += 1
            return httpx.Response(200, json={"access_token": f"acc-{self.n}", "refresh_token": f"ref-{self.n}",
                                             **item})
        status, ctype, body = item
        return httpx.Response(status, content=body, headers={"content-type": ctype})


def _manager(config: Any, script: RefreshScript) -> tuple[TokenManager, CredentialStore, list[str]]:
    store = CredentialStore(config.credentials_path, config.key_path)
    repairs: list[str] = []
    tm = TokenManager(config, mock_api(config, script), store, stop=threading.Event(),
                      on_repair=repairs.append)
    tm.accept({"access_token": "acc-0", "refresh_token": "ref-0", "expires_in": 3600})
    return tm, store, repairs


PORTAL = (200, "text/html", b"<html>login</html>")


def test_non_json_refresh_is_transient_and_never_counted(config: Any) -> None:
    tm, store, repairs = _manager(config, RefreshScript([PORTAL, PORTAL, PORTAL, "ok"]))
    with pytest.raises(RetryableError, match="token refresh failed"):
        tm.refresh()
    assert tm.state == "valid" and tm.refresh_count == 0 and not repairs
    assert tm.current_tokens() == ("acc-0", "ref-0")
    assert store.load()["refresh_token"] == "ref-0"
    assert tm.refresh() == "acc-1" and tm.refresh_count == 1
    assert store.load()["refresh_token"] == "ref-1"


@pytest.mark.parametrize("answer", [
    (403, "text/html", b"<html>forbidden by the venue</html>"),
    (404, "text/html", b"not found"),
    (400, "application/json", json.dumps({"error": "invalid_client"}).encode()),
    (400, "application/json", b"{\"error\": 7}"),
    (302, "text/html", b""),
])
def test_only_documented_refusals_repair(config: Any, answer: tuple[int, str, bytes]) -> None:
    tm, store, repairs = _manager(config, RefreshScript([answer] * 3))
    with pytest.raises(RetryableError):
        tm.refresh()
    assert tm.state == "valid" and not repairs
    assert store.load()["refresh_token"] == "ref-0" and not store.load().get("repair_needed")


@pytest.mark.parametrize("answer", [
    (400, "application/json", json.dumps({"error": "invalid_request"}).encode()),
    (400, "application/json", json.dumps({"error": "invalid_grant"}).encode()),
    (401, "application/json", json.dumps({"message": "Not Authorized"}).encode()),
])
def test_documented_refusals_still_repair(config: Any, answer: tuple[int, str, bytes]) -> None:
    from reference_device.errors import RepairNeeded
    tm, _, repairs = _manager(config, RefreshScript([answer]))
    with pytest.raises(RepairNeeded):
        tm.refresh()
    assert tm.state == "repair_needed" and repairs


def test_wrongly_typed_field_keeps_the_rotated_pair(config: Any) -> None:
    tm, store, repairs = _manager(config, RefreshScript([{"expires_in": "soon"}]))
    assert tm.refresh() == "acc-1"
    assert tm.state == "valid" and tm.refresh_count == 1 and not repairs
    assert store.load()["refresh_token"] == "ref-1"
    assert tm.lifetime == 28800.0


def test_refresh_answer_without_tokens_keeps_the_old_pair(config: Any) -> None:
    tm, store, _ = _manager(config, RefreshScript([(200, "application/json", b'{"access_token": 5}')] * 3))
    with pytest.raises(RetryableError, match="access_token"):
        tm.refresh()
    assert tm.current_tokens() == ("acc-0", "ref-0") and store.load()["refresh_token"] == "ref-0"

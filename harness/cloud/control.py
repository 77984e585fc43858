"""`CloudControl`: an httpx client of the control API implementing `harness.protocols.Cloud`.

Every refusal becomes `harness.errors.CloudError` carrying the emulator's own message.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
import uuid
from collections.abc import Generator
from pathlib import Path
from typing import Any, TypedDict

import httpx

from harness.errors import CloudError
from harness.tls import ssl_context

JOURNAL_PAGE = 10_000
"""Rows per GET /journal (the emulator's own default page)."""


class JournalEntry(TypedDict):
    """One row of GET /journal: a device request as the emulator saw it (secrets redacted).

    `t` is when it was recorded (after the answer); `started_at` (same clock) when it
    arrived and `duration_ms` how long it was active, body upload included, so throughput
    is bytes over time actually spent transferring. Both are None on rows an older
    emulator wrote into the same data dir.
    """

    id: int
    t: float
    started_at: float | None
    duration_ms: float | None
    scheme: str
    method: str
    path: str
    status: int
    bytes_in: int
    bytes_out: int
    client: str | None
    device_id: str | None
    client_version: str | None
    headers: dict[str, str]


class BenchTokenAuth(httpx.Auth):
    """`Authorization: Bearer <bench token>` read from the emulator's token file.

    The value stays in memory only (never in a URL, argv or message). A 401 re-reads the
    file once and retries: a restarted emulator has written a new token to the same place.
    """

    def __init__(self, token_file: Path) -> None:
        self.token_file = Path(token_file)
        self._token: str | None = None

    def _read(self) -> str:
        try:
            return self.token_file.read_text(encoding="ascii").strip()
        except OSError as exc:
            raise CloudError(f"cannot read the bench token file {self.token_file}: "
                             f"{exc.strerror}") from None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token is None:
            self._token = self._read()
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:
            fresh = self._read()
            if fresh != self._token:
                self._token = fresh
                request.headers["Authorization"] = f"Bearer {fresh}"
                yield request

    def __repr__(self) -> str:
        return f"BenchTokenAuth({str(self.token_file)!r})"


class CloudControl:
    def __init__(self, api_url: str, ca_bundle: Path, *, plain_http_url: str = "",
                 client_secret_file: Path | None = None, token_file: Path | None = None,
                 timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.ca_bundle = Path(ca_bundle)
        self.plain_http_url = plain_http_url
        self.client_secret_file = client_secret_file
        self.token_file = Path(token_file) if token_file is not None else None
        self.auth: httpx.Auth | None = (BenchTokenAuth(self.token_file)
                                        if self.token_file is not None else None)
        """For a raw httpx call to /_bench (tests): `client.get(url, auth=cloud.auth)`."""
        self._http = httpx.Client(base_url=f"{self.api_url}/_bench/v1",
                                  verify=ssl_context(self.ca_bundle), timeout=timeout,
                                  auth=self.auth)

    def __enter__(self) -> CloudControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, json: Any = None,
              params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise CloudError(f"cloud emulator unreachable at {self.api_url}: {exc}") from exc
        if response.status_code >= 400:
            raise CloudError(f"control API {method} {path} -> {response.status_code}: "
                             f"{self._message(response)}")
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _object(self, method: str, path: str, json: Any = None,
                params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A call whose answer must be one JSON object; any other shape is a bench error."""
        body = self._call(method, path, json, params)
        if not isinstance(body, dict):
            raise CloudError(f"control API {method} {path} answered {type(body).__name__}, "
                             "not an object")
        return body

    def _rows(self, method: str, path: str, json: Any = None,
              params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """A call whose answer must be a JSON array of objects; any other shape is a bench error."""
        body = self._call(method, path, json, params)
        if not isinstance(body, list) or not all(isinstance(row, dict) for row in body):
            raise CloudError(f"control API {method} {path} answered something other than "
                             "an array of objects")
        return body

    @staticmethod
    def _message(response: httpx.Response) -> str:
        """The emulator's own words from a refusal ({"error": ...}), else the raw text."""
        try:
            body = response.json()
        except ValueError:
            return response.text
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])
        return response.text

    # --- harness.protocols.Cloud ------------------------------------------------------------
    def client_secret(self) -> str:
        if self.client_secret_file is None:
            raise CloudError("CloudControl was made without client_secret_file")
        try:
            data = tomllib.loads(self.client_secret_file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CloudError(f"cannot read {self.client_secret_file}: {exc}") from exc
        return str(data["client_secret"])

    def create_project(self, name: str) -> dict[str, Any]:
        return self._object("POST", "/projects", {"name": name})

    def projects(self) -> list[dict[str, Any]]:
        return self._rows("GET", "/projects")

    def rename_project(self, project_id: str, name: str) -> None:
        self._call("PATCH", f"/projects/{project_id}", {"name": name})

    def pending_codes(self) -> list[dict[str, Any]]:
        return self._rows("GET", "/codes")

    def approve(self, user_code: str, project_id: str) -> None:
        self._call("POST", f"/codes/{user_code}/approve", {"project_id": project_id})

    def deny(self, user_code: str) -> None:
        self._call("POST", f"/codes/{user_code}/deny")

    def devices(self) -> list[dict[str, Any]]:
        return self._rows("GET", "/devices")

    def rename_device(self, device_id: str, name: str) -> dict[str, Any]:
        return self._object("PATCH", f"/devices/{device_id}", {"name": name})

    def pause_device(self, device_id: str) -> None:
        self._call("POST", f"/devices/{device_id}/pause")

    def resume_device(self, device_id: str) -> None:
        self._call("POST", f"/devices/{device_id}/resume")

    def revoke_device(self, device_id: str) -> None:
        self._call("POST", f"/devices/{device_id}/revoke")

    def drop_content(self, device_id: str) -> None:
        """Delete the stored bytes of the device's assets (its ledger rows stay): disk back from
        a device that is done, on an emulator that goes on serving others."""
        self._call("POST", f"/devices/{device_id}/drop-content")

    def settings(self) -> dict[str, Any]:
        return self._object("GET", "/settings")

    def update_settings(self, **settings: Any) -> dict[str, Any]:
        return self._object("PUT", "/settings", settings)

    def add_client(self, name: str, **fields: Any) -> dict[str, Any]:
        return self._object("POST", "/clients", {"name": name, **fields})

    def expire_tokens(self, device_id: str | None = None) -> None:
        self._call("POST", "/tokens/expire", {"device_id": device_id} if device_id else {})

    def advance_clock(self, seconds: float) -> None:
        self._call("POST", "/clock/advance", {"seconds": seconds})

    def add_fault(self, rule: dict[str, Any], client_id: str | None = None) -> str:
        """Arm `rule`; with `client_id`, for that device's requests only (else every device's)."""
        body = rule if client_id is None else {**rule, "client_id": client_id}
        return str(self._object("POST", "/faults", body)["id"])

    def remove_fault(self, rule_id: str) -> None:
        self._call("DELETE", f"/faults/{rule_id}")

    def faults(self, client_id: str | None = None) -> list[dict[str, Any]]:
        """Every rule, or with `client_id` only the rules for that device."""
        return self._rows("GET", "/faults", params={"client_id": client_id} if client_id else None)

    def fault(self, rule_id: str) -> dict[str, Any]:
        return self._object("GET", f"/faults/{rule_id}")

    def clear_faults(self, client_id: str | None = None) -> None:
        """Remove every rule, or with `client_id` only the rules for that device."""
        self._call("DELETE", "/faults", params={"client_id": client_id} if client_id else None)

    def hold(self, target: str, path: str, *, method: str | None = None, hold_s: float | None = None,
             client_id: str | None = None) -> str:
        """Arm a `hold` rule: the next matching request is carried out but its answer is kept
        back until `release_fault` (or `hold_s`); `fault(id)["arrived_at"]` says when it came."""
        rule: dict[str, Any] = {"target": target, "kind": "hold", "path": path, "count": 1}
        if method is not None:
            rule["method"] = method
        if hold_s is not None:
            rule["hold_s"] = hold_s
        return self.add_fault(rule, client_id)

    def release_fault(self, rule_id: str) -> bool:
        """Let a `hold` rule's answers go; True if one was held."""
        return bool(self.release(rule_id)["released"])

    def release(self, rule_id: str) -> dict[str, Any]:
        """Let a `hold` rule's answers go: the rule after it ({released, released_at, ...})."""
        return self._object("POST", f"/faults/{rule_id}/release")

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        """Every journal row after id `since`, each shaped like `JournalEntry`, in order.

        The emulator answers a page at a time (JOURNAL_PAGE rows): a chatty device can leave more
        than a page in one scenario, and a verdict read from the first page alone would miss
        the newest rows."""
        rows: list[dict[str, Any]] = []
        while True:
            page = self._rows("GET", "/journal", params={"since": since, "limit": JOURNAL_PAGE})
            rows += page
            if len(page) < JOURNAL_PAGE:
                return rows
            since = max(int(row.get("id") or 0) for row in page)

    def ledger(self, device_id: str | None = None) -> list[dict[str, Any]]:
        return self._rows("GET", "/ledger", params={"device_id": device_id} if device_id else None)

    def assets(self, device_id: str | None = None) -> list[dict[str, Any]]:
        return self._rows("GET", "/assets", params={"device_id": device_id} if device_id else None)

    def asset_content(self, asset_id: str, dest: Path) -> Path:
        """Stream a complete asset's bytes to `dest` (atomically) for media probes.

        The file appears only once every byte arrived and its SHA-256 matches the
        emulator's; a refusal (unknown or incomplete asset) or a cut stream raises
        CloudError and leaves `dest` untouched.
        """
        dest = Path(dest)
        path = f"/assets/{asset_id}/content"
        if not dest.parent.is_dir():
            raise CloudError(f"cannot write asset content to {dest}: {dest.parent} is not a "
                             "directory")
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    raise CloudError(f"control API GET {path} -> {response.status_code}: "
                                     f"{self._message(response)}")
                sha = hashlib.sha256()
                with open(tmp, "wb") as out:
                    for chunk in response.iter_bytes(1024 * 1024):
                        sha.update(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                expected = response.headers.get("x-asset-sha256", "")
            if expected and sha.hexdigest() != expected:
                raise CloudError(f"asset {asset_id} content is corrupt: sha256 "
                                 f"{sha.hexdigest()} != {expected} announced by the emulator")
            os.replace(tmp, dest)
        except httpx.HTTPError as exc:
            raise CloudError(f"asset {asset_id} content download from {self.api_url} "
                             f"failed: {exc}") from exc
        except OSError as exc:
            raise CloudError(f"cannot write asset content to {dest}: {exc.strerror}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def plain_http_attempts(self) -> list[dict[str, Any]]:
        return self._rows("GET", "/plain-http")

    def websockets(self) -> list[dict[str, Any]]:
        return self._rows("GET", "/websockets")

    # --- witness records (harness.protocols.CloudWitness) -------------------------------------
    def bench_token(self) -> str | None:
        """This run's control-plane credential (for a leak scan: never log it); None without one."""
        if self.token_file is None:
            return None
        try:
            return self.token_file.read_text(encoding="ascii").strip() or None
        except OSError:
            return None

    def issued_tokens(self, device_id: str) -> list[str]:
        """The access and refresh token values issued to the device (for a leak scan: never log them)."""
        body = self._call("GET", f"/devices/{device_id}/tokens")
        return [str(t["value"]) for t in body.get("tokens", ()) if t.get("value")]

    def token_polls(self, client_id: str | None = None) -> list[dict[str, Any]]:
        """Device-code polls answered: {client_id, started_at, t, answer} (answer "ok" or the OAuth error)."""
        return self._rows("GET", "/token-polls", params={"client_id": client_id} if client_id else None)

    def status_beats(self, device_id: str, since: float = 0.0) -> dict[str, Any]:
        """{"now": cloud time, "beats": [{t, kind}]}: the device's socket beats and heartbeats since `since`."""
        return self._object("GET", "/status-beats", params={"device_id": device_id, "since": since})

    def state(self) -> dict[str, Any]:
        return self._object("GET", "/state")

    def now(self) -> float:
        """Emulator time (wall clock plus what `advance_clock` added): journal rows' `t`, `started_at`."""
        return float(self.state()["now"])

    def reset(self) -> None:
        self._call("POST", "/reset")

"""A deliberately incomplete C2C uploader: stdlib + httpx, no status API, console pairing.

It exists to prove a vendor's device can be certified from a profile alone
(fixtures/devices/minimal.toml): it pairs with the device-code flow, prints
"PAIRING CODE: 123456" on stdout, watches a folder, and uploads each new file with the
basic (known size) algorithm. It keeps almost nothing across restarts and has no UI, so
many checklist items are expected to fail or need an operator; none may crash the bench.

    UPLOADER_SECRET=... python uploader.py --api URL --ca CA.pem --watch DIR --state DIR --client-id ID
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import httpx

VERSION = "0.3.1"
MIME = {".jpg": "image/jpeg", ".mov": "video/quicktime", ".mp4": "video/mp4", ".wav": "audio/wav",
        ".heic": "image/heic", ".tif": "image/tiff", ".dng": "image/x-adobe-dng", ".cube": "text/plain"}


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


class Uploader:
    def __init__(self, api: str, ca: str, watch: Path, state: Path, client_id: str, secret: str) -> None:
        self.api = api.rstrip("/")
        self.http = httpx.Client(verify=ca, timeout=30, headers={"x-client-version": VERSION})
        self.watch, self.state, self.client_id, self.secret = watch, state, client_id, secret
        self.tokens_file = state / "tokens.json"
        self.done_file = state / "done.txt"
        self.tokens: dict[str, str] = {}

    # --- pairing -------------------------------------------------------------------------
    def pair(self) -> None:
        if self.tokens_file.exists():
            self.tokens = json.loads(self.tokens_file.read_text())
            return
        while True:
            r = self.http.post(f"{self.api}/v2/auth/device/code", files={
                "client_id": (None, self.client_id), "client_secret": (None, self.secret),
                "scope": (None, "asset_create offline")})
            r.raise_for_status()
            code = r.json()
            print(f"PAIRING CODE: {code['user_code']}", flush=True)
            deadline = time.time() + float(code.get("expires_in", 120))
            interval = float(code.get("interval", 5))
            while time.time() < deadline:
                time.sleep(interval)
                t = self.http.post(f"{self.api}/v2/auth/token", files={
                    "grant_type": (None, "urn:ietf:params:oauth:grant-type:device_code"),
                    "client_id": (None, self.client_id), "client_secret": (None, self.secret),
                    "device_code": (None, code["device_code"])})
                body = t.json()
                if t.status_code == 200:
                    self.save_tokens(body)
                    log("paired")
                    return
                if body.get("error") == "slow_down":
                    interval += 5
                elif body.get("error") != "authorization_pending":
                    break

    def save_tokens(self, body: dict[str, str]) -> None:
        self.tokens = {"access_token": body["access_token"], "refresh_token": body["refresh_token"]}
        fd = os.open(self.tokens_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.tokens, fh)

    def refresh(self) -> None:
        t = self.http.post(f"{self.api}/v2/auth/token", files={
            "grant_type": (None, "refresh_token"), "client_id": (None, self.client_id),
            "client_secret": (None, self.secret), "refresh_token": (None, self.tokens["refresh_token"])})
        t.raise_for_status()
        self.save_tokens(t.json())
        log("token refreshed")

    def authed(self, method: str, path: str, **kw: object) -> httpx.Response:
        for _ in range(2):
            r = self.http.request(method, f"{self.api}{path}",
                                  headers={"Authorization": f"Bearer {self.tokens['access_token']}"}, **kw)  # type: ignore[arg-type]
            if r.status_code != 401:
                return r
            self.refresh()
        return r

    # --- upload --------------------------------------------------------------------------
    def upload(self, path: Path) -> None:
        size = path.stat().st_size
        filetype = MIME.get(path.suffix.lower(), "application/octet-stream")
        r = self.authed("POST", "/v2/devices/assets", json={
            "name": path.name, "filetype": filetype, "filesize": size,
            "offset": max(0, int(time.time() - path.stat().st_mtime))})
        if r.status_code == 409:
            log(f"{path.name}: paused, not uploaded")
            return
        r.raise_for_status()
        urls = r.json()["upload_urls"]
        chunk = math.ceil(size / len(urls)) if urls else 0
        with path.open("rb") as fh:
            for i, url in enumerate(urls):
                fh.seek(i * chunk)
                data = fh.read(chunk)
                for attempt in range(5):
                    try:
                        p = self.http.put(url, content=data, headers={"Content-Type": filetype, "x-amz-acl": "private"})
                        if p.status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(1 + attempt)
                else:
                    raise RuntimeError(f"part {i} failed")
        log(f"uploaded {path.name}")

    def run(self) -> None:
        self.pair()
        done = set(self.done_file.read_text().splitlines()) if self.done_file.exists() else set()
        while True:
            for path in sorted(self.watch.iterdir()):
                if path.name in done or not path.is_file():
                    continue
                try:
                    self.upload(path)
                except (httpx.HTTPError, RuntimeError, OSError) as exc:
                    log(f"{path.name}: failed: {type(exc).__name__}")
                done.add(path.name)
                with self.done_file.open("a") as fh:
                    fh.write(path.name + "\n")
            time.sleep(0.5)


def main() -> int:
    ap = argparse.ArgumentParser()
    for opt in ("--api", "--ca", "--watch", "--state", "--client-id"):
        ap.add_argument(opt, required=True)
    args = ap.parse_args()
    secret = os.environ.get("UPLOADER_SECRET", "")
    if not secret:
        print("UPLOADER_SECRET is not set", file=sys.stderr)
        return 2
    Path(args.state).mkdir(parents=True, exist_ok=True)
    log(f"independent uploader {VERSION} watching {args.watch}")
    Uploader(args.api, args.ca, Path(args.watch), Path(args.state), args.client_id, secret).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

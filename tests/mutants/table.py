"""Seeded defects: variants of the reference device, each breaking one checklist behaviour.

A mutant is a patch applied inside the device process at launch (tests/mutants/launch.py);
reference_device/ itself never contains a defect. `item` is the checklist item the
mutant must fail; `also` lists items that fail with it because they share the very
scenario or the very behaviour (documented, checked by the matrix); every other
automatable item must still pass.

Why each `also` is a consequence of the one defect (kept minimal):
- loses-queue: the power-cut scenarios are shared by QUE-03, RTY-02, CTL-01 and RES-01; a file
  dropped from the queue is neither retried, nor resumed, nor survives the outage.
- never-refreshes: RTY-03 (an expired token must be refreshed to continue), QA-05 (an 8 h
  shift outlives every access token) and SEC-04 (its scenario expires the tokens so that the
  refreshed pair is what is checked at rest: its file arrives only after a refresh).
- blocks-on-corrupt: RES-04 shares the corrupt-media scenario; STAT-04 shows the stuck queue; its
  single worker (part of the defect) fails OPT-05 and NETW-01 in a full run, as no-parallel does.
- gives-up-on-network-errors: every item whose scenario cuts, flaps or roams the link sees a
  connection error and so a failed file (queue/resilience/network-switch/roaming items); so does
  SEC-02, whose refused TLS interceptor is a connection error the file must outlive.
- selection-ignored: OPT-01 (manual mode) is verified by uploading a selection.
- stale-project-name: QA-03 shares the project-name scenario; WF-08 is verified by oracle and
  status (checklist.md), its scenario waits for the renamed project on the device's status.
- no-heartbeat: the presence thread (socket, heartbeats, /me polls) is this device's only ear: with
  it gone nothing the cloud changes reaches it (renames: PROJ-01, QA-03, WF-08; pause and removal:
  QA-04) and an idle device never learns its link went down (NET-01, NETW-04).
- no-network-status: NETW-04 checks the same status fields across network profiles.
- no-parallel: NETW-01 on the lossy cellular packet link, where one loss-based connection stays
  near the Mathis bound, far below what the trace offers (its quick run selects only OPT-05).
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.mutants.hostile_mutants import HOSTILE_MUTANTS
from tests.mutants.independent_mutants import INDEPENDENT_MUTANTS
from tests.mutants.media_mutants import MEDIA_MUTANTS
from tests.mutants.patching import Mutant, replace
from tests.mutants.power_mutants import POWER_MUTANTS, loses_queue, restart_from_zero
from tests.mutants.status_mutants import STATUS_MUTANTS
from tests.mutants.tether_mutants import TETHER_MUTANTS
from tests.mutants.witness_mutants import WITNESS_MUTANTS


# --- the patches -------------------------------------------------------------------------------
def _no_version_header() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def send(self: Any, method: str, url: str, *, headers: dict[str, str] | None = None, **kw: Any) -> Any:
            return orig(self, method, url, headers={**(headers or {}), "x-client-version": "1.00"}, **kw)
        return send
    replace("reference_device.api:ApiClient.send", wrap)


def _plain_http() -> None:
    import httpx

    plain = os.environ.get("C2C_PLAIN_HTTP_URL", "")

    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def create_asset(self: Any, token: str, body: dict[str, Any]) -> Any:
            if plain:  # a "connectivity check" over plain HTTP before every upload
                try:
                    httpx.get(plain.rstrip("/") + "/v2/devices/me", headers={"x-client-version": "1.0.0"}, timeout=2)
                except httpx.HTTPError:
                    pass
            return orig(self, token, body)
        return create_asset
    replace("reference_device.api:ApiClient.create_asset", wrap)


def _accept_any_cert() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def ssl_context(self: Any) -> ssl.SSLContext:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        return ssl_context
    replace("reference_device.api:ApiClient.ssl_context", wrap)


def _no_hostname_check() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def ssl_context(self: Any) -> ssl.SSLContext:
            ctx = orig(self)
            ctx.check_hostname = False  # the chain is still verified against the trusted CA
            return ctx
        return ssl_context
    replace("reference_device.api:ApiClient.ssl_context", wrap)


def _no_retry_s3() -> None:
    from reference_device.errors import FatalUploadError, RetryableError

    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def classify(resp: Any, *args: Any, **kw: Any) -> Any:
            err = orig(resp, *args, **kw)
            return FatalUploadError(str(err), status=resp.status_code) if isinstance(err, RetryableError) else err
        return classify
    replace("reference_device.api:classify_s3_error", wrap)


def _no_retry_api() -> None:
    from reference_device.errors import FatalUploadError, RetryableError, UnauthorizedError

    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def classify(resp: Any, *args: Any, **kw: Any) -> Any:
            err = orig(resp, *args, **kw)
            if isinstance(err, RetryableError) and not isinstance(err, UnauthorizedError):
                return FatalUploadError(str(err), status=resp.status_code)
            return err
        return classify
    replace("reference_device.api:classify_api_error", wrap)


def _slow_down_is_fatal() -> None:
    from reference_device.errors import FatalUploadError, RetryableError

    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def classify(resp: Any, *args: Any, **kw: Any) -> Any:
            err = orig(resp, *args, **kw)
            if isinstance(err, RetryableError) and err.code == "slow_down":
                return FatalUploadError(str(err), status=resp.status_code)
            return err
        return classify
    replace("reference_device.api:classify_api_error", wrap)


def _uploads_paused_media() -> None:
    replace("reference_device.uploader:Uploader._offset", lambda orig: lambda self, rec: 0.0)


def _never_refreshes() -> None:
    from reference_device.errors import RepairNeeded

    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def refresh(self: Any, seen_token: str | None = None) -> str:
            # what the device does when a refresh is refused: forget the pair and ask to be paired
            # again (a mutant that only raised stayed "paired" with dead tokens: a second defect)
            with self._lock:
                self._enter_repair("mutant: refresh disabled")
            raise RepairNeeded("mutant: refresh disabled")
        return refresh
    replace("reference_device.tokens:TokenManager.refresh", wrap)


def _logs_token() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def accept(self: Any, answer: dict[str, Any], *args: Any, **kw: Any) -> None:
            orig(self, answer, *args, **kw)  # a refresh passes refresh_count: keep the signature
            path = Path(os.environ.get("C2C_MUTANT_DIR", "/tmp")) / "debug-tokens.log"
            with path.open("a") as fh:
                fh.write(f"access_token={answer.get('access_token')}\n")
        return accept
    replace("reference_device.tokens:TokenManager.accept", wrap)


def _logs_secret() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def init_secret(self: Any) -> None:
            orig(self)
            secret = getattr(self.config, "client_secret", None) or os.environ.get("C2C_CLIENT_SECRET", "")
            (Path(self.config.state_dir) / "support-export.txt").write_text(f"client_secret: {secret}\n")
        return init_secret
    replace("reference_device.engine:Engine._init_secret", wrap)


def _blocks_on_corrupt() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def check_file(path: Path, *a: Any, **kw: Any) -> int:
            try:
                return orig(path, *a, **kw)
            except Exception:
                # stall the (single) upload worker on a bad file: longer than CTL-04's 90 s wait, yet
                # bounded, so the scenarios after it in the same session are not all blocked too
                threading.Event().wait(100)
                raise
        return check_file
    replace("reference_device.media_check:check_file", wrap)


def _gives_up_on_network_errors() -> None:
    from reference_device.errors import FatalUploadError, RetryableError

    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def send(self: Any, *a: Any, **kw: Any) -> Any:
            try:
                return orig(self, *a, **kw)
            except RetryableError as exc:
                if exc.status is None:  # transport failure, not an HTTP answer
                    raise FatalUploadError(f"mutant: giving up: {exc}") from None
                raise
        return send
    replace("reference_device.api:ApiClient.send", wrap)


def _ignores_filetype_priority() -> None:
    replace("reference_device.queue:FileQueue.set_filetype_priority", lambda orig: lambda self, ext, priority: None)


def _ignores_queue_priority() -> None:
    replace("reference_device.queue:FileQueue.set_priority", lambda orig: lambda self, file_id, priority: True)


def _cancel_ignored() -> None:
    replace("reference_device.engine:Engine._c_cancel", lambda orig: lambda self, ids=None, all=False: {"cancelled": 0})


def _selection_ignored() -> None:
    replace("reference_device.engine:Engine._c_upload", lambda orig: lambda self, ids=None, all=False: orig(self, None, True))


def _pairing_not_cancellable() -> None:
    replace("reference_device.engine:Engine._c_pair_cancel", lambda orig: lambda self: {})


def _logout_no_revoke() -> None:
    replace("reference_device.api:ApiClient.revoke", lambda orig: lambda self, *a, **kw: None)


def _no_heartbeat() -> None:
    replace("reference_device.heartbeat:Presence._run", lambda orig: lambda self: None)


def _stale_project_name() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def identify(self: Any) -> Any:
            first = getattr(self, "_mutant_project", None)
            me = orig(self)
            if first is None:
                self._mutant_project = dict(self.project or {})
            else:
                self.project = {**(self.project or {}), "name": first.get("name")}
            return me
        return identify
    replace("reference_device.engine:Engine.identify", wrap)


def _no_network_status() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def snapshot(self: Any) -> dict[str, Any]:
            snap = orig(self)
            return {**snap, "online": True, "health": "good"}
        return snapshot
    replace("reference_device.netstats:NetworkStats.snapshot", wrap)


def _no_progress() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def snapshot(self: Any) -> dict[str, Any]:
            snap = orig(self)
            if isinstance(snap.get("current"), dict):
                snap["current"] = {**snap["current"], "bytes_done": 0, "progress": 0.0}
            return snap
        return snapshot
    replace("reference_device.engine:Engine.snapshot", wrap)


def _deletes_after_upload() -> None:
    def wrap(orig: Callable[..., Any]) -> Callable[..., Any]:
        def upload(self: Any, rec: Any, cancel: Any) -> None:
            orig(self, rec, cancel)
            Path(rec.path).unlink(missing_ok=True)
        return upload
    replace("reference_device.uploader:Uploader.upload", wrap)


_CORE: tuple[Mutant, ...] = (
    Mutant("no-version-header", "C2C-HDR-01", "sends x-client-version: 1.00 (not semver)",
           "reference_device.api:ApiClient.send", _no_version_header),
    Mutant("plain-http", "C2C-SEC-01", "calls /v2/devices/me over plain HTTP before every asset create",
           "reference_device.api:ApiClient.create_asset", _plain_http),
    Mutant("accept-any-cert", "C2C-SEC-02", "TLS verification off: trusts any certificate",
           "reference_device.api:ApiClient.ssl_context", _accept_any_cert),
    Mutant("no-hostname-check", "C2C-SEC-02", "verifies the certificate chain but not the host name",
           "reference_device.api:ApiClient.ssl_context", _no_hostname_check),
    Mutant("no-retry-s3", "C2C-CTL-03", "S3 SlowDown/500/503/timeouts are fatal (no retry)",
           "reference_device.api:classify_s3_error", _no_retry_s3, quick_k="not aws_nonfatal or slowdown"),
    Mutant("no-retry-api", "C2C-RTY-03", "API 500/429 are fatal (no retry)",
           "reference_device.api:classify_api_error", _no_retry_api,
           quick_k="not nonfatal_api or internal_error"),
    Mutant("slow-down-is-fatal", "C2C-RTY-03", "a 409 slow_down on asset create fails the file (an [INF] answer)",
           "reference_device.api:classify_api_error", _slow_down_is_fatal,
           expect="fail (inferred)"),  # no quick_k: an item with a scenario not run is not-run, which outranks it
    Mutant("uploads-paused-media", "C2C-CTL-02", "sends offset 0, so media captured while paused is uploaded",
           "reference_device.uploader:Uploader._offset", _uploads_paused_media),
    Mutant("restart-from-zero", "C2C-CTL-01", "never records finished parts: re-uploads the whole file after a cut",
           "reference_device.queue:FileQueue.ack_part", restart_from_zero),
    Mutant("loses-queue", "C2C-QUE-03", "drops the queue after a power cut",
           "reference_device.queue:FileQueue.reconcile", loses_queue,
           also=("C2C-RTY-02", "C2C-CTL-01", "C2C-RES-01")),
    Mutant("never-refreshes", "C2C-NET-02", "never refreshes the access token (asks to re-pair)",
           "reference_device.tokens:TokenManager.refresh", _never_refreshes,
           also=("C2C-RTY-03", "C2C-QA-05", "C2C-SEC-04")),
    Mutant("logs-token", "C2C-SEC-04", "writes the access token to a debug log in the state dir",
           "reference_device.tokens:TokenManager.accept", _logs_token),
    Mutant("logs-secret", "C2C-SEC-03", "writes the client secret to a support export",
           "reference_device.engine:Engine._init_secret", _logs_secret),
    Mutant("blocks-on-corrupt", "C2C-CTL-04", "stalls its only upload worker 100 s on a corrupt file",
           "reference_device.media_check:check_file", _blocks_on_corrupt,
           # one worker is part of the defect: a full run also fails parallel uploads (OPT-05) and
           # the lossy-cellular throughput (NETW-01), as no-parallel and stalls-behind-bad-media do
           also=("C2C-RES-04", "C2C-STAT-04", "C2C-OPT-05", "C2C-NETW-01"),
           env={"C2C_DEVICE_PARALLELISM": "1", "C2C_DEVICE_PARALLEL_FILES": "1"},
           quick_k="not corrupted or zero"),
    Mutant("gives-up-on-network-errors", "C2C-RTY-01", "a connection error fails the file instead of retrying",
           "reference_device.api:ApiClient.send", _gives_up_on_network_errors,
           also=("C2C-QUE-02", "C2C-RES-02", "C2C-RES-03", "C2C-RES-05", "C2C-NETW-05", "C2C-RES-01",
                 "C2C-QUE-03", "C2C-RTY-02", "C2C-CTL-01", "C2C-TNET-05", "C2C-SEC-02")),
    Mutant("no-parallel", "C2C-OPT-05", "one file and one part upload at a time (config via env)",
           "reference_device.config:DeviceConfig.parallelism", lambda: None,
           env={"C2C_DEVICE_PARALLELISM": "1", "C2C_DEVICE_PARALLEL_FILES": "1"}, also=("C2C-NETW-01",)),
    Mutant("ignores-filetype-priority", "C2C-OPT-03", "file-type priority setting ignored",
           "reference_device.queue:FileQueue.set_filetype_priority", _ignores_filetype_priority),
    Mutant("ignores-queue-priority", "C2C-OPT-04", "per-file priority ignored",
           "reference_device.queue:FileQueue.set_priority", _ignores_queue_priority),
    Mutant("cancel-ignored", "C2C-OPT-06", "cancel answers ok and does nothing",
           "reference_device.engine:Engine._c_cancel", _cancel_ignored),
    Mutant("selection-ignored", "C2C-OPT-02", "uploading one selected file uploads everything",
           "reference_device.engine:Engine._c_upload", _selection_ignored, also=("C2C-OPT-01",)),
    Mutant("pairing-not-cancellable", "C2C-AUTH-03", "cancel pairing is ignored; polling continues",
           "reference_device.engine:Engine._c_pair_cancel", _pairing_not_cancellable),
    Mutant("logout-no-revoke", "C2C-QA-02", "logout wipes local tokens but never revokes them",
           "reference_device.api:ApiClient.revoke", _logout_no_revoke,
           also=("C2C-AUTH-03",)),
    Mutant("no-heartbeat", "C2C-SOCK-01", "no websocket and no heartbeats",
           "reference_device.heartbeat:Presence._run", _no_heartbeat,
           also=("C2C-NET-01", "C2C-NETW-04", "C2C-PROJ-01", "C2C-QA-03", "C2C-QA-04", "C2C-WF-08")),
    Mutant("stale-project-name", "C2C-PROJ-01", "keeps showing the project name it first saw",
           "reference_device.engine:Engine.identify", _stale_project_name, also=("C2C-QA-03", "C2C-WF-08")),
    Mutant("no-network-status", "C2C-NET-01", "always shows the network as online and good",
           "reference_device.netstats:NetworkStats.snapshot", _no_network_status, also=("C2C-NETW-04",)),
    Mutant("no-progress", "C2C-STAT-03", "never shows progress of the current file",
           "reference_device.engine:Engine.snapshot", _no_progress),
    Mutant("deletes-after-upload", "C2C-UPL-03", "deletes local media once uploaded",
           "reference_device.uploader:Uploader.upload", _deletes_after_upload),
)


# More defects, one table per concern; each module lists its own tuple.
MUTANTS: tuple[Mutant, ...] = _CORE + STATUS_MUTANTS + WITNESS_MUTANTS + TETHER_MUTANTS + INDEPENDENT_MUTANTS + MEDIA_MUTANTS
MUTANTS += POWER_MUTANTS
MUTANTS += HOSTILE_MUTANTS


def get_mutant(name: str) -> Mutant:
    for m in MUTANTS:
        if m.name == name:
            return m
    raise KeyError(f"unknown mutant {name!r}; known: {', '.join(m.name for m in MUTANTS)}")

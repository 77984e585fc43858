"""Security Then-steps the bench decides from what it holds, not from shapes it guesses
(C2C-HDR-01, C2C-SEC-01, C2C-SEC-03, C2C-SEC-04).

- HDR-01: every API request of the scenario audited for a semver x-client-version.
- SEC-01: plain HTTP is trapped where a device would really send it: the API's own
  host:port (the network link records a connection that opens with an HTTP request line
  instead of a TLS record), besides the emulator's plain-HTTP listener.
- SEC-03/04: the exact client secret and the exact token values the emulator issued to this
  device (and simple encodings of them) are searched in every place the profile exposes and
  in the device's console. Only WHERE a value was found is reported, never the value.
"""

from __future__ import annotations

import base64
import json
import re

from pytest_bdd import then

from harness.bdd.bench import Bench
from harness.bdd.run_witness import api_requests, bad_version_headers
from harness.bdd.steps.pairing_steps import witness
from harness.errors import CloudError, FaultInjectionError, OperatorUnavailable, ProtocolViolation
from harness.protocols import PlainHttpTrap
from harness.redaction import TOKEN_PATTERNS

MAX_SCAN_BYTES = 20 * 1024 * 1024
CONSOLE = "device console"


# --- C2C-HDR-01 ------------------------------------------------------------------------------
@then("every HTTPS request carried a semver x-client-version header")
def _version_header(bench: Bench) -> None:
    """x-client-version on every API call, a semantic version (S3 part PUTs excluded)."""
    rows = api_requests(bench.journal())
    bad = bad_version_headers(rows)
    audited = bench.measure("C2C-HDR-01", "requests_audited", len(rows))
    clean = bench.measure("C2C-HDR-01", "requests_bad_header", len(bad))
    assert audited, "requests_audited=0 (limit >= 1): the cloud saw no API request in this scenario"
    if not clean:
        raise ProtocolViolation(f"requests_bad_header={len(bad)} (limit <= 0): request(s) without a semver "
                                f"x-client-version: {bad[:5]}")


# --- C2C-SEC-01 ------------------------------------------------------------------------------
@then("no request was made over plain HTTP")
def _no_plain_http(bench: Bench) -> None:
    """No plain-HTTP request reached the API's own host:port (the link's trap) nor the
    emulator's plain-HTTP listener during the scenario."""
    network = bench.network
    if not isinstance(network, PlainHttpTrap):
        raise FaultInjectionError("the network path has no plain-HTTP trap on the API port: "
                                  "a device speaking http:// to its API address would go unseen")
    trapped = [a for a in network.plain_http_attempts() if float(a.get("t") or 0) >= bench.state.started_at]
    listener = bench.cloud.plain_http_attempts()[bench.state.plain_http_baseline:]
    ok_port = bench.measure("C2C-SEC-01", "plain_http_api_port", len(trapped))
    ok_listener = bench.measure("C2C-SEC-01", "plain_http_listener", len(listener))
    if not (ok_port and ok_listener):
        first = (trapped or listener)[0]
        raise ProtocolViolation(
            f"plain_http_api_port={len(trapped)}, plain_http_listener={len(listener)} (limits <= 0): the device sent "
            f"request(s) over plain HTTP, e.g. {first.get('method')} {str(first.get('path') or '').split('?', 1)[0]}")


# --- C2C-SEC-03 / C2C-SEC-04 -----------------------------------------------------------------
def scan_texts(bench: Bench) -> list[tuple[str, str]]:
    """(place, text) for every log and state file the profile exposes, the status, and the console."""
    texts: list[tuple[str, str]] = []
    for root in bench.device.inspect_paths():
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        for p in paths:
            try:
                data = p.read_bytes()[:MAX_SCAN_BYTES]
            except OSError:
                continue
            texts.append((str(p), data.decode("utf-8", errors="replace")))
    st = bench.device.status()
    if st is not None:
        texts.append(("status.json", json.dumps(st)))
    console = bench.device_console()
    if console:
        texts.append((CONSOLE, console))
    return texts


def encodings(value: str) -> list[str]:
    """`value` and the plain encodings a device might store it under (base64, URL-safe base64)."""
    raw = value.encode("utf-8")
    out = [value, base64.b64encode(raw).decode().rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("=")]
    return list(dict.fromkeys(v for v in out if len(v) >= 8))


def leaks(texts: list[tuple[str, str]], secrets: list[str], patterns: tuple[re.Pattern[str], ...] = ()) -> list[str]:
    """The places whose text holds one of `secrets` (or an encoding of it) or matches a pattern."""
    needles = [e for s in secrets if s for e in encodings(s)]
    return sorted({where for where, text in texts
                   if any(n in text for n in needles) or any(rx.search(text) for rx in patterns)})


def _require_inspectable(bench: Bench) -> None:
    if not bench.device.inspect_paths() and not bench.has_status and not bench.device_console():
        raise OperatorUnavailable("the profile exposes no logs, state or console to scan; an operator must inspect "
                                  "the UI and exports")


@then("the device's logs, state and status contain no client secret")
def _no_secret(bench: Bench) -> None:
    """The client secret appears in no log, state file, status or console output the device exposes."""
    _require_inspectable(bench)
    secret = bench.cloud.client_secret()
    if not secret:
        raise CloudError("the cloud gave no client secret to search for")
    texts = scan_texts(bench)
    found = leaks(texts, [secret])
    scanned = bench.measure("C2C-SEC-03", "places_scanned", len(texts))
    clean = bench.measure("C2C-SEC-03", "secret_leaks", len(found))
    assert scanned, "places_scanned=0 (limit >= 1): nothing the device exposes could be read"
    assert clean, f"secret_leaks={len(found)} (limit <= 0): the client secret is readable in: {found}"


@then("the device's logs, state and status contain no access or refresh token")
def _no_tokens(bench: Bench) -> None:
    """No token value the emulator issued to this device, in plain or simply encoded form (nor
    anything shaped like a bearer token), in its logs, state, status or console output."""
    _require_inspectable(bench)
    tokens = witness(bench).issued_tokens(bench.cloud_device_id())
    if not tokens:
        raise CloudError("the emulator knows no token it issued to the device (restarted since?): nothing to search for")
    texts = scan_texts(bench)
    found = leaks(texts, tokens, TOKEN_PATTERNS)
    bench.measure("C2C-SEC-04", "tokens_known", len(tokens))
    scanned = bench.measure("C2C-SEC-04", "places_scanned", len(texts))
    clean = bench.measure("C2C-SEC-04", "token_leaks", len(found))
    assert scanned, "places_scanned=0 (limit >= 1): nothing the device exposes could be read"
    assert clean, f"token_leaks={len(found)} (limit <= 0): an access or refresh token is readable in: {found}"


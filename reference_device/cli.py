"""`c2c-device`: run the reference device, or drive a running one through its local API.

`run` starts the engine, the loopback status/control server and the terminal face. Every
other verb (`status`, `mode`, `upload`, `cancel`, `priority`, `retry`, `pair`,
`cancel-pairing`, `logout`, `shutter`) is a small HTTP client of a running device's control API
(CONTRACTS.md §4), found by --status-url, --status-port, or the `status-url` file the
running device leaves in its state directory.

There is no --client-secret option on purpose: argv is visible to every local user (ps).
The secret comes from C2C_CLIENT_SECRET, --client-secret-file, or the config file.

A running device dumps every thread's stack on SIGUSR1 (`kill -USR1 <pid>`): to stderr, or
to STATE_DIR/thread-stacks.txt while the terminal UI owns the screen. A device that stops
doing something without a log line names the call it is blocked in.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import functools
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from reference_device import __version__
from reference_device.errors import ConfigError, DeviceError
from reference_device.status_view import summary_line

__all__ = ["DeviceClient", "DeviceUnreachable", "build_parser", "main", "serve"]

log = logging.getLogger("reference_device")

STATUS_URL_FILE = "status-url"
STACKS_FILE = "thread-stacks.txt"
STACK_DUMP_SIGNAL = signal.SIGUSR1
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class DeviceUnreachable(DeviceError):
    """No device answers at the status URL, or it refused the action."""


# -- the client of a running device ----------------------------------------------------------
class DeviceClient:
    """Talks to a running device's loopback status/control port."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        token = os.environ.get("C2C_STATUS_TOKEN")  # a status port beyond loopback wants it
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False,
                                  headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            r = self._http.request(method, path, json=body if method == "POST" else None)
        except httpx.TransportError as exc:
            raise DeviceUnreachable(
                f"no device answers at {self.base_url} ({type(exc).__name__}); is "
                "`c2c-device run` running? Give --status-port, --status-url or --state-dir."
            ) from None
        try:
            data = r.json()
        except ValueError:
            data = None
        if r.status_code >= 400:
            err = data.get("error") if isinstance(data, dict) else None
            raise DeviceUnreachable(err or f"device answered HTTP {r.status_code}")
        return data

    def status(self) -> dict[str, Any]:
        data = self._request("GET", "/status.json")
        if not isinstance(data, dict):
            raise DeviceUnreachable(f"{self.base_url}/status.json did not answer a JSON object")
        return data

    def control(self, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = self._request("POST", f"/api/{action}", body or {})
        return data if isinstance(data, dict) else {"ok": True}


# -- argument parsing ------------------------------------------------------------------------
def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def _locator() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    g = p.add_argument_group("finding the running device")
    g.add_argument("--status-url", help="e.g. http://127.0.0.1:8765")
    g.add_argument("--status-port", type=_port, help="the device's status port on 127.0.0.1")
    g.add_argument("--state-dir", type=Path, help="read the status URL the device left there")
    g.add_argument("--config", type=Path, help="the device's config file (for its state dir)")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="c2c-device",
        description="Frame.io C2C reference device: run it, or control a running one.",
        allow_abbrev=False,  # --client-secret must never be taken for --client-secret-file
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser = functools.partial(sub.add_parser, allow_abbrev=False)  # type: ignore[method-assign]

    run = sub.add_parser(
        "run", help="run the device (engine, status page, terminal UI)",
        description="Run the device. `kill -USR1 <pid>` dumps every thread's stack to stderr "
                    f"(to STATE_DIR/{STACKS_FILE} with the terminal UI).")
    run.add_argument("--config", type=Path, help="TOML config file")
    run.add_argument("--api-url", help="C2C API base URL (https only)")
    run.add_argument("--ca-bundle", type=Path, help="CA certificate(s) to trust for the API")
    run.add_argument("--media-dir", type=Path, action="append", dest="media_dirs",
                     metavar="DIR", help="watch folder (repeatable)")
    run.add_argument("--state-dir", type=Path, help="queue, credentials, client_id")
    run.add_argument("--status-port", type=_port, help="local status/control port (0 = any)")
    run.add_argument("--status-host", default="127.0.0.1",
                     help="address of the status/control port (default 127.0.0.1); beyond "
                          "loopback it needs a token in $C2C_STATUS_TOKEN or "
                          "--status-token-file (never on the command line)")
    run.add_argument("--status-token-file", type=Path,
                     help="file holding the status port's bearer token")
    run.add_argument("--firmware", help="firmware version sent as x-client-version")
    run.add_argument("--name", help="device name")
    run.add_argument("--mode", choices=("auto", "manual"), help="upload mode")
    run.add_argument("--client-secret-file", type=Path,
                     help="file holding the client secret (or set C2C_CLIENT_SECRET)")
    run.add_argument("--log-file", type=Path,
                     help="log file (default STATE_DIR/device.log; also stderr without the TUI)")
    run.add_argument("--tether", action="store_true", default=None,
                     help="also download and upload what a USB/PTP camera shoots (gphoto2); "
                          "defaults or the config's [sources.tether] table")
    run.add_argument("--no-tui", action="store_true",
                     help="plain status lines instead of the terminal UI")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    loc = _locator()
    st = sub.add_parser("status", parents=[loc], help="show a running device's status")
    st.add_argument("--json", action="store_true", help="print the c2c-status/1 JSON")
    sub.add_parser("pair", parents=[loc], help="start pairing (show a new code)")
    sub.add_parser("cancel-pairing", parents=[loc], help="cancel pairing at any step")
    sub.add_parser("logout", parents=[loc], help="revoke the tokens and forget them")
    mode = sub.add_parser("mode", parents=[loc], help="switch automatic / manual upload")
    mode.add_argument("mode", choices=("auto", "manual"))
    for verb, text in (("upload", "upload files now"), ("cancel", "cancel uploads"),
                       ("retry", "retry failed uploads (all when no ID is given)")):
        p = sub.add_parser(verb, parents=[loc], help=text)
        p.add_argument("ids", nargs="*", metavar="ID", help="file ids (see `status --json`)")
        p.add_argument("--all", action="store_true", help="every file")
    sh = sub.add_parser("shutter", parents=[loc], help="fire the tethered camera's shutter")
    sh.add_argument("-n", "--count", type=int, default=1, help="frames to shoot (default 1)")
    pr = sub.add_parser("priority", parents=[loc], help="set a file's or a file type's priority")
    pr.add_argument("target", metavar="ID", nargs="?", help="file id")
    pr.add_argument("priority", type=int, metavar="N", help="higher uploads first")
    pr.add_argument("--filetype", metavar="EXT", help="set it for a file type, e.g. .mov")
    return parser


# -- locating a running device ---------------------------------------------------------------
def _status_url(args: argparse.Namespace) -> str:
    if args.status_url:
        return str(args.status_url)
    if args.status_port is not None:
        return f"http://127.0.0.1:{args.status_port}"
    state_dir: Path | None = args.state_dir
    port_from_config = None
    if state_dir is None and args.config is not None:
        from reference_device.config import load_config

        cfg = load_config(args.config, env={k: v for k, v in os.environ.items()
                                            if k != "C2C_CLIENT_SECRET"})
        state_dir, port_from_config = cfg.state_dir, cfg.status_port or None
    if state_dir is None and os.environ.get("C2C_DEVICE_STATE_DIR"):
        state_dir = Path(os.environ["C2C_DEVICE_STATE_DIR"])
    if state_dir is not None:
        try:
            return (state_dir / STATUS_URL_FILE).read_text().strip()
        except OSError:
            if port_from_config:
                return f"http://127.0.0.1:{port_from_config}"
            raise DeviceUnreachable(
                f"no running device found: {state_dir / STATUS_URL_FILE} does not exist"
            ) from None
    if os.environ.get("C2C_DEVICE_STATUS_PORT"):
        return f"http://127.0.0.1:{os.environ['C2C_DEVICE_STATUS_PORT']}"
    raise ConfigError("status_port", "say where the device is: --status-port, --status-url, "
                      "--state-dir or --config")


def _selection(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    if args.all and args.ids:
        parser.error(f"{args.command}: give file IDs or --all, not both")
    if args.all or (args.command == "retry" and not args.ids):
        return {"all": True}
    if not args.ids:
        parser.error(f"{args.command}: give one or more file IDs, or --all")
    return {"ids": list(args.ids)}


def _control_body(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[str, dict[str, Any]]:
    cmd = args.command
    if cmd == "pair":
        return "pairing/start", {}
    if cmd == "cancel-pairing":
        return "pairing/cancel", {}
    if cmd == "logout":
        return "logout", {}
    if cmd == "mode":
        return "mode", {"mode": args.mode}
    if cmd in ("upload", "cancel", "retry"):
        return cmd, _selection(args, parser)
    if cmd == "shutter":
        return "shutter", {"count": args.count}
    if cmd == "priority":
        if (args.target is None) == (args.filetype is None):
            parser.error("priority: give a file ID or --filetype EXT (one of them)")
        if args.filetype is not None:
            return "priority", {"filetype": args.filetype, "priority": args.priority}
        return "priority", {"id": args.target, "priority": args.priority}
    raise AssertionError(cmd)  # pragma: no cover


def _print_status(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return
    if sys.stdout.isatty():
        from rich.console import Console

        from reference_device.tui import render_status

        Console().print(render_status(data))
    else:
        print(summary_line(data))


# -- run -------------------------------------------------------------------------------------
def _config_from_args(args: argparse.Namespace) -> Any:
    from reference_device.config import load_config

    overrides = {
        "api_url": args.api_url,
        "ca_bundle": args.ca_bundle,
        "media_dirs": args.media_dirs,
        "state_dir": args.state_dir,
        "status_port": args.status_port,
        "firmware_version": args.firmware,
        "name": args.name,
        "mode": args.mode,
        "client_secret_file": args.client_secret_file,
        "log_file": args.log_file,
        "tether": args.tether,
    }
    return load_config(args.config, overrides={k: v for k, v in overrides.items() if v is not None})


def _setup_logging(config: Any, *, to_stderr: bool, verbose: bool) -> None:
    """The engine's logging (state-dir log file, secret redactor), stderr only without TUI."""
    from reference_device.engine import setup_logging

    setup_logging(config, stderr=to_stderr)
    root = logging.getLogger()
    if verbose:
        root.setLevel(logging.DEBUG)
    for noisy in ("httpx", "httpcore", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _status_listen(host: str, token_file: Path | None) -> tuple[str, str | None]:
    """Where the status port listens and its token (None on loopback without one)."""
    token = os.environ.get("C2C_STATUS_TOKEN") or None
    if token_file is not None:
        token = Path(token_file).read_text(encoding="utf-8").strip() or None
    if token:
        redact_token(token)
    return host, token


def redact_token(token: str) -> None:
    """The status token is a secret like the client secret: never in the device's logs."""
    from reference_device.credentials import redactor

    redactor.add(token)


def _write_status_url(state_dir: Path, url: str) -> Path:
    path = state_dir / STATUS_URL_FILE
    tmp = path.with_name(f".{STATUS_URL_FILE}.{os.getpid()}.tmp")
    tmp.write_text(url + "\n")
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM / SIGINT / SIGHUP ask for a clean stop (SIGKILL is the power cut)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(config: Any, *, use_tui: bool, stop: threading.Event | None = None,
          status_host: str = "127.0.0.1", status_token_file: Path | None = None) -> int:
    """Run engine + status server + terminal face until `stop` (or a signal)."""
    from reference_device.credentials import redactor
    from reference_device.engine import Engine
    from reference_device.status_server import StatusServer
    from reference_device.tui import TerminalUI

    stop = stop or threading.Event()
    redactor.add(getattr(config, "client_secret", None))
    engine = Engine(config)
    host, token = _status_listen(status_host, status_token_file)
    server = StatusServer(engine, host=host, port=config.status_port, token=token)
    server.start()  # bind first: a taken port is a clear error before any cloud traffic
    url_file = _write_status_url(config.state_dir, server.url)
    print(f"STATUS {server.url}/status.json", flush=True)
    log.info("status page at %s", server.url)
    try:
        engine.start()
        ui = TerminalUI(engine, interactive=None if use_tui else False)
        with _stop_on_signals(stop):
            ui.run(stop)
    finally:
        try:
            engine.stop()
        finally:
            server.stop()
            with contextlib.suppress(OSError):
                url_file.unlink()
    return EXIT_OK


def enable_stack_dumps(state_dir: Path, *, to_stderr: bool) -> Path | None:
    """SIGUSR1 dumps every thread's stack: a blocked call is named without a debugger.

    faulthandler writes from the signal handler itself, so the dump comes even when every
    Python thread is stuck (a lock, a socket without a timeout). Stderr is the console the
    bench keeps; with the terminal UI the dump goes to a file instead of over the screen.
    Returns the file written to, or None for stderr.
    """
    if to_stderr:
        faulthandler.register(STACK_DUMP_SIGNAL, file=sys.stderr, all_threads=True)
        return None
    path = state_dir / STACKS_FILE
    fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - faulthandler writes to it until exit
    faulthandler.register(STACK_DUMP_SIGNAL, file=fh, all_threads=True)
    return path


def _run(args: argparse.Namespace) -> int:
    os.umask(0o077)  # logs, queue, credentials, client id: nothing the device writes is for others
    config = _config_from_args(args)
    use_tui = not args.no_tui and sys.stdout.isatty() and sys.stdin.isatty()
    _setup_logging(config, to_stderr=not use_tui, verbose=args.verbose)
    enable_stack_dumps(config.state_dir, to_stderr=not use_tui)
    return serve(config, use_tui=use_tui, status_host=args.status_host,
                 status_token_file=args.status_token_file)


# -- entry point -----------------------------------------------------------------------------
def _refuse_secret_in_argv(argv: Sequence[str]) -> bool:
    """Catch --client-secret before argparse echoes its value in an error message."""
    for arg in argv:
        if arg == "--client-secret" or arg.startswith("--client-secret="):
            print("c2c-device: --client-secret is not accepted (argv is visible to every local "
                  "user); set C2C_CLIENT_SECRET or use --client-secret-file", file=sys.stderr)
            return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _refuse_secret_in_argv(argv):
        return EXIT_USAGE
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "status":
            with DeviceClient(_status_url(args)) as client:
                _print_status(client.status(), args.json)
            return EXIT_OK
        action, body = _control_body(args, parser)
        with DeviceClient(_status_url(args)) as client:
            client.control(action, body)
        print(f"{args.command}: ok")
        return EXIT_OK
    except ConfigError as exc:
        print(f"c2c-device: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DeviceError as exc:
        print(f"c2c-device: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"c2c-device: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

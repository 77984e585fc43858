"""A Toxiproxy-v2.12.0-compatible server: the `c2c-toxiproxy` command and an in-process runner.

    server = ToxiproxyServer(seed=7).start()   # API on 127.0.0.1:<ephemeral>
    server.api_url                            # "http://127.0.0.1:PORT"
    server.stop()

The command takes the real server's flags (`-host -port -config -seed -version`, also with
`--`); unlike the real one, `-seed` makes toxicity and jitter draws repeatable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import FaultInjectionError
from harness.faults.network.api import VERSION, ApiServer
from harness.faults.network.registry import ApiError, ProxyRegistry

log = logging.getLogger("harness.faults.network")


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency, but optional here
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _bind_host(host: str) -> str:
    return "127.0.0.1" if host == "localhost" else host


class ToxiproxyServer:
    """Runs the API and every proxy on one event loop in a daemon thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        config: Path | None = None,
        proxy_metrics: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.seed = seed
        self.config = config
        self.registry = ProxyRegistry(seed, metrics=proxy_metrics)
        self._api = ApiServer(self.registry)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._bound: tuple[str, int] | None = None

    @property
    def api_url(self) -> str:
        if self._bound is None:
            raise FaultInjectionError("toxiproxy server is not running")
        host, port = self._bound
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    def start(self, timeout: float = 10.0) -> ToxiproxyServer:
        """Start the loop thread and wait until the API listens. Raises FaultInjectionError."""
        if self._thread is not None:
            return self
        self._loop = _new_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._bound = self._loop.run_until_complete(self._startup())
            except BaseException as exc:
                failure.append(exc)
                self._loop.close()
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._shutdown())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="c2c-toxiproxy", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or failure:
            self._thread = None
            reason = failure[0] if failure else "timed out"
            raise FaultInjectionError(
                f"toxiproxy server could not listen on {self.host}:{self.port}: {reason}"
            )
        return self

    async def _startup(self) -> tuple[str, int]:
        bound = await self._api.start(_bind_host(self.host), self.port)
        if self.config is not None:
            await load_config(self.registry, self.config)
        return bound

    async def _shutdown(self) -> None:
        await self._api.close()
        await self.registry.close()
        await cancel_pending()

    def stop(self, timeout: float = 10.0) -> None:
        """Close every proxy and the API; idempotent."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None
        self._bound = None

    def __enter__(self) -> ToxiproxyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def cancel_pending() -> None:
    """Let cancelled link tasks finish so closing the loop leaves nothing dangling."""
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def load_config(registry: ProxyRegistry, path: Path) -> None:
    """Apply a `-config` file (a /populate array). Like Go, failures are logged, not fatal."""
    try:
        entries: Any = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.error("config %s not loaded: %s", path, exc)
        return
    try:
        await registry.populate(entries)
    except ApiError as exc:
        log.error("config %s: %s", path, exc.message)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="c2c-toxiproxy", description="Toxiproxy v2.12.0-compatible fault proxy (c2c-bench)"
    )
    parser.add_argument("-host", "--host", default="localhost", help="API host (default localhost)")
    parser.add_argument("-port", "--port", type=int, default=8474, help="API port, 0 = ephemeral")
    parser.add_argument("-config", "--config", type=Path, help="JSON file of proxies, as /populate")
    parser.add_argument("-seed", "--seed", type=int, help="seed for toxicity and jitter draws")
    parser.add_argument("-version", "--version", action="store_true", help="print the version")
    parser.add_argument(
        "-proxy-metrics",
        "--proxy-metrics",
        action="store_true",
        help="serve /metrics (byte counters)",
    )
    parser.add_argument(
        "-runtime-metrics",
        "--runtime-metrics",
        action="store_true",
        help="also enables /metrics (no Go runtime collectors here)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        print(f"toxiproxy-server version {VERSION}")
        return 0
    level = os.environ.get("LOG_LEVEL", "info").upper()
    logging.basicConfig(
        level=getattr(
            logging,
            {"WARN": "WARNING", "TRACE": "DEBUG", "PANIC": "CRITICAL", "FATAL": "CRITICAL"}.get(
                level, level
            ),
            logging.INFO,
        ),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    registry = ProxyRegistry(args.seed, metrics=args.proxy_metrics or args.runtime_metrics)
    api = ApiServer(registry)
    try:
        host, port = loop.run_until_complete(api.start(_bind_host(args.host), args.port))
    except OSError as exc:
        print(
            f"c2c-toxiproxy: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    if args.config is not None:
        loop.run_until_complete(load_config(registry, args.config))
    shown = f"[{host}]" if ":" in host else host
    print(
        json.dumps({"api_url": f"http://{shown}:{port}", "version": VERSION, "pid": os.getpid()}),
        flush=True,
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, loop.stop)
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(api.close())
        loop.run_until_complete(registry.close())
        loop.run_until_complete(cancel_pending())
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

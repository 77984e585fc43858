"""mitmproxy 12 running in-process, in its own thread and event loop.

Why in-process: addons are plain Python objects the harness can configure and read between
steps (rules, audit records), with no side channel. mitmproxy's master must be built inside
a running loop and most addon options only exist once the master is built, so both happen
in the proxy thread (fault-injection.md §3.2).

    proxy = MitmProxy(f"reverse:https://127.0.0.1:{port}@127.0.0.1:0", [audit],
                      confdir=tmp / "mitm", ssl_verify_upstream_trusted_ca=str(ca),
                      keep_host_header=True)
    proxy.start()
    ... https://127.0.0.1:{proxy.port} ...
    proxy.stop()

Caveat inherited from mitmproxy: while starting, any ERROR log record from any logger in
the process makes mitmproxy quit (its errorcheck addon); `start()` reports those messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path
from typing import Any

from harness.errors import FaultInjectionError

START_TIMEOUT = 15.0


class MitmProxy:
    """One mitmproxy instance. `mode` is a mitmproxy mode spec, e.g. `reverse:https://h:p@127.0.0.1:0`."""

    def __init__(self, mode: str, addons: list[Any], confdir: Path, **options: Any) -> None:
        self.mode = mode
        self.addons = list(addons)
        self.confdir = Path(confdir)
        self.options = dict(options)
        self._master: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self._failure: BaseException | None = None
        self._port: int | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT) -> MitmProxy:
        """Start the proxy and wait until it listens; FaultInjectionError with the reason if not."""
        if self._thread is not None:
            raise FaultInjectionError("mitmproxy already started")
        self.confdir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._thread_main, name="mitmproxy", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._thread.is_alive() or self._failure is not None:
                break
            addrs = self._listen_addrs()
            if addrs and self._running.is_set():
                self._port = int(addrs[0][1])
                return self
            time.sleep(0.02)
        reason = self._failure_reason() or f"not listening after {timeout:.0f}s"
        self.stop()
        raise FaultInjectionError(f"mitmproxy ({self.mode}) did not start: {reason}")

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the proxy down and join its thread (idempotent). Shutting down waits for open
        connections' tasks and the loop's executor: on a loaded 2-core bench (load 10) that once
        took more than 10 s."""
        master, thread = self._master, self._thread
        if master is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # loop already closed
                master.shutdown()
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise FaultInjectionError(f"mitmproxy did not stop within {timeout:.0f}s")
        self._uninstall_errorcheck()
        self._thread = None

    def __enter__(self) -> MitmProxy:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- facts ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise FaultInjectionError("mitmproxy is not running")
        return self._port

    @property
    def url(self) -> str:
        """https://127.0.0.1:PORT — what a device is given in reverse mode."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> Path:
        """The CA certificate (PEM, no key) mitmproxy forges leaves with; trust it to pass."""
        return self.confdir / "mitmproxy-ca-cert.pem"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._port is not None

    def update_options(self, timeout: float = 5.0, **options: Any) -> None:
        """Change options from any thread (e.g. `stream_large_bodies=None`); waits until applied."""
        if self._master is None or self._loop is None or not self.running:
            raise FaultInjectionError("mitmproxy is not running")

        async def apply() -> None:
            self._master.options.update(**options)

        future = asyncio.run_coroutine_threadsafe(apply(), self._loop)
        try:
            future.result(timeout)
        except KeyError as exc:
            raise FaultInjectionError(f"mitmproxy rejected options: {exc}") from None
        except Exception as exc:
            raise FaultInjectionError(f"mitmproxy could not apply options: {exc}") from exc

    # -- internals ------------------------------------------------------------------------
    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except SystemExit:  # errorcheck: an error was logged during startup
            pass
        except BaseException as exc:  # reported by start()
            self._failure = exc

    async def _main(self) -> None:
        from mitmproxy import options as mitm_options
        from mitmproxy.tools.dump import DumpMaster

        opts = mitm_options.Options(mode=[self.mode], confdir=str(self.confdir), http3=False)
        master = DumpMaster(opts, with_termlog=False, with_dumper=False)
        self._master = master
        self._loop = asyncio.get_running_loop()
        try:
            master.options.update(**self.options)
        except KeyError as exc:
            raise FaultInjectionError(f"unknown mitmproxy option: {exc}") from None
        for addon in self.addons:
            master.addons.add(addon)
        master.addons.add(_RunningSignal(self._running))
        await master.run()

    def _listen_addrs(self) -> list[tuple[str, int]]:
        master = self._master
        if master is None:
            return []
        server = master.addons.get("proxyserver")
        try:
            return [tuple(a[:2]) for a in server.listen_addrs()] if server else []
        except RuntimeError:
            return []

    def _failure_reason(self) -> str | None:
        if self._failure is not None:
            return f"{type(self._failure).__name__}: {self._failure}"
        master = self._master
        if master is not None:
            check = master.addons.get("errorcheck")
            if check is not None and check.logger.has_errored:
                return "; ".join(r.getMessage() for r in check.logger.has_errored)
        return None

    def _uninstall_errorcheck(self) -> None:
        """errorcheck leaves its root-logger handler behind when startup fails; remove it."""
        master = self._master
        check = master.addons.get("errorcheck") if master is not None else None
        if check is not None:
            with contextlib.suppress(ValueError, AttributeError):
                check.logger.uninstall()


class _RunningSignal:
    """Added last, so its `running` hook fires after mitmproxy's own (the CA exists by then)."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def running(self) -> None:
        self._event.set()

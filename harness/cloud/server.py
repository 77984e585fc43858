"""Runs the emulator: uvicorn over TLS plus the plain-HTTP listener on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import uvicorn

from harness.cloud.app import build_app
from harness.cloud.core import CloudCore
from harness.cloud.limits import GuardedHttpToolsProtocol
from harness.cloud.plain import start_plain_listener
from harness.cloud.security import MAX_JSON_BODY, issue_token, served_names
from harness.cloud.settings import CloudSettings

IO_THREADS = 32


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def write_ready(path: Path, facts: dict[str, object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(facts, indent=2), encoding="utf-8")
    os.replace(tmp, path)


async def serve(data_dir: Path, host: str, port: int, http_port: int,
                settings: CloudSettings, ready_file: Path | None, quiet: bool,
                allow_hosts: tuple[str, ...] = ()) -> None:
    # Part bodies are hashed and written in the default executor, a block per upload at a
    # time: one thread per concurrent upload (32 clients) keeps none of them queued.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="c2c-io"))
    core = CloudCore(data_dir, settings, cert_names=(host, *allow_hosts))  # a LAN camera checks them
    token, token_file = issue_token(data_dir)  # per run; only its path is ever shown
    app = build_app(core, token=token, names=served_names(host, allow_hosts))
    sock = bind(host, port)
    api_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, ssl_certfile=str(core.certs.server_cert), ssl_keyfile=str(core.certs.server_key),
        http=GuardedHttpToolsProtocol, ws="websockets-sansio", lifespan="off", access_log=False,
        log_level="warning", timeout_keep_alive=75, ws_ping_interval=None,
        ws_max_size=MAX_JSON_BODY,
        server_header=False, date_header=True, timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    # Our loop owns SIGINT/SIGTERM (clean journal flush); uvicorn must not re-raise them.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    plain = await start_plain_listener(core, host, http_port)
    plain_port = plain.sockets[0].getsockname()[1]
    serve_task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serve_task.done():
            serve_task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)

    api_url = f"https://{url_host(host)}:{api_port}"
    facts = {
        "api_url": api_url, "plain_http_url": f"http://{url_host(host)}:{plain_port}",
        "control_url": f"{api_url}/_bench/v1", "pairing_url": f"{api_url}/pair",
        "ca_bundle": str(core.certs.ca_cert), "client_secret_file": str(core.client_secret_file),
        "token_file": str(token_file), "pid": os.getpid(),
    }
    if ready_file is not None:
        write_ready(ready_file, facts)
    if not quiet:
        print(f"c2c-cloud: Frame.io C2C emulator listening on {api_url}", flush=True)
        print(f"  pairing page     {facts['pairing_url']}", flush=True)
        print(f"  CA bundle        {facts['ca_bundle']}  (devices must trust this)", flush=True)
        print(f"  control API      {facts['control_url']}  (schema /_bench/openapi.json)",
              flush=True)
        print(f"  plain HTTP trap  {facts['plain_http_url']}  (records, never serves)", flush=True)
        print(f"  client secret in {facts['client_secret_file']}", flush=True)
        print(f"  bench token in   {facts['token_file']}  (control API bearer; sign in at "
              f"{api_url}/login)", flush=True)

    # Startup objects (app, routes, settings, certs) never die: keep them out of every GC
    # pass, and collect young objects less often, so no request waits on a full collection.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def flush_journal_forever() -> None:
        while True:
            await asyncio.sleep(0.25)
            if core.journal_buffer:
                core.flush_journal()
            try:  # writes of long requests (streaming PUTs, sockets) too; fsync off the loop
                await core.store.durable()
            except Exception:  # the requests waiting on that commit report it themselves
                logging.getLogger("harness.cloud").exception("periodic commit failed")

    flusher = asyncio.create_task(flush_journal_forever())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({serve_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    flusher.cancel()
    plain.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(serve_task, timeout=5)
    core.flush_journal()
    core.store.close()


def run(data_dir: Path, host: str, port: int, http_port: int, settings: CloudSettings,
        ready_file: Path | None, quiet: bool, allow_hosts: tuple[str, ...] = ()) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="c2c-cloud %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(serve(data_dir, host, port, http_port, settings, ready_file, quiet,
                         allow_hosts))

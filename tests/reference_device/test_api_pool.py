"""A dropped connection costs only its own request: the part uploads on the pool's other
connections finish (real TLS on loopback, the real ApiClient)."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reference_device.api import ApiClient
from reference_device.config import load_config
from reference_device.errors import RetryableError
from tests.harness.faults.network.tls_server import make_cert

arrived = threading.Event()
release = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        arrived.set()
        release.wait(20)  # a part the cloud is still storing
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # a front end that drops this one connection, no answer
        self.close_connection = True
        self.connection.close()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def server(tmp_path: Path) -> tuple[str, Path]:
    cert, key = make_cert(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    arrived.clear()
    release.clear()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", cert
    release.set()
    httpd.shutdown()
    httpd.server_close()


def test_a_dropped_connection_does_not_cut_the_sibling_uploads(server: tuple[str, Path], tmp_path: Path) -> None:
    url, cert = server
    (tmp_path / "m").mkdir()
    config = load_config(None, env={"C2C_CLIENT_SECRET": "sec-123456"},
                         overrides={"state_dir": tmp_path / "s", "media_dirs": [tmp_path / "m"],
                                    "api_url": url, "ca_bundle": cert})
    api = ApiClient(config)
    outcome: list[object] = []

    def sibling() -> None:
        try:
            outcome.append(api.send("PUT", f"{url}/part-2", content=b"x" * 4096).status_code)
        except Exception as exc:  # what the old pool reset did to it
            outcome.append(exc)

    thread = threading.Thread(target=sibling)
    thread.start()
    try:
        assert arrived.wait(20), "the sibling part never reached the server"
        with pytest.raises(RetryableError, match="connection error"):
            api.send("GET", f"{url}/part-1")
        release.set()
        thread.join(30)
        assert outcome == [200]
        assert api.send("PUT", f"{url}/part-3", content=b"y").status_code == 200  # a new pool serves new requests
    finally:
        release.set()
        api.close()

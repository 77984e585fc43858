"""The terminal face: rendering, key actions, plain-log mode, and live keys through a real pty."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from rich.console import Console

from reference_device.tui import TerminalUI, key_action, render_status
from tests.reference_device.fakes import HOSTILE, FakeEngine, sample_snapshot
from tests.waiting import wait_until as _wait_for

ROOT = Path(__file__).resolve().parents[2]
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def _render(snapshot: dict, width: int = 120) -> str:
    console = Console(record=True, width=width, force_terminal=False, color_system=None)
    console.print(render_status(snapshot))
    return console.export_text()


def test_render_shows_code_project_counts_and_progress() -> None:
    text = _render(sample_snapshot())
    assert "482 913" in text
    assert "███" in text  # the big digits / QR blocks
    assert "▀" in text or "▄" in text  # QR half blocks
    assert "https://127.0.0.1:8443/pair?code=482913" in text
    assert "Night Shoot" in text
    assert "3 files, 3.0 GiB" in text
    assert "completed 7" in text and "failed 1" in text and "quarantined 1" in text
    assert "50.0%" in text and "A001_C002.mov" in text
    assert "ethernet" in text and "80.0 Mbit/s" in text and "good" in text
    assert "websocket" in text
    assert "SECRET" not in text


def test_hostile_names_are_shown_literally() -> None:
    snap = sample_snapshot()
    snap["files"][0]["name"] = "[bold red]x[/]\x1b[31m.mov"
    text = _render(snap, width=160)
    assert "[bold red]x[/]?[31m.mov" in text  # no markup, control char replaced
    assert HOSTILE in text


def test_render_without_code_and_with_partial_snapshot() -> None:
    snap = sample_snapshot()
    snap["pairing"] = {"state": "repair_needed", "error": "refresh token rejected"}
    text = _render(snap)
    assert "repair_needed" in text and "refresh token rejected" in text
    assert "482" not in text
    # an engine that has not filled anything yet still renders
    assert "unpaired" in _render({})


def test_key_actions() -> None:
    snap = sample_snapshot()
    assert key_action("m", snap) == ("mode", {"mode": "manual"})
    snap["mode"] = "manual"
    assert key_action("m", snap) == ("mode", {"mode": "auto"})
    assert key_action("c", snap) == ("pairing/cancel", {})
    assert key_action("a", snap) == ("upload", {"all": True})
    assert key_action("x", snap) == ("cancel", {"all": True})
    assert key_action("r", snap) == ("retry", {"all": True})
    assert key_action("z", snap) is None


def test_press_calls_engine_and_reports_errors() -> None:
    engine = FakeEngine()
    ui = TerminalUI(engine, console=Console(file=io.StringIO()), interactive=False)
    stop = threading.Event()
    ui.press("m", stop)
    assert engine.calls == [("mode", {"mode": "manual"})]
    engine.fail_with = ValueError("nothing to retry")
    ui.press("r", stop)
    assert ui.message == "retry failed: nothing to retry"
    assert not stop.is_set()
    ui.press("q", stop)
    assert stop.is_set()


def test_plain_mode_logs_code_and_changes_without_control_chars() -> None:
    engine = FakeEngine()
    engine.state["current"]["name"] = "evil\x1b[2J\nname.mov"
    out = io.StringIO()
    ui = TerminalUI(engine, console=Console(file=out), interactive=False,
                    refresh_interval=0.02, log_interval=60)
    assert not ui.interactive
    stop = threading.Event()
    t = threading.Thread(target=ui.run, args=(stop,))
    t.start()
    try:
        _wait_for(lambda: "PAIRING CODE 482913" in out.getvalue())
        with engine.lock:
            engine.state["pairing"]["state"] = "paired"
            engine.state["queue"]["completed"] = 8
        _wait_for(lambda: "done=8" in out.getvalue())
    finally:
        stop.set()
        t.join(5)
    assert not t.is_alive()
    text = out.getvalue()
    assert "pairing=paired" in text and "project='Night Shoot'" in text
    assert "current='evil?[2J?name.mov'" in text
    assert all(ch == "\n" or ch.isprintable() for ch in text)
    assert "SECRET" not in text


_PTY_SCRIPT = textwrap.dedent(
    """
    import sys, threading
    sys.path.insert(0, {root!r})
    from rich.console import Console
    from reference_device.tui import TerminalUI
    from tests.reference_device.fakes import FakeEngine
    engine = FakeEngine()
    ui = TerminalUI(engine, console=Console(force_terminal=True, width=120, height=60),
                    refresh_interval=0.05)
    assert ui.interactive, "stdin/stdout should be a tty"
    ui.run(threading.Event())
    print("CALLS", engine.calls, flush=True)
    """
)


def test_live_ui_keys_through_a_real_pty(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", _PTY_SCRIPT.format(root=str(ROOT))],
        stdin=slave, stdout=slave, stderr=slave, close_fds=True, cwd=ROOT,
    )
    os.close(slave)
    seen = bytearray()

    def read_until(pattern: bytes, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, bytes(seen)):
            left = deadline - time.monotonic()
            if left <= 0 or (proc.poll() is not None and not select.select([master], [], [], 0)[0]):
                raise AssertionError(f"did not see {pattern!r}; got {bytes(seen)[-2000:]!r}")
            ready, _, _ = select.select([master], [], [], min(left, 0.2))
            if ready:
                try:
                    seen.extend(os.read(master, 65536))
                except OSError:
                    pass

    try:
        read_until(rb"Night Shoot")
        os.write(master, b"m")
        read_until(rb"toggle mode: ok")
        os.write(master, b"x")
        read_until(rb"cancel all: ok")
        os.write(master, b"q")
        read_until(rb"CALLS \[")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = bytes(seen).decode("utf-8", "replace")
    assert "('mode', {'mode': 'manual'})" in text
    assert "('cancel', {'all': True})" in text


def test_cli_run_with_the_live_ui_on_a_real_pty(tmp_path: Path) -> None:
    """`c2c-device run` on a terminal: the real engine behind the live UI, keys work, q quits."""
    (tmp_path / "media").mkdir()
    master, slave = pty.openpty()
    env = dict(os.environ, C2C_CLIENT_SECRET="pty-test-secret", COLUMNS="120", LINES="50",
               TERM="xterm-256color")
    proc = subprocess.Popen(
        [sys.executable, "-m", "reference_device", "run", "--api-url", "https://127.0.0.1:9",
         "--state-dir", str(tmp_path / "state"), "--media-dir", str(tmp_path / "media"),
         "--status-port", "0", "--name", "PTY-DEVICE"],
        stdin=slave, stdout=slave, stderr=slave, close_fds=True, cwd=ROOT, env=env,
        start_new_session=True,
    )
    os.close(slave)
    seen = bytearray()

    def read_until(pattern: bytes, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, _ANSI.sub(b"", bytes(seen))):
            if time.monotonic() > deadline:
                raise AssertionError(f"did not see {pattern!r}; got {bytes(seen)[-1500:]!r}")
            if select.select([master], [], [], 0.2)[0]:
                try:
                    seen.extend(os.read(master, 65536))
                except OSError:  # EIO: the child closed the terminal
                    time.sleep(0.05)

    try:
        read_until(rb"PTY-DEVICE")
        read_until(rb"\[q\] quit")
        os.write(master, b"m")
        read_until(rb"toggle mode: ok")
        read_until(rb"mode manual")
        os.write(master, b"q")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
        os.close(master)
    assert b"pty-test-secret" not in seen and b"Traceback" not in seen
    assert not (tmp_path / "state" / "status-url").exists()


def test_qr_terminal_round_trips_to_the_qr_matrix() -> None:
    import xml.etree.ElementTree as ET

    from reference_device.qr import big_code, format_code, qr_matrix, qr_svg, qr_terminal

    link = "https://127.0.0.1:8443/pair?code=482913"
    matrix = qr_matrix(link)
    text = qr_terminal(link)
    top = {" ": (0, 0), "▀": (1, 0), "▄": (0, 1), "█": (1, 1)}
    decoded: list[list[bool]] = [[], []]
    rows: list[list[bool]] = []
    for line in text.splitlines():
        decoded = [[], []]
        for ch in line:
            t, b = top[ch]
            decoded[0].append(not t)  # dark background: drawn = light module
            decoded[1].append(not b)
        rows.extend(decoded)
    assert rows[: len(matrix)] == matrix
    svg = qr_svg(link)
    assert ET.fromstring(svg).tag.endswith("svg")
    assert format_code("482913") == "482 913"
    assert len(big_code("482913").splitlines()) == 5
    assert big_code("<b>") == "<b>"  # unknown glyphs: plain text, never art from junk

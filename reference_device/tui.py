"""The device's terminal face: a rich live view with key controls, or plain log lines.

On a terminal the operator sees the pairing code in large digits with a QR code, the
project, the queue and the network, and drives the device with single keys. Without a
terminal (the harness, systemd, a pipe) the same snapshot goes out as one plain line per
change or per interval, without any control characters, so logs stay greppable.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from reference_device.qr import big_code, format_code, qr_terminal
from reference_device.status_server import DeviceEngine
from reference_device.status_view import (
    human_bytes,
    human_rate,
    normalize,
    printable,
    progress_fraction,
    source_lines,
    summary_line,
)

__all__ = ["KEYS", "TerminalUI", "key_action", "render_status"]

# key -> (label, action or None for quit)
KEYS: dict[str, str] = {
    "q": "quit",
    "c": "cancel pairing",
    "p": "pair",
    "m": "toggle mode",
    "a": "upload all",
    "x": "cancel all",
    "r": "retry failed",
}
_SHOW_CODE = ("requesting_code", "showing_code")
_SOURCE_BAD = ("error", "claim_failed", "disconnected")
_FILE_ORDER = {"uploading": 0, "queued": 1, "held": 2, "paused": 3, "failed": 4,
               "quarantined": 5, "cancelled": 6, "done": 7}
_STATE_STYLE = {"done": "green", "failed": "red", "quarantined": "red", "uploading": "cyan",
                "held": "yellow", "paused": "yellow", "cancelled": "dim"}


def key_action(key: str, snapshot: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The engine.control call a key stands for (None for unknown keys and for quit)."""
    key = key.lower()
    if key == "c":
        return "pairing/cancel", {}
    if key == "p":
        return "pairing/start", {}
    if key == "m":
        return "mode", {"mode": "manual" if normalize(snapshot)["mode"] == "auto" else "auto"}
    if key == "a":
        return "upload", {"all": True}
    if key == "x":
        return "cancel", {"all": True}
    if key == "r":
        return "retry", {"all": True}
    return None


def _t(value: Any, style: str = "") -> Text:
    """Untrusted text (file names...) as a Text: no markup, no control characters."""
    return Text(printable(value), style=style)


def _pairing_panel(s: dict[str, Any], show_qr: bool) -> RenderableType:
    p = s["pairing"]
    state = str(p.get("state"))
    if state in _SHOW_CODE and p.get("user_code"):
        code = str(p["user_code"])
        left = Group(
            Text("Pair this device — enter the code:", style="bold"),
            Text(""),
            Text(big_code(code), style="bold bright_white"),
            Text(""),
            Text(format_code(code), style="bold"),
        )
        link = p.get("verification_uri_complete") or p.get("verification_uri")
        grid = Table.grid(padding=(0, 3))
        grid.add_column()
        if show_qr and p.get("verification_uri_complete"):
            grid.add_column()
            try:
                grid.add_row(left, Text(qr_terminal(str(p["verification_uri_complete"]))))
            except ValueError:
                grid.add_row(left, Text(""))
        else:
            grid.add_row(left)
        parts: list[RenderableType] = [grid]
        if link:
            parts.append(Text.assemble("or open ", _t(link, "underline")))
        return Panel(Group(*parts), title="Pairing", border_style="bright_yellow")
    line = Text.assemble("Pairing: ", _t(state, "bold"))
    if p.get("error"):
        line.append("  ")
        line.append_text(_t(p["error"], "red"))
    return line


def _info_table(s: dict[str, Any]) -> Table:
    q, n, t, k = s["queue"], s["network"], s["token"], s["socket"]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    grid.add_row("Project", _t(s["project"].get("name") or "—", "bold"))
    grid.add_row("Token", _t(t.get("state")))
    net = Text.assemble(
        ("online" if n.get("online") else "offline", "green" if n.get("online") else "red"),
        f"  {printable(n.get('type'))}  {human_rate(n.get('throughput_bps'))}  health ",
        _t(n.get("health")),
    )
    if n.get("last_error"):
        net.append("  ")
        net.append_text(_t(n["last_error"], "red"))
    grid.add_row("Network", net)
    grid.add_row("Socket", _t(f"{'connected' if k.get('connected') else 'disconnected'}"
                              f" ({k.get('kind') or '-'})"))
    for kind, state, text in source_lines(s):
        style = "green" if state == "connected" else "red" if state in _SOURCE_BAD else "yellow"
        grid.add_row(_t(kind.capitalize() if kind != "tether" else "Camera"), _t(text, style))
    grid.add_row("Remaining", _t(f"{q.get('remaining_count')} files, "
                                 f"{human_bytes(q.get('remaining_bytes'))}"))
    grid.add_row("Uploads", _t(
        "completed {} · queued {} · uploading {} · failed {} · quarantined {} · held {}".format(
            *(q.get(x, 0) for x in ("completed", "queued", "uploading", "failed", "quarantined",
                                    "held")))))
    return grid


def _current(s: dict[str, Any]) -> RenderableType:
    cur = s.get("current")
    if not cur:
        return Text("Current: idle", style="dim")
    frac = progress_fraction(cur)
    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(no_wrap=True)
    grid.add_column(ratio=1)
    grid.add_column(no_wrap=True)
    grid.add_row(
        _t(cur.get("name")),
        ProgressBar(total=1000, completed=int(frac * 1000)),
        _t(f"{frac * 100:5.1f}%  {human_bytes(cur.get('bytes_done'))}/{human_bytes(cur.get('size'))}"),
    )
    return grid


def _files_table(s: dict[str, Any], max_rows: int) -> Table:
    files = sorted(s["files"], key=lambda f: _FILE_ORDER.get(str(f.get("state")), 9))
    table = Table(title=f"Files ({len(files)})", expand=True, title_justify="left")
    table.add_column("Name", overflow="fold", ratio=3)
    table.add_column("State")
    table.add_column("Reason", overflow="fold", ratio=2)
    table.add_column("Bytes", justify="right")
    table.add_column("Prio", justify="right")
    for f in files[:max_rows]:
        state = printable(f.get("state"))
        table.add_row(
            _t(f.get("name")),
            Text(state, style=_STATE_STYLE.get(state, "")),
            _t(f.get("reason") or ""),
            f"{human_bytes(f.get('bytes_done'))}/{human_bytes(f.get('size'))}",
            _t(f.get("priority") or 0),
        )
    if len(files) > max_rows:
        table.caption = f"… {len(files) - max_rows} more"
    return table


def render_status(snapshot: dict[str, Any] | None, *, show_qr: bool = True,
                  max_rows: int = 12, message: str = "") -> RenderableType:
    """The whole screen for one snapshot."""
    s = normalize(snapshot)
    d = s["device"]
    header = Text.assemble(
        (printable(d.get("name") or "Reference device"), "bold"),
        f"  firmware {printable(d.get('firmware') or '?')}  ",
        "mode ", (printable(s.get("mode")), "bold"),
        "  cloud ", _t(s.get("cloud_status")),
    )
    keys = Text("  ".join(f"[{k}] {v}" for k, v in KEYS.items()), style="dim")
    parts: list[RenderableType] = [header, _pairing_panel(s, show_qr), _info_table(s),
                                   _current(s), _files_table(s, max_rows), keys]
    if message:
        parts.append(_t(message, "italic"))
    return Group(*parts)


def _change_key(s: dict[str, Any]) -> tuple[Any, ...]:
    """What must be logged at once when it changes (not throughput or byte counters)."""
    p, q, n = s["pairing"], s["queue"], s["network"]
    return (
        p.get("state"), p.get("user_code"), p.get("error"), s["project"].get("name"),
        s.get("mode"), s["token"].get("state"), s["socket"].get("connected"),
        n.get("online"), n.get("health"), s.get("cloud_status"),
        tuple(q.get(x) for x in ("remaining_count", "completed", "failed", "quarantined")),
        (s.get("current") or {}).get("file_id"),
        tuple(state for _, state, _ in source_lines(s)),  # camera plugged / unplugged
    )


class TerminalUI:
    """Runs the live view (TTY) or the plain status log (no TTY) until `stop` is set."""

    def __init__(
        self,
        engine: DeviceEngine,
        *,
        console: Console | None = None,
        stdin: TextIO | None = None,
        interactive: bool | None = None,
        refresh_interval: float = 0.5,
        log_interval: float = 30.0,
    ) -> None:
        self.engine = engine
        self.console = console or Console()
        self.stdin = stdin if stdin is not None else sys.stdin
        if interactive is None:
            interactive = self.console.is_terminal and _isatty(self.stdin)
        self.interactive = interactive
        self.refresh_interval = refresh_interval
        self.log_interval = log_interval
        self.message = ""

    # -- shared ---------------------------------------------------------------------------
    def _snapshot(self) -> dict[str, Any]:
        try:
            return normalize(self.engine.snapshot())
        except Exception as exc:  # never let the face kill the device
            self.message = f"status unavailable ({type(exc).__name__})"
            return normalize(None)

    def press(self, key: str, stop: threading.Event) -> None:
        """Act on one key (also what tests call)."""
        if key.lower() == "q":
            stop.set()
            return
        call = key_action(key, self._snapshot())
        if call is None:
            return
        action, args = call
        try:
            self.engine.control(action, **args)
            self.message = f"{KEYS[key.lower()]}: ok"
        except Exception as exc:
            msg = exc.args[0] if exc.args else type(exc).__name__
            self.message = f"{KEYS[key.lower()]}: {msg}"

    def run(self, stop: threading.Event) -> None:
        if self.interactive:
            self._run_live(stop)
        else:
            self._run_plain(stop, self.console.file)

    # -- no terminal: plain lines ---------------------------------------------------------
    def _run_plain(self, stop: threading.Event, out: IO[str]) -> None:
        last_key: tuple[Any, ...] | None = None
        last_code: Any = None
        last_time = 0.0
        while True:
            s = self._snapshot()
            p = s["pairing"]
            if p.get("state") in _SHOW_CODE and p.get("user_code") and p["user_code"] != last_code:
                last_code = p["user_code"]
                link = p.get("verification_uri_complete") or p.get("verification_uri") or ""
                _write(out, f"PAIRING CODE {printable(last_code)} enter it at "
                            f"{printable(p.get('verification_uri') or '-')} or open {printable(link)}")
            key = _change_key(s)
            now = time.monotonic()
            if key != last_key or now - last_time >= self.log_interval:
                _write(out, "status " + summary_line(s))
                last_key, last_time = key, now
            if stop.wait(self.refresh_interval):
                _write(out, "status " + summary_line(self._snapshot()))
                return

    # -- terminal: live view with keys ----------------------------------------------------
    def _run_live(self, stop: threading.Event) -> None:
        with _cbreak(self.stdin) as read_key, Live(
            render_status(self._snapshot()),
            console=self.console,
            refresh_per_second=4,
            redirect_stderr=False,
        ) as live:
            while not stop.is_set():
                key = read_key(self.refresh_interval)
                if key == _EOF:
                    read_key = _no_keys  # the terminal went away: keep showing, stop reading
                elif key:
                    self.press(key, stop)
                elif read_key is _no_keys:
                    stop.wait(self.refresh_interval)
                height = self.console.size.height
                live.update(render_status(self._snapshot(), message=self.message,
                                          max_rows=max(3, height - 30)))


def _write(out: IO[str], line: str) -> None:
    try:
        out.write(printable(line) + "\n")
        out.flush()
    except (OSError, ValueError):
        pass  # stdout closed: the device keeps working


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_EOF = "\x04"


def _no_keys(timeout: float) -> str:
    return ""


@contextlib.contextmanager
def _cbreak(stdin: TextIO) -> Iterator[Callable[[float], str]]:
    """Single-key reads from a TTY (restored on exit); a no-op reader elsewhere."""
    try:
        import termios
        import tty

        fd = stdin.fileno()
        saved = termios.tcgetattr(fd)
    except (ImportError, OSError, ValueError, AttributeError):
        yield _no_keys
        return

    def read_key(timeout: float) -> str:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return ""
        data = os.read(fd, 32)
        return data[:1].decode("ascii", "ignore") if data else _EOF

    tty.setcbreak(fd)
    try:
        yield read_key
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)

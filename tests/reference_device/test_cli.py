"""`c2c-device`: parsing, the control verbs against a real status server, real subprocesses."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from reference_device.cli import STATUS_URL_FILE, build_parser, main
from reference_device.status_server import StatusServer
from tests.reference_device.fakes import FakeEngine
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def server(engine: FakeEngine) -> Iterator[StatusServer]:
    with StatusServer(engine, port=0) as srv:
        yield srv


def test_parser_run_options() -> None:
    args = build_parser().parse_args([
        "run", "--config", "d.toml", "--api-url", "https://127.0.0.1:1", "--media-dir", "/a",
        "--media-dir", "/b", "--state-dir", "/s", "--status-port", "0", "--firmware", "1.2.3",
        "--mode", "manual", "--no-tui", "--client-secret-file", "/sec",
    ])
    assert args.media_dirs == [Path("/a"), Path("/b")]
    assert args.status_port == 0 and args.mode == "manual" and args.no_tui
    assert args.client_secret_file == Path("/sec")


def test_there_is_no_client_secret_flag(capsys: pytest.CaptureFixture[str]) -> None:
    # not even as an abbreviation of --client-secret-file
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["run", "--client-secret", "s3cr3t"])
    assert exc.value.code == 2
    capsys.readouterr()
    for argv in (["run", "--client-secret", "s3cr3t"], ["run", "--client-secret=s3cr3t"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "C2C_CLIENT_SECRET" in err and "s3cr3t" not in err


@pytest.mark.parametrize(
    ("argv", "action", "body"),
    [
        (["mode", "manual"], "mode", {"mode": "manual"}),
        (["upload", "f1", "f2"], "upload", {"ids": ["f1", "f2"]}),
        (["upload", "--all"], "upload", {"all": True}),
        (["cancel", "f1"], "cancel", {"ids": ["f1"]}),
        (["cancel", "--all"], "cancel", {"all": True}),
        (["retry"], "retry", {"all": True}),
        (["retry", "f2"], "retry", {"ids": ["f2"]}),
        (["priority", "f1", "7"], "priority", {"id": "f1", "priority": 7}),
        (["priority", "--filetype", ".wav", "40"], "priority", {"filetype": ".wav", "priority": 40}),
        (["pair"], "pairing/start", {}),
        (["cancel-pairing"], "pairing/cancel", {}),
        (["logout"], "logout", {}),
    ],
)
def test_control_verbs_reach_the_running_device(
    engine: FakeEngine, server: StatusServer, capsys: pytest.CaptureFixture[str],
    argv: list[str], action: str, body: dict,
) -> None:
    assert main([*argv, "--status-port", str(server.port)]) == 0
    assert engine.calls == [(action, body)]
    assert capsys.readouterr().out.strip().endswith(": ok")


def test_status_json_and_summary(server: StatusServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--json", "--status-url", server.url]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pairing"]["user_code"] == "482913" and "client_secret" not in data
    assert main(["status", "--status-port", str(server.port)]) == 0
    out = capsys.readouterr().out
    assert "code=482913" in out and "project='Night Shoot'" in out


def test_finds_device_through_state_dir(
    engine: FakeEngine, server: StatusServer, tmp_path: Path
) -> None:
    (tmp_path / STATUS_URL_FILE).write_text(server.url + "\n")
    assert main(["mode", "auto", "--state-dir", str(tmp_path)]) == 0
    assert engine.calls == [("mode", {"mode": "auto"})]


def test_device_errors_are_clean(
    engine: FakeEngine, server: StatusServer, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.fail_with = KeyError("no file with id 'nope'")
    assert main(["upload", "nope", "--status-port", str(server.port)]) == 1
    err = capsys.readouterr().err
    assert "no file with id 'nope'" in err and "Traceback" not in err


def test_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["upload", "--status-port", "1"])
    assert exc.value.code == 2 and "give one or more file IDs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["upload", "a", "--all", "--status-port", "1"])
    with pytest.raises(SystemExit):
        main(["priority", "7", "--status-port", "1"])
    assert main(["status"]) == 2
    assert "--status-port" in capsys.readouterr().err
    assert main(["mode", "auto", "--state-dir", str(tmp_path)]) == 1
    assert "status-url" in capsys.readouterr().err


def test_unreachable_device(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["status", "--status-port", str(port)]) == 1
    err = capsys.readouterr().err
    assert "no device answers" in err and "Traceback" not in err


def _run_module(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reference_device", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env,
    )


def test_module_help_in_a_real_process() -> None:
    r = _run_module("--help")
    assert r.returncode == 0
    for verb in ("run", "status", "pair", "cancel-pairing", "mode", "upload", "cancel",
                 "priority", "retry", "logout"):
        assert verb in r.stdout
    r = _run_module("run", "--help")
    assert r.returncode == 0 and "--client-secret-file" in r.stdout and "--no-tui" in r.stdout


def test_run_with_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    r = _run_module("run", "--no-tui", "--api-url", "http://127.0.0.1:1", "--state-dir",
                    str(tmp_path / "s"), "--media-dir", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert "api_url" in r.stderr and "http" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("state_dir = [unclosed\n")
    r = _run_module("run", "--no-tui", "--config", str(bad))
    assert r.returncode == 2 and "invalid TOML" in r.stderr and "Traceback" not in r.stderr


@contextmanager
def _device_run(*args: str, secret: str, **popen: Any) -> Iterator[subprocess.Popen[str]]:
    """`python -m reference_device run ARGS` in its own process group, killed whole on the way out."""
    proc = subprocess.Popen([sys.executable, "-m", "reference_device", "run", "--no-tui", *args], cwd=ROOT,
                            env=dict(os.environ, C2C_CLIENT_SECRET=secret), text=True, start_new_session=True,
                            **popen)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM to the device's whole process group (the clean stop systemd or Ctrl-C gives) and
    its exit; what it printed to pipes ('' where its output went elsewhere)."""
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    return out or "", err or ""


def test_run_serves_status_and_controls_in_a_real_process(tmp_path: Path) -> None:
    """`run` against an API nobody answers: the faces still work and SIGTERM stops cleanly."""
    state, media = tmp_path / "state", tmp_path / "media"
    media.mkdir()
    with _device_run("--api-url", "https://127.0.0.1:9", "--state-dir", str(state), "--media-dir", str(media),
                     "--status-port", "0", "--name", "CLI-TEST", secret="cli-test-secret-value",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        url_file = state / STATUS_URL_FILE
        url = wait_until(lambda: url_file.exists() and url_file.read_text().strip(), 30, "status-url")
        status = wait_until(lambda: _try_status(url), 30, "status.json")
        assert status["schema"] == "c2c-status/1" and status["device"]["name"] == "CLI-TEST"
        r = subprocess.run([sys.executable, "-m", "reference_device", "mode", "manual",
                            "--state-dir", str(state)], cwd=ROOT, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        wait_until(lambda: (_try_status(url) or {}).get("mode") == "manual", 10, "manual mode")
        out, err = _stop(proc)
    assert proc.returncode == 0, err
    assert f"STATUS {url}/status.json" in out
    assert "status pairing=" in out and "mode=manual" in out
    assert all(ch == "\n" or ch.isprintable() for ch in out)
    assert not url_file.exists()
    for text in (out, err, (state / "device.log").read_text()):
        assert "cli-test-secret-value" not in text and "Traceback" not in text


def _try_status(url: str) -> dict | None:
    try:
        return httpx.get(url + "/status.json", timeout=2).json()
    except httpx.HTTPError:
        return None


def test_run_against_the_emulator_shows_code_and_pairs(
    cloud: Any, control: Any, tmp_path: Path
) -> None:
    """The device as a real process over real TLS: prints the code, serves it, pairs."""
    emulator = cloud
    project = control.create_project("CLI <Project>")
    state, media = tmp_path / "state", tmp_path / "media"
    media.mkdir()
    secret = control.client_secret()
    out_path = tmp_path / "out.txt"
    with open(out_path, "w") as out, _device_run(
            "--api-url", emulator.api_url, "--ca-bundle", str(emulator.ca_bundle), "--state-dir", str(state),
            "--media-dir", str(media), "--status-port", "0", secret=secret, stdout=out,
            stderr=subprocess.STDOUT) as proc:
        line = wait_until(lambda: re.search(r"PAIRING CODE (\d{6}) ", out_path.read_text()), 60,
                          "the pairing code on stdout")
        code = line.group(1)
        url = (state / STATUS_URL_FILE).read_text().strip()
        status = _try_status(url)
        assert status is not None and status["pairing"]["user_code"] == code
        assert code in {c["user_code"] for c in control.pending_codes()}
        page = httpx.get(url + "/", timeout=5).text
        assert code[:3] + " " + code[3:] in page and "<svg" in page
        control.approve(code, project["id"])
        wait_until(lambda: (_try_status(url) or {}).get("project", {}).get("name") == "CLI <Project>",
                   60, "the project name after pairing")
        assert "CLI &lt;Project&gt;" in httpx.get(url + "/", timeout=5).text
        r = subprocess.run([sys.executable, "-m", "reference_device", "status", "--state-dir",
                            str(state)], cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "project='CLI <Project>'" in r.stdout
        _stop(proc)
        assert proc.returncode == 0
    text = out_path.read_text()
    assert secret not in text and "Traceback" not in text
    assert "pairing=paired" in text


def test_run_with_a_taken_status_port_fails_clearly(tmp_path: Path) -> None:
    import socket

    (tmp_path / "media").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = _run_module("run", "--no-tui", "--api-url", "https://127.0.0.1:9", "--state-dir",
                        str(tmp_path / "s"), "--media-dir", str(tmp_path / "media"),
                        "--status-port", str(port),
                        env=dict(os.environ, C2C_CLIENT_SECRET="x-secret-x"))
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr


def test_run_dumps_every_thread_stack_on_sigusr1_and_keeps_running(tmp_path: Path) -> None:
    """faulthandler on SIGUSR1: the presence thread's frames appear on stderr; the device lives on."""
    state, media = tmp_path / "state", tmp_path / "media"
    media.mkdir()
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err, _device_run(
            "--api-url", "https://127.0.0.1:9", "--state-dir", str(state), "--media-dir", str(media),
            "--status-port", "0", secret="dump-test-secret", stdout=subprocess.DEVNULL, stderr=err) as proc:
        url = wait_until(lambda: (state / STATUS_URL_FILE).exists() and (state / STATUS_URL_FILE).read_text().strip(),
                         30, "status-url")
        def dumped() -> str | None:
            # the status URL is written before the engine starts its threads: ask again until the
            # dump shows the presence thread (every SIGUSR1 appends a whole dump); the thread that
            # took the signal (main, the oldest) is written last: a dump read mid-write lacks it
            text = err_path.read_text()
            if "in _run" in text and "heartbeat.py" in text and "Current thread" in text:
                return text
            os.kill(proc.pid, signal.SIGUSR1)
            return None
        dump = wait_until(dumped, 10, "a stack dump on stderr naming the presence thread", interval=0.2)
        assert "(most recent call first):" in dump
        assert proc.poll() is None and _try_status(url) is not None  # the dump stops nothing
        _stop(proc)
        assert proc.returncode == 0
    assert not (state / "thread-stacks.txt").exists()  # without the TUI the dump goes to stderr


def test_with_the_terminal_ui_the_dump_goes_to_the_state_dir(tmp_path: Path) -> None:
    import faulthandler

    from reference_device.cli import STACK_DUMP_SIGNAL, STACKS_FILE, enable_stack_dumps

    try:
        assert enable_stack_dumps(tmp_path, to_stderr=False) == tmp_path / STACKS_FILE
        signal.raise_signal(STACK_DUMP_SIGNAL)
        text = (tmp_path / STACKS_FILE).read_text()
        assert "test_with_the_terminal_ui_the_dump_goes_to_the_state_dir" in text
    finally:
        faulthandler.unregister(STACK_DUMP_SIGNAL)

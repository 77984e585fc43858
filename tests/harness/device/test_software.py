"""SoftwareDevice through real processes: launch template, secrets, capture, console pairing, power cut."""

from __future__ import annotations

import os
import stat
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from harness.device.operator import OperatorDevice, OperatorPrompt
from harness.device.profile import parse_profile
from harness.device.software import SoftwareDevice, wait_for
from harness.errors import DeviceFailure, MediaError, OperatorUnavailable, RelayInUse
from harness.faults.power.manual import ManualPower
from harness.faults.power.simulator import RelaySimulator

SECRET = "s3cr3t-value-for-the-test-0123456789"

STUB = textwrap.dedent('''
    import os, signal, subprocess, sys
    from pathlib import Path
    state = Path(sys.argv[1])
    child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    (state / "child.pid").write_text(str(child.pid))
    (state / "env-secret.txt").write_text(str(os.environ.get("STUB_SECRET") == os.environ.get("EXPECTED")))
    print("booting", flush=True)
    print("PAIRING CODE: 482913", flush=True)
    while True:
        signal.pause()
''')


def profile(tmp_path: Path, **overrides: object) -> dict[str, Any]:
    script = tmp_path / "stub_device.py"
    script.write_text(STUB)
    data: dict[str, Any] = {
        "name": "stub", "kind": "app", "firmware": "0.0.1",
        "inspect": ["{state_dir}"],
        "launch": {"command": ["{python}", str(script), "{state_dir}"],
                   "env": {"STUB_SECRET": "{client_secret}", "EXPECTED": SECRET},
                   "files": {"{state_dir}/conf.toml": 'secret = "{client_secret}"\\napi = "{api_url}"\\n'},
                   "ready_timeout": 20},
        "pairing": {"source": "console", "regex": r"PAIRING CODE: (\d{6})"},
    }
    data.update(overrides)
    return data


@pytest.fixture
def device(tmp_path: Path):  # type: ignore[no-untyped-def]
    p = parse_profile(profile(tmp_path))
    dev = SoftwareDevice(p, api_url="https://127.0.0.1:1", ca_bundle=tmp_path / "ca.pem",
                         client_secret=lambda: SECRET, workdir=tmp_path / "dev")
    yield dev
    dev.close()


def test_launch_puts_the_secret_in_env_and_files_never_in_argv(device: SoftwareDevice) -> None:
    device.start()
    pid = device.power().pid  # type: ignore[attr-defined]
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    assert SECRET not in cmdline
    wait_for(lambda: (device.state_dir / "env-secret.txt").exists(), 10, "the stub to write its env check")
    assert (device.state_dir / "env-secret.txt").read_text() == "True"
    conf = device.state_dir / "conf.toml"
    assert SECRET in conf.read_text()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert SECRET not in device.console_text()


def test_console_pairing_code(device: SoftwareDevice) -> None:
    device.start()
    assert device.pairing_code(10) == "482913"
    assert device.status() is None and device.control("mode", mode="manual") is False


def test_power_off_kills_the_whole_process_group(device: SoftwareDevice) -> None:
    device.start()
    child_pid = int(wait_for(lambda: (device.state_dir / "child.pid").exists()
                             and (device.state_dir / "child.pid").read_text(), 10, "the child pid"))
    device.power().off()
    assert device.power().is_on() is False

    def gone() -> bool:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{child_pid}/stat").read_text().split()[2] == "Z"
    wait_for(gone, 10, "the child to die with its group")
    device.power().on()
    assert device.power().is_on()


def test_capture_is_an_atomic_rename_into_the_watch_folder(device: SoftwareDevice, tmp_path: Path) -> None:
    src = tmp_path / "A001 Café.jpg"
    src.write_bytes(b"x" * 1000)
    [dest] = device.capture([src])
    assert dest.parent == device.media_dir and dest.read_bytes() == src.read_bytes()
    assert not list(device.media_dir.glob(".*.part")) and not list(device.incoming_dir.iterdir())
    with pytest.raises(MediaError, match="does not exist"):
        device.capture([tmp_path / "missing.jpg"])


def test_a_device_that_exits_during_boot_is_a_device_failure(tmp_path: Path) -> None:
    data = profile(tmp_path)
    data["launch"]["command"] = ["{python}", "-c", "import sys; print('bad config'); sys.exit(3)"]
    dev = SoftwareDevice(parse_profile(data), api_url="https://127.0.0.1:1", ca_bundle=tmp_path / "ca.pem",
                         client_secret=lambda: SECRET, workdir=tmp_path / "dev")
    try:
        with pytest.raises(DeviceFailure, match="exited during boot"):
            dev.start()
    finally:
        dev.close()


def test_inspect_paths_include_state_and_console(device: SoftwareDevice) -> None:
    paths = device.inspect_paths()
    assert device.state_dir in paths and device.console_log in paths


def test_operator_device_refuses_without_an_operator(tmp_path: Path) -> None:
    p = parse_profile({"name": "hw", "kind": "camera", "firmware": "1.0.0"})
    prompt = OperatorPrompt(interactive=False)
    dev = OperatorDevice(p, prompt, ManualPower(None))
    with pytest.raises(OperatorUnavailable):
        dev.start()
    with pytest.raises(OperatorUnavailable):
        dev.power().off()
    assert dev.control("mode") is False and dev.status() is None


def test_operator_prompt_records_who_and_when() -> None:
    import io

    out = io.StringIO()
    prompt = OperatorPrompt(interactive=True, stdin=io.StringIO("y\n123456\n"), stdout=out, operator="tess")
    assert prompt.confirm("Is the code shown?")
    assert prompt.ask("Code?") == "123456"
    ev = prompt.evidence()
    assert ev[0]["operator"] == "tess" and ev[0]["answer"] == "y" and ev[1]["answer"] == "123456"
    assert time.time() - ev[0]["at"] < 60


# --- stack dumps (StackDumps protocol) ---------------------------------------------------------
BLOCKED = textwrap.dedent('''
    import faulthandler, signal, sys, threading

    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)  # a signal this device does not dump on

    def presence_blocked_in_a_call_without_timeout():
        threading.Event().wait()  # what a stalled thread looks like: no log line, ever

    threading.Thread(target=presence_blocked_in_a_call_without_timeout, daemon=True).start()
    print("up; token refresh_token=abcdefghijklmnopqrstuvwxyz012345", flush=True)
    threading.Event().wait()
''')


def dumping_device(tmp_path: Path, **launch: object) -> SoftwareDevice:
    # the script sits in a folder named like the secret: the dump's paths must not leak it
    script = tmp_path / SECRET / "blocked_device.py"
    script.parent.mkdir(parents=True)
    script.write_text(BLOCKED)
    data = profile(tmp_path)
    data["launch"] = {"command": ["{python}", str(script)], "ready_timeout": 20, **launch}
    return SoftwareDevice(parse_profile(data), api_url="https://127.0.0.1:1", ca_bundle=tmp_path / "ca.pem",
                          client_secret=lambda: SECRET, workdir=tmp_path / "dev")


def test_dump_stacks_names_the_blocked_call_and_redacts(tmp_path: Path) -> None:
    from harness.protocols import StackDumps

    device = dumping_device(tmp_path, stack_dump_signal="SIGUSR1")
    try:
        device.start()
        assert isinstance(device, StackDumps)
        dump = device.dump_stacks()
        assert "(most recent call first):" in dump
        assert "in presence_blocked_in_a_call_without_timeout" in dump
        assert SECRET not in dump and "[redacted]" in dump
        assert "up; token" not in dump  # only the dump, not the console around it
        assert device.power().is_on()  # asking for stacks never stops the device
        assert device.dump_stacks().count("presence_blocked_in_a_call_without_timeout") == 1  # each call: a new dump
    finally:
        device.close()


def test_dump_stacks_from_a_file_the_profile_names(tmp_path: Path) -> None:
    script_dir = tmp_path / "script"
    script_dir.mkdir()
    dump_file = "{state_dir}/stacks.txt"
    code = BLOCKED.replace("file=sys.stderr", "file=open(sys.argv[1], 'a')")
    (script_dir / "d.py").write_text(code)
    data = profile(tmp_path)
    data["launch"] = {"command": ["{python}", str(script_dir / "d.py"), dump_file], "ready_timeout": 20,
                      "stack_dump_signal": "SIGUSR1", "stack_dump_file": dump_file}
    device = SoftwareDevice(parse_profile(data), api_url="https://127.0.0.1:1", ca_bundle=tmp_path / "ca.pem",
                            client_secret=lambda: SECRET, workdir=tmp_path / "dev")
    try:
        device.start()
        assert "in presence_blocked_in_a_call_without_timeout" in device.dump_stacks()
        assert "most recent call first" not in device.console_text()
    finally:
        device.close()


def test_no_dump_without_the_profile_field_and_none_from_a_dead_device(tmp_path: Path) -> None:
    device = dumping_device(tmp_path)
    try:
        device.start()
        assert device.dump_stacks() == ""  # the profile does not say the device dumps: never signalled
        assert device.power().is_on()
    finally:
        device.close()
    dead = dumping_device(tmp_path / "dead", stack_dump_signal="SIGUSR1")
    dead.start()
    dead.stop()
    with pytest.raises(DeviceFailure, match="not running"):
        dead.dump_stacks()
    dead.close()


def test_a_device_that_prints_no_dump_is_a_timeout(tmp_path: Path) -> None:
    from harness.errors import DeviceTimeout

    device = dumping_device(tmp_path, stack_dump_signal="SIGUSR2")  # the profile names the wrong signal
    try:
        device.start()
        with pytest.raises(DeviceTimeout, match="dump its thread stacks"):
            device.dump_stacks(timeout=2)
        assert device.power().is_on()
    finally:
        device.close()


@pytest.mark.parametrize(("value", "message"), [
    ("SIGTERM", "stops or kills"), ("SIGKILL", "stops or kills"), ("USR1", "signal name"),
    ("SIGNOPE", "not a signal"), (10, "signal name"), ("SIG_IGN", "signal name"),
])
def test_a_bad_stack_dump_signal_is_a_config_error(tmp_path: Path, value: object, message: str) -> None:
    from harness.errors import ConfigError

    data = profile(tmp_path)
    data["launch"]["stack_dump_signal"] = value
    with pytest.raises(ConfigError, match=f"stack_dump_signal.*{message}|{message}.*stack_dump_signal"):
        parse_profile(data)


def test_stack_dump_file_needs_the_signal(tmp_path: Path) -> None:
    from harness.errors import ConfigError

    data = profile(tmp_path)
    data["launch"]["stack_dump_file"] = "{state_dir}/stacks.txt"
    with pytest.raises(ConfigError, match=r"stack_dump_file.*needs 'stack_dump_signal'"):
        parse_profile(data)


def test_reference_profile_and_its_mutants_dump_on_sigusr1() -> None:
    from harness.device.profile import load_profile

    assert load_profile("reference").launch.stack_dump_signal == "SIGUSR1"  # type: ignore[union-attr]
    assert load_profile("mutant:no-heartbeat").launch.stack_dump_signal == "SIGUSR1"  # type: ignore[union-attr]
    assert load_profile("minimal").launch.stack_dump_signal is None  # type: ignore[union-attr]


def test_stack_dump_lines_keep_the_dump_and_drop_interleaved_logging() -> None:
    from harness.device.software import stack_dump_lines

    console = ("2026-12-06 09:10:11 INFO before the signal\n"
               "Thread 0x00007fe89d1486c0 (most recent call first):\n"
               '  File "/x/ssl.py", line 1107 in read\n'
               "2026-12-06 09:10:11 INFO another thread logs meanwhile\n"
               '  File "/x/connection.py", line 884 in recv_events\n'
               "\n"
               "Current thread 0x00007fe8a45a6b80 (most recent call first):\n"
               '  File "/x/tui.py", line 288 in _run_plain\n')
    assert stack_dump_lines(console) == (
        "Thread 0x00007fe89d1486c0 (most recent call first):\n"
        '  File "/x/ssl.py", line 1107 in read\n'
        '  File "/x/connection.py", line 884 in recv_events\n'
        "\n"
        "Current thread 0x00007fe8a45a6b80 (most recent call first):\n"
        '  File "/x/tui.py", line 288 in _run_plain\n')
    assert stack_dump_lines("no dump here\n") == ""


def test_close_lets_go_of_a_relay_board(tmp_path: Path) -> None:
    """A relay-powered software device holds the board's port lock until close(): a factory
    reset (a fresh device on the same rig) must be able to take the board again."""
    sim = RelaySimulator("numato", channels=8).start()
    try:
        data = profile(tmp_path, power={"driver": "relay", "board": "numato", "port": sim.port, "channel": 2,
                                        "off_time": 0})

        def make(workdir: str) -> SoftwareDevice:
            return SoftwareDevice(parse_profile(data), api_url="https://127.0.0.1:1",
                                  ca_bundle=tmp_path / "ca.pem", client_secret=lambda: SECRET,
                                  workdir=tmp_path / workdir)
        first = make("dev-1")
        with pytest.raises(RelayInUse):
            make("dev-2")  # held by the first one
        first.close()
        make("dev-3").close()  # taken again, then let go
    finally:
        sim.stop()

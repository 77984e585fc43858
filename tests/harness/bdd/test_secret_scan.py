"""The bench's own search of its reports for the secrets it knows."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.bdd import secret_scan
from harness.bdd.secret_scan import scan_reports


def test_a_secret_anywhere_under_the_reports_is_found_and_never_echoed(tmp_path: Path) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.c2ln"
    (tmp_path / "allure-results").mkdir()
    (tmp_path / "allure-results" / "a-attachment.txt").write_text(f"paired with {token}\n")
    (tmp_path / "allure-results" / "b-attachment.txt").write_text("nothing here\n")
    (tmp_path / "work" / "run-1" / "cloud").mkdir(parents=True)
    (tmp_path / "work" / "run-1" / "cloud" / "bench-client.toml").write_text('client_secret = "the-client-secret"')
    (tmp_path / "work" / "run-1" / "device.log").write_bytes(b"\x00binary the-client-secret\x00")
    scan = scan_reports(tmp_path, [token, "the-client-secret", "", "short"], [tmp_path / "work" / "run-1" / "cloud"])
    assert scan.hits == ("allure-results/a-attachment.txt", "work/run-1/device.log")
    assert scan.files == 3 and scan.secrets == 2  # the emulator's own secret file is not searched
    assert token not in str(scan.row()) and "the-client-secret" not in str(scan.row())


def test_a_shard_searches_its_own_run_folder_and_the_shared_files_not_the_other_shards(tmp_path: Path) -> None:
    """The other shards' run folders hold their own emulators' blobs; their shards search them."""
    secret = "the-client-secret"
    (tmp_path / "allure-results").mkdir()
    (tmp_path / "allure-results" / "attachment.txt").write_text(f"shared {secret}\n")
    for run in ("run-a", "run-b", "run-c"):
        (tmp_path / "work" / run / "device").mkdir(parents=True)
        (tmp_path / "work" / run / "device" / "device.log").write_text(f"{run} {secret}\n")
    scan = scan_reports(tmp_path, [secret], own_run=tmp_path / "work" / "run-b")
    assert scan.hits == ("allure-results/attachment.txt", "work/run-b/device/device.log")
    assert scan.files == 2
    assert scan_reports(tmp_path, [secret]).files == 4  # without a run of its own: everything


@pytest.mark.parametrize("chunk", [64, 1 << 24])
def test_one_pass_search_finds_exactly_what_a_search_per_secret_finds(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every secret length from the shortest kept (8) up, at every offset of the data (so every
    alignment and, with 64-byte chunks, every chunk boundary), and near misses: a secret with
    its last byte changed, a prefix of one, windows of one spread apart."""
    monkeypatch.setattr(secret_scan, "CHUNK", chunk)
    rng = random.Random(7)
    secrets = [bytes(rng.randrange(256) for _ in range(n)) for n in (8, 9, 14, 15, 16, 23, 43, 64, 100)]
    needles = secret_scan.Needles(secrets)
    base = bytes(rng.randrange(256) for _ in range(300))
    cases = []
    for s in secrets:
        for at in range(0, len(base) - len(s) + 1, 1 if len(s) in (15, 43) else 7):
            cases.append(base[:at] + s + base[at + len(s):])
        cases.append(base[:100] + s[:-1] + bytes([s[-1] ^ 1]) + base[100 + len(s):])  # last byte off
        cases.append(base[:50] + s[:len(s) - 1] + base[50 + len(s) - 1:])  # a prefix only
        cases.append(s[:8] + base + s[8:16] + base + s[16:])  # its windows, apart
    cases += [b"", base, secrets[-1]]
    for data in cases:
        assert needles.found_in(data) == any(s in data for s in secrets), data.hex()


def test_one_pass_search_screens_a_large_file_and_finds_a_secret_in_its_last_bytes() -> None:
    rng = random.Random(8)
    secrets = [bytes(rng.randrange(256) for _ in range(43)) for _ in range(100)]
    data = bytearray(rng.randbytes(40 << 20))
    needles = secret_scan.Needles(secrets)
    assert not needles.found_in(bytes(data))
    edge = bytearray(data)
    edge[secret_scan.CHUNK - 20:secret_scan.CHUNK + 23] = secrets[5]  # across the first chunk's end
    assert needles.found_in(bytes(edge))
    data[-43:] = secrets[37]
    assert needles.found_in(bytes(data))

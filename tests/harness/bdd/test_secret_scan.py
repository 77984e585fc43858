"""The bench's own search of its reports for the secrets it knows."""

from __future__ import annotations

from pathlib import Path

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

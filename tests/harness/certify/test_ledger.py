"""The delivery ledger on hand-built histories: every class, and the validity rule."""

from __future__ import annotations

from harness.certify.ledger import Capture, build_ledger, in_windows

T0 = 1_700_000_000.0


def cap(name: str, sha: str = "aa", at: float = T0, **kw: object) -> dict[str, object]:
    return {"name": name, "sha256": sha, "size": 10, "captured_at": at, **kw}


def row(name: str, sha: str | None = "aa", state: str = "complete", done: float | None = T0 + 5, **kw: object) -> dict[str, object]:
    return {"name": name, "sha256": sha, "state": state, "completed_at": done, "asset_id": f"a-{name}-{sha}",
            "created_at": T0 + 1, **kw}


def outcomes(ledger) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {f.name: f.outcome for f in ledger.files}


def test_intact_and_latency() -> None:
    lg = build_ledger([cap("A.jpg")], [row("A.jpg")])
    assert outcomes(lg) == {"A.jpg": "intact"}
    assert lg.valid and lg.files[0].latency_s == 5.0
    assert lg.latency_quantiles()["max"] == 5.0


def test_lost_when_drained_pending_when_not() -> None:
    assert outcomes(build_ledger([cap("A.jpg")], [], drained=True)) == {"A.jpg": "lost"}
    lg = build_ledger([cap("A.jpg")], [], drained=False)
    assert outcomes(lg) == {"A.jpg": "pending"} and lg.valid
    assert not build_ledger([cap("A.jpg")], [], drained=True).valid


def test_lost_notes_a_device_that_claims_done() -> None:
    lg = build_ledger([cap("A.jpg")], [row("A.jpg", state="uploading", done=None)],
                      device_files=[{"name": "A.jpg", "state": "done"}])
    assert lg.files[0].outcome == "lost" and "claims" in lg.files[0].note


def test_corrupt_when_hash_differs() -> None:
    lg = build_ledger([cap("A.jpg", sha="aa")], [row("A.jpg", sha="bb")])
    assert outcomes(lg) == {"A.jpg": "corrupt"} and not lg.valid
    assert "A.jpg: corrupt" in lg.problems()[0]


def test_duplicated_when_two_assets_complete() -> None:
    lg = build_ledger([cap("A.jpg")], [row("A.jpg"), {**row("A.jpg"), "asset_id": "second"}])
    assert outcomes(lg) == {"A.jpg": "duplicated"} and not lg.valid


def test_withheld_and_leaked_by_pause_window() -> None:
    windows = [{"start": T0 + 10, "stop": T0 + 20}]
    lg = build_ledger([cap("P.jpg", at=T0 + 15), cap("Q.jpg", at=T0 + 16), cap("R.jpg", at=T0 + 30)],
                      [row("Q.jpg"), row("R.jpg")], pause_windows=windows)
    assert outcomes(lg) == {"P.jpg": "withheld", "Q.jpg": "leaked", "R.jpg": "intact"}
    assert not lg.valid and lg.counts["leaked"] == 1


def test_explicit_paused_flag_wins_over_windows() -> None:
    lg = build_ledger([cap("P.jpg", paused=True)], [])
    assert outcomes(lg) == {"P.jpg": "withheld"} and lg.valid


def test_intentionally_corrupt_file_may_be_rejected() -> None:
    lg = build_ledger([cap("Z.jpg", corruption="zero_length"), cap("A.jpg")], [row("A.jpg")])
    assert outcomes(lg) == {"Z.jpg": "rejected", "A.jpg": "intact"} and lg.valid
    # uploaded as captured (the device does not judge media) is intact too
    lg = build_ledger([cap("Z.jpg", corruption="truncate")], [row("Z.jpg")])
    assert outcomes(lg) == {"Z.jpg": "intact"}


def test_unexpected_assets_are_reported() -> None:
    lg = build_ledger([cap("A.jpg")], [row("A.jpg"), row("GHOST.jpg")])
    assert lg.counts["unexpected"] == 1 and not lg.valid
    assert any("GHOST.jpg" in p for p in lg.problems())


def test_same_name_captured_twice_matches_by_hash() -> None:
    lg = build_ledger([cap("A.jpg", sha="11"), cap("A.jpg", sha="22")], [row("A.jpg", sha="22"), row("A.jpg", sha="11")])
    assert [f.outcome for f in lg.files] == ["intact", "intact"]
    lg = build_ledger([cap("A.jpg", sha="11"), cap("A.jpg", sha="22")], [row("A.jpg", sha="11")])
    assert [f.outcome for f in lg.files] == ["intact", "lost"]


def test_incomplete_row_is_pending_then_lost() -> None:
    r = row("A.jpg", state="uploading", done=None)
    assert outcomes(build_ledger([cap("A.jpg")], [r], drained=False)) == {"A.jpg": "pending"}
    assert outcomes(build_ledger([cap("A.jpg")], [r], drained=True)) == {"A.jpg": "lost"}


def test_rows_before_the_scenario_are_ignored() -> None:
    old = {**row("A.jpg"), "created_at": T0 - 100}
    lg = build_ledger([cap("A.jpg")], [old], since=T0)
    assert outcomes(lg) == {"A.jpg": "lost"} and lg.counts["unexpected"] == 0


def test_bytes_duplicate_is_carried_and_dict_is_serialisable() -> None:
    lg = build_ledger([Capture("A.jpg", "aa", 10, T0)], [row("A.jpg", bytes_duplicate=123)])
    assert lg.files[0].bytes_duplicate == 123
    d = lg.to_dict()
    assert d["counts"]["intact"] == 1 and d["valid"] is True


def test_in_windows_open_ended() -> None:
    assert in_windows(T0 + 100, [{"start": T0, "stop": None}])
    assert not in_windows(T0 - 1, [{"start": T0, "stop": None}])


def test_a_copy_under_another_name_is_unexpected_in_the_window() -> None:
    """Point 15: a device that uploads a file again under another name (or a file it was not
    given) during the scenario makes the ledger invalid, and problems() says which asset."""
    extra = {**row("Cafe_ss_.jpg"), "created_at": T0 + 2}
    lg = build_ledger([cap("Café_ß_🎬.jpg")], [row("Café_ß_🎬.jpg"), extra], since=T0)
    assert outcomes(lg) == {"Café_ß_🎬.jpg": "intact"}
    assert [u["name"] for u in lg.unexpected] == ["Cafe_ss_.jpg"] and not lg.valid
    assert lg.problems() == ["Cafe_ss_.jpg: unexpected asset a-Cafe_ss_.jpg-aa"]


def test_earlier_scenarios_and_known_names_are_not_unexpected() -> None:
    """Scenarios share the emulator: assets before the window, and late uploads of files the
    bench captured in another scenario of the run, are not this scenario's unexpected uploads."""
    before = {**row("OLD.jpg"), "created_at": T0 - 50}
    late = {**row("EARLIER.jpg"), "created_at": T0 + 3}
    lg = build_ledger([cap("A.jpg")], [row("A.jpg"), before, late], since=T0, known_names={"EARLIER.jpg"})
    assert lg.valid and lg.unexpected == []


def test_proxies_named_after_a_capture_are_not_unexpected_when_allowed() -> None:
    proxy = {**row("A001_proxy.mp4"), "created_at": T0 + 4}
    assert build_ledger([cap("A001.mov")], [row("A001.mov"), proxy], proxies=False).unexpected
    lg = build_ledger([cap("A001.mov")], [row("A001.mov"), proxy], proxies=True)
    assert lg.valid and [p["name"] for p in lg.proxies] == ["A001_proxy.mp4"]


def test_window_start_is_the_first_request_in_emulator_time() -> None:
    from harness.certify.ledger import window_start

    assert window_start([{"t": T0 + 9, "started_at": T0 + 8}, {"t": T0 + 3, "started_at": None}]) == T0 + 3
    assert window_start([]) == float("inf")


def test_window_start_ignores_when_a_long_lived_socket_opened() -> None:
    """A status socket opened in the previous scenario and closed in this one (journaled at its
    close) must not pull the previous scenario's uploads into this window."""
    from harness.certify.ledger import window_start

    socket = {"t": T0 + 12, "started_at": T0 + 1, "method": "WS"}
    assert window_start([socket, {"t": T0 + 5, "started_at": T0 + 4, "method": "POST"}]) == T0 + 4
    assert window_start([socket]) == T0 + 12

"""The checker on hand-made histories: each violation category, and the verdicts that are not
about the device (a bench failure is `error`, a fault that never acted is `inconclusive`)."""

from __future__ import annotations

from typing import Any

from harness.chaos.checker import check
from harness.chaos.history import CaptureRecord, FaultRecord, History

T0 = 1_000_000.0
PART = 8 * 1024 * 1024


def _capture(name: str, at: float = 1.0, sha: str = "a" * 64, corruption: str | None = None) -> CaptureRecord:
    return CaptureRecord(name=name, sha256=sha, size=100, captured_at=T0 + at, corruption=corruption)


def _row(name: str, *, done_at: float | None = 5.0, sha: str = "a" * 64, **extra: Any) -> dict[str, Any]:
    return {"asset_id": f"id-{name}-{done_at}", "name": name, "sha256": sha, "state": "complete" if done_at else "created",
            "completed_at": T0 + done_at if done_at else None, "created_at": T0 + 2.0, "filesize": 2 * PART,
            "parts_expected": 2, "bytes_duplicate": 0, "bytes_received": 2 * PART, **extra}


def _history(captures: list[CaptureRecord], rows: list[dict[str, Any]], faults: list[FaultRecord] | None = None,
             **extra: Any) -> History:
    h = History(schedule="s1-0000", lane=1, started_at=T0, faults_end=T0 + 4.0, finished_at=T0 + 10.0,
                captures=captures, cloud_rows=rows, faults=faults or [FaultRecord(0, "power:cycle", T0 + 2, T0 + 2.5, True)])
    for key, value in extra.items():
        setattr(h, key, value)
    return h


def test_everything_delivered_once_and_intact_passes() -> None:
    v = check(_history([_capture("a.jpg"), _capture("b.jpg")], [_row("a.jpg"), _row("b.jpg")]), recovery=30)
    assert v.outcome == "pass", v.problems
    assert v.counts["intact"] == 2


def test_a_file_that_never_arrives_is_lost() -> None:
    v = check(_history([_capture("a.jpg"), _capture("b.jpg")], [_row("a.jpg"), _row("b.jpg", done_at=None)]),
              recovery=30)
    assert v.outcome == "fail" and v.categories == ["lost"]


def test_two_complete_assets_of_one_capture_are_duplicated() -> None:
    v = check(_history([_capture("a.jpg")], [_row("a.jpg"), _row("a.jpg", done_at=6.0)]), recovery=30)
    assert v.categories == ["duplicated"]


def test_other_bytes_than_captured_are_corrupt() -> None:
    v = check(_history([_capture("a.jpg")], [_row("a.jpg", sha="b" * 64)]), recovery=30)
    assert v.categories == ["corrupt"]


def test_a_file_captured_while_paused_must_not_reach_the_cloud() -> None:
    windows = [{"start": T0 + 0.5, "stop": T0 + 6.0}]
    held = check(_history([_capture("a.jpg", at=3.0)], [], pause_windows=windows), recovery=30)
    assert held.outcome == "pass" and held.counts["withheld"] == 1
    leaked = check(_history([_capture("a.jpg", at=3.0)], [_row("a.jpg")], pause_windows=windows), recovery=30)
    assert leaked.categories == ["leaked"]


def test_a_damaged_file_may_be_refused_or_sent_as_it_is() -> None:
    bad = _capture("z.jpg", sha="c" * 64, corruption="zero-length")
    assert check(_history([bad], []), recovery=30).outcome == "pass"
    assert check(_history([bad], [_row("z.jpg", sha="c" * 64)]), recovery=30).outcome == "pass"


def test_a_file_completing_after_the_bound_is_late() -> None:
    v = check(_history([_capture("a.jpg")], [_row("a.jpg", done_at=40.0)]), recovery=30)
    assert v.categories == ["late"]


def test_re_sent_bytes_are_bounded_by_one_part_per_asset_in_flight_per_disruption() -> None:
    ok = check(_history([_capture("a.bin")], [_row("a.bin", bytes_duplicate=PART)]), recovery=30)
    assert ok.outcome == "pass" and ok.resent_allowance == PART  # one asset in flight at the cut
    whole = check(_history([_capture("a.bin")], [_row("a.bin", bytes_duplicate=3 * PART)]), recovery=30)
    assert whole.categories == ["resent"]
    # an asset abandoned for a new one counts its bytes as re-sent (no expired URL to excuse it)
    abandoned = check(_history([_capture("a.bin")], [_row("a.bin", done_at=None, bytes_received=3 * PART),
                                                     _row("a.bin")]), recovery=30)
    assert abandoned.categories == ["resent"]
    no_disruption = check(_history([_capture("a.bin")], [_row("a.bin", bytes_duplicate=1)],
                                   faults=[FaultRecord(0, "api:internal-error x1", T0, T0 + 1, True)]), recovery=30)
    assert no_disruption.categories == ["resent"]


def test_pairing_again_fails_unless_revoked_or_the_grant_was_lost_in_flight() -> None:
    caps, rows = [_capture("a.jpg")], [_row("a.jpg")]
    assert check(_history(caps, rows, device_rows=2), recovery=30).categories == ["repaired"]
    assert check(_history(caps, rows, pairing_state="showing_code"), recovery=30).categories == ["repaired"]
    assert check(_history(caps, rows, device_rows=2, revoked=True), recovery=30).outcome == "pass"
    excused = _history(caps, rows, device_rows=2, pairing_state="paired", repair_excused="refresh answered in a cut")
    assert check(excused, recovery=30).outcome == "pass"


def test_a_dead_device_is_a_crash() -> None:
    v = check(_history([_capture("a.jpg")], [_row("a.jpg")], device_alive=False), recovery=30)
    assert v.categories == ["crashed"]


def test_a_bench_failure_is_an_error_whatever_the_ledger_says() -> None:
    v = check(_history([_capture("a.jpg")], [], bench_error="CloudError: emulator gone"), recovery=30)
    assert v.outcome == "error" and not v.problems


def test_a_fault_that_never_acted_makes_a_clean_schedule_inconclusive_not_pass() -> None:
    unfired = [FaultRecord(0, "s3:slowdown x2", T0 + 1, T0 + 3, fired=False, note="0 hit(s)")]
    v = check(_history([_capture("a.jpg")], [_row("a.jpg")], faults=unfired), recovery=30)
    assert v.outcome == "inconclusive" and v.unfired == ["s3:slowdown x2 (0 hit(s))"]
    # the faults that did act were enough to show a loss: that is still the device's failure
    lost = check(_history([_capture("a.jpg")], [], faults=unfired), recovery=30)
    assert lost.outcome == "fail"


def test_a_capture_at_a_pause_edge_may_be_withheld_or_delivered_but_not_lost_twice() -> None:
    windows = [{"start": T0 + 3.0, "stop": T0 + 8.0}]
    edge = _capture("a.jpg", at=2.0)  # 1 s before the pause: which side is the cloud's call
    assert check(_history([edge], [], pause_windows=windows), recovery=30).counts["withheld"] == 1
    assert check(_history([edge], [_row("a.jpg")], pause_windows=windows), recovery=30).outcome == "pass"
    twice = check(_history([edge], [_row("a.jpg"), _row("a.jpg", done_at=6.0)], pause_windows=windows), recovery=30)
    assert twice.categories == ["duplicated"]
    clear = _capture("b.jpg", at=0.5)  # 2.5 s before the pause: must arrive
    assert check(_history([clear], [], pause_windows=windows), recovery=30).categories == ["lost"]


def test_an_asset_complete_before_the_cut_earns_no_allowance() -> None:
    early = _row("a.bin", done_at=1.5, bytes_duplicate=PART)  # complete before the cut at +2 s
    v = check(_history([_capture("a.bin")], [{**early, "created_at": T0 + 0.5}]), recovery=30)
    assert v.resent_allowance == 0 and v.categories == ["resent"]


def test_an_asset_completed_just_before_the_cut_is_still_in_flight() -> None:
    """The cloud completed the file 3 ms before the cut: the device may never have read the 200
    of its last part and sends it again (one part allowed, as for an asset not yet complete)."""
    just = _row("a.bin", done_at=1.997, bytes_duplicate=PART)
    v = check(_history([_capture("a.bin")], [{**just, "created_at": T0 + 0.5}]), recovery=30)
    assert v.resent_allowance == PART and v.outcome == "pass", v.problems
    twice = check(_history([_capture("a.bin")], [{**just, "created_at": T0 + 0.5, "bytes_duplicate": 2 * PART}]),
                  recovery=30)
    assert twice.categories == ["resent"]


def test_an_edge_capture_the_cloud_accepted_is_judged_as_delivered_side() -> None:
    """Campaign s2027-0926: a file 1.3 s before a pause, created after the resume and still
    uploading when judged, was called 'captured while paused and reached the cloud'. The cloud
    accepted its create, so it is on the delivered side: it must complete (else lost)."""
    windows = [{"start": T0 + 3.0, "stop": T0 + 8.0}]
    edge = _capture("a.bin", at=1.7)
    uploading = _row("a.bin", done_at=None)
    v = check(_history([edge], [uploading], pause_windows=windows), recovery=30)
    assert v.categories == ["lost"], v.problems
    assert check(_history([edge], [_row("a.bin")], pause_windows=windows), recovery=30).outcome == "pass"
    assert check(_history([edge], [], pause_windows=windows), recovery=30).counts["withheld"] == 1

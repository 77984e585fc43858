"""The recovery wait's rule (runner.awaited): which files a schedule still waits for."""

from __future__ import annotations

from harness.chaos.runner import EDGE_GRACE_S, awaited, given_up

EDGE = {"A.bin"}  # captured 1.1 s before a pause began: either side of it is the cloud's call


def test_an_edge_capture_the_device_still_sends_is_waited_for_until_its_asset_exists() -> None:
    """The failure this rule mends: the create came 60 ms after the last fault, the wait had
    already ended on "nothing expected", and the checker judged the accepted file lost."""
    states = {"A.bin": "uploading"}
    assert awaited(set(), EDGE, set(), set(), since_faults=0.05, device_states=states) == EDGE
    assert awaited(set(), EDGE, set(), set(), since_faults=EDGE_GRACE_S + 30, device_states=states) == EDGE
    accepted = awaited(set(), EDGE, {"A.bin"}, set(), since_faults=EDGE_GRACE_S + 30, device_states={})
    assert accepted == EDGE  # the cloud holds an asset: it must complete, grace or not
    assert awaited(set(), EDGE, {"A.bin"}, {"A.bin"}, since_faults=1.0, device_states=states) == set()


def test_an_edge_capture_the_device_holds_is_not_waited_for() -> None:
    for state in ("held", "failed", "cancelled", "quarantined"):
        assert awaited(set(), EDGE, set(), set(), since_faults=0.05, device_states={"A.bin": state}) == set()


def test_without_a_word_from_the_device_an_edge_capture_gets_a_grace() -> None:
    assert awaited(set(), EDGE, set(), set(), since_faults=1.0, device_states={}) == EDGE
    assert awaited(set(), EDGE, set(), set(), since_faults=EDGE_GRACE_S, device_states={}) == set()


def test_expected_files_are_waited_for_until_complete() -> None:
    expected = {"B.jpg", "C.jpg"}
    assert awaited(expected, set(), {"B.jpg"}, {"B.jpg"}, since_faults=99.0, device_states={}) == {"C.jpg"}
    assert awaited(expected, set(), expected, expected, since_faults=0.0, device_states={}) == set()


def test_the_device_has_given_up_only_when_it_says_so_for_every_missing_file() -> None:
    assert given_up({"A.bin", "B.jpg"}, {"A.bin": "held", "B.jpg": "failed"})
    assert not given_up({"A.bin", "B.jpg"}, {"A.bin": "held", "B.jpg": "uploading"})
    assert not given_up({"A.bin"}, {})  # no status API: no word, the bound stands

"""The pure judges behind the pairing, presence and security steps (issue #19 points 7-10)."""

from __future__ import annotations

import base64
import json
import re

import pytest

from harness.bdd.run_witness import SEMVER
from harness.bdd.steps.pairing_steps import own_successful_polls, poll_intervals
from harness.bdd.steps.presence_steps import longest_gap
from harness.bdd.steps.security_steps import encodings, leaks
from harness.redaction import TOKEN_PATTERNS


# --- C2C-SOCK-01 -------------------------------------------------------------------------------
def test_one_beat_is_not_a_gap_of_zero() -> None:
    """The old check turned a single beat into `[0.0]`; the window's edges bound it now."""
    assert longest_gap([100.0], 0.0, 400.0) == 300.0
    assert longest_gap([], 0.0, 320.0) == 320.0  # no beat: the whole window is silence


def test_gaps_include_both_edges_and_ignore_beats_outside_the_window() -> None:
    beats = [-50.0, 20.0, 30.0, 40.0, 500.0]  # one before, one after the window
    assert longest_gap(beats, 0.0, 100.0) == 60.0  # last beat at 40 to the end at 100
    assert longest_gap([10.0, 20.0, 90.0], 0.0, 100.0) == 70.0


# --- C2C-AUTH-04 -------------------------------------------------------------------------------
def _poll(started: float, answer: str, client: str = "cam") -> dict[str, object]:
    return {"client_id": client, "started_at": started, "t": started + 0.02, "answer": answer}


def test_poll_intervals_of_a_device_that_honours_slow_down() -> None:
    polls = [_poll(105.0, "slow_down"), _poll(115.02, "slow_down"), _poll(130.04, "authorization_pending"),
             _poll(145.06, "ok")]
    before, after = poll_intervals(polls, issued_at=100.0) or (0, 0)
    assert before == pytest.approx(5.0) and after == pytest.approx(10.0)


def test_poll_intervals_of_a_device_that_ignores_slow_down() -> None:
    polls = [_poll(100.0 + 5.02 * i, "slow_down") for i in range(6)]
    before, after = poll_intervals(polls, issued_at=95.0) or (0, 0)
    assert after - before < 1


def test_poll_intervals_without_slow_down_or_without_a_next_poll() -> None:
    assert poll_intervals([_poll(105.0, "authorization_pending")], issued_at=100.0) is None
    assert poll_intervals([_poll(105.0, "slow_down")], issued_at=100.0) == (5.0, -1.0)
    assert poll_intervals([_poll(105.0, "slow_down")], issued_at=None) is None


def test_only_the_devices_own_token_answers_count() -> None:
    polls = [_poll(1.0, "ok", "other"), _poll(2.0, "authorization_pending"), _poll(3.0, "ok")]
    assert [p["started_at"] for p in own_successful_polls(polls, "cam")] == [3.0]


# --- C2C-SEC-03 / C2C-SEC-04 -------------------------------------------------------------------
REFRESH = "3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"  # the emulator's refresh tokens are UUIDs


def test_a_token_under_an_unknown_key_is_found_by_value_where_the_regexes_miss() -> None:
    text = json.dumps({"grant": {"rt": REFRESH}})
    assert not any(rx.search(text) for rx in TOKEN_PATTERNS)
    assert leaks([("state/session-cache.json", text)], [REFRESH]) == ["state/session-cache.json"]


def test_base64_of_a_secret_is_a_leak_and_only_places_are_reported() -> None:
    secret = "s3cr3t-client-value-0123456789"
    texts = [("support-export.txt", "credentials: " + base64.b64encode(secret.encode()).decode()),
             ("device console", "started"), ("status.json", "{}")]
    found = leaks(texts, [secret])
    assert found == ["support-export.txt"] and secret not in str(found)
    assert base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=") in encodings(secret)


def test_patterns_still_catch_shapes_of_tokens_the_emulator_no_longer_knows() -> None:
    assert leaks([("device.log", "Authorization: Bearer abcdefghijklmnopqrstuvwxyz")], [], TOKEN_PATTERNS) == ["device.log"]
    assert leaks([("device.log", "nothing here")], ["", "x" * 40], TOKEN_PATTERNS) == []


# --- C2C-HDR-01 -------------------------------------------------------------------------------
@pytest.mark.parametrize("version,ok", [("1.0.0", True), ("2.3.4-rc.1+build.5", True), ("1.00", False), ("", False),
                                        ("v1.0.0", False)])
def test_semver(version: str, ok: bool) -> None:
    assert bool(SEMVER.match(version)) is ok
    assert isinstance(SEMVER, re.Pattern)

"""Jepsen-style fault campaigns (issue #11): random, replayable fault schedules against a
device, a checker over each schedule's whole history, and a shrinker for the failures.

    python -m harness.chaos --device reference --schedules 20 --seed 1

generator (seed -> Schedule) -> runner (a Lane: cloud, proxy, device) -> History ->
checker (ledger + invariants -> Verdict) -> shrink (failures) -> report (JSON, HTML).
"""

"""Merging the shards of a sharded run (harness.certify.merge): order, digests, unions, refusals."""

from __future__ import annotations

from typing import Any

import pytest

from harness.certify.merge import Shard, merge_shards, worker_key
from harness.certify.seal import digest
from harness.errors import ConfigError

ORDER = ["s.py::a", "s.py::b", "s.py::c", "s.py::d"]


def shard(worker: str, nodeids: list[str], *, journal: str, rows: int, profile: str = "p1",
          contradictions: list[dict[str, Any]] | None = None, findings: dict[str, str] | None = None,
          scan: dict[str, Any] | None = None) -> Shard:
    return Shard(worker=worker, order=list(ORDER),
                 results=[{"nodeid": n, "verdict": "pass", "finished_at": float(i)} for i, n in enumerate(nodeids)],
                 device={"id": "dev"}, bound={"profile_sha256": profile, "journal_sha256": journal, "journal_rows": rows},
                 expected={"C2C-UPL-01": ["a"]}, selected=4, deselected=["z"],
                 contradictions=contradictions or [], run_findings=findings or {}, secret_scan=scan)


def test_rows_come_back_in_collection_order_whatever_worker_ran_them() -> None:
    merged = merge_shards([shard("gw1", ["s.py::d", "s.py::a"], journal="j1", rows=3),
                           shard("gw0", ["s.py::c", "s.py::b"], journal="j0", rows=5)])
    assert [r["nodeid"] for r in merged["results"]] == ORDER
    assert (merged["selected"], merged["deselected"], merged["device"]) == (4, ["z"], {"id": "dev"})


def test_journal_digest_binds_every_shard_in_worker_order() -> None:
    merged = merge_shards([shard("gw10", ["s.py::a"], journal="j10", rows=1),
                           shard("gw2", ["s.py::b"], journal="j2", rows=2)])
    assert merged["bound"]["journal_rows"] == 3
    assert merged["bound"]["journal_sha256"] == digest([["gw2", "j2", 2], ["gw10", "j10", 1]])
    assert [s["worker"] for s in merged["shards"]] == ["gw2", "gw10"]
    other = merge_shards([shard("gw10", ["s.py::a"], journal="jX", rows=1),
                          shard("gw2", ["s.py::b"], journal="j2", rows=2)])
    assert other["bound"]["journal_sha256"] != merged["bound"]["journal_sha256"]


def test_contradictions_findings_and_scans_are_unions() -> None:
    parallel = {"declaration": "capabilities: parallel", "evidence": "never two"}
    merged = merge_shards([
        shard("gw0", ["s.py::a"], journal="j0", rows=1, contradictions=[parallel],
              findings={"C2C-HDR-01": "2 requests"}, scan={"files": 5, "secrets": 2, "hits": []}),
        shard("gw1", ["s.py::b"], journal="j1", rows=1, contradictions=[parallel],
              findings={"C2C-HDR-01": "1 request", "C2C-SEC-01": "plain"},
              scan={"files": 7, "secrets": 2, "hits": [{"file": "x", "secret": 1}]}),
    ])
    assert merged["contradictions"] == [parallel]
    assert merged["run_findings"] == {"C2C-HDR-01": "2 requests; 1 request", "C2C-SEC-01": "plain"}
    assert merged["secret_scan"] == {"files": 12, "secrets": 4, "hits": [{"file": "x", "secret": 1}]}


def test_shards_of_different_profiles_are_refused() -> None:
    with pytest.raises(ConfigError, match="different profiles"):
        merge_shards([shard("gw0", ["s.py::a"], journal="j", rows=1, profile="p1"),
                      shard("gw1", ["s.py::b"], journal="j", rows=1, profile="p2")])
    with pytest.raises(ConfigError, match="no shard"):
        merge_shards([])


def test_worker_ids_sort_numerically() -> None:
    assert sorted(["gw10", "gw2", "gw0"], key=worker_key) == ["gw0", "gw2", "gw10"]

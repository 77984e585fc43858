"""`c2c-certify repeat N`: per item, how often the verdict differed between identical runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.certify.repeat import bench_record, repeat, verdict_diffs


def _cert(**verdicts: str) -> dict[str, object]:
    return {"headline": "x", "items": {item: {"verdict": v} for item, v in verdicts.items()}}


def test_a_flaky_item_is_counted_against_its_most_common_verdict() -> None:
    certs = [_cert(A="pass", B="pass"), _cert(A="pass", B="fail"), _cert(A="pass", B="pass")]
    diffs = verdict_diffs(certs)
    assert diffs["A"] == {"verdicts": ["pass"] * 3, "most_common": "pass", "differ": 0}
    assert diffs["B"]["differ"] == 1 and diffs["B"]["most_common"] == "pass"


def test_repeat_runs_each_certification_into_its_own_folder(tmp_path: Path) -> None:
    seen: list[Path] = []

    def certify(out: Path) -> int:
        seen.append(out)
        out.mkdir(parents=True)
        flaky = "fail" if len(seen) == 2 else "pass"
        (out / "certificate.json").write_text(json.dumps(_cert(A="pass", B=flaky)))
        return 0 if flaky == "pass" else 1

    summary = repeat(3, certify, tmp_path)
    assert [p.name for p in seen] == ["run-01", "run-02", "run-03"]
    assert summary["verdict_diffs"] == 1 and summary["items_that_differed"] == ["B"]
    assert summary["exit_codes"] == [0, 1, 0]
    assert json.loads((tmp_path / "repeat.json").read_text())["runs"] == 3
    record = bench_record(summary, device="reference")
    names = {r["name"]: r for r in record["results"]}
    assert record["benchmark"] == "certify" and names["verdict_diffs"]["value"] == 1
    assert names["certify_s"]["unit"] == "s" and names["verdict_diffs"]["params"]["workers"] == 1


def test_shard_bench_rows_compare_every_sharded_run_with_the_serial_one() -> None:
    from harness.certify.repeat import differing_items, shard_bench_record

    serial = {"headline": "CERTIFIED", "items": {"A": {"verdict": "pass"}, "B": {"verdict": "fail"}}}
    same = {"headline": "CERTIFIED", "items": {"A": {"verdict": "pass"}, "B": {"verdict": "fail"}}}
    other = {"headline": "NOT", "items": {"A": {"verdict": "error"}, "B": {"verdict": "fail"}, "C": {"verdict": "pass"}}}
    assert differing_items(serial, other) == ["A", "C"] and differing_items(serial, same) == []
    rows = shard_bench_record([(1, 100.0, serial), (2, 60.0, same), (4, 30.0, other)], device="reference",
                              selection="full")["results"]
    got = {(r["name"], r["params"]["workers"]): r["value"] for r in rows}
    assert got == {("certify_s", 1): 100.0, ("certify_s", 2): 60.0, ("verdict_diffs", 2): 0, ("parallel_ratio", 2): 0.6,
                   ("certify_s", 4): 30.0, ("verdict_diffs", 4): 2, ("parallel_ratio", 4): 0.3}
    assert next(r for r in rows if r["name"] == "verdict_diffs" and r["params"]["workers"] == 4)["params"]["items"] == ["A", "C"]
    with pytest.raises(ValueError, match="serial"):
        shard_bench_record([(2, 1.0, same)], device="reference", selection="full")


def test_repeat_passes_its_workers_to_each_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.certify import cli

    seen: list[list[str]] = []
    real_main = cli.main

    def fake_main(argv: list[str] | None = None) -> int:
        if argv and argv[0] == "run":
            seen.append(list(argv))
            out = Path(argv[argv.index("--reports") + 1])
            out.mkdir(parents=True, exist_ok=True)
            (out / "certificate.json").write_text(json.dumps({"items": {"C2C-UPL-01": {"verdict": "pass"}}}))
            return 0
        return real_main(argv)

    monkeypatch.setattr(cli, "main", fake_main)
    assert real_main(["repeat", "2", "--workers", "4", "--reports", str(tmp_path / "r"),
                      "--bench", str(tmp_path / "b")]) == 0
    assert len(seen) == 2 and all(a[a.index("--workers") + 1] == "4" for a in seen)
    rows = json.loads((tmp_path / "b" / "certify.json").read_text())["results"]
    assert {r["params"]["workers"] for r in rows} == {4}

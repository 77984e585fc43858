"""`c2c-certify repeat N`: per item, how often the verdict differed between identical runs."""

from __future__ import annotations

import json
from pathlib import Path

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

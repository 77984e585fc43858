"""`python -m harness.chaos --device PROFILE --schedules N --seed S [--duration T] [--workers K]
[--replay FILE] [--out DIR]`: a Jepsen-style fault campaign against a software device.

Exit 0: no schedule failed and the bench held (inconclusive schedules are counted, not
failures); 1: the device failed at least one schedule (each written out, shrunk and replayed
under DIR/failures); 2: usage error or the bench failed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from harness.chaos.campaign import (
    LANE_RUNS,
    Campaign,
    CampaignConfig,
    Outcome,
    Progress,
    run_campaign,
)
from harness.chaos.report import summary_table, write_reports
from harness.chaos.schedule import Schedule
from harness.device.profile import load_profile
from harness.errors import C2CBenchError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", required=True, help="device profile (name, path or mutant:NAME)")
    p.add_argument("--schedules", type=int, default=20, help="how many schedules (default 20)")
    p.add_argument("--seed", type=int, default=1, help="campaign seed: schedule i depends only on (seed, i)")
    p.add_argument("--duration", type=float, default=6.0, help="seconds of faults per schedule (default 6)")
    p.add_argument("--workers", type=int, default=2, help="devices at once, each with its own lane (default 2)")
    p.add_argument("--replay", type=Path, help="run this written schedule (JSON) instead of generating")
    p.add_argument("--out", type=Path, help="report directory (default: a new one under /tmp)")
    p.add_argument("--no-shrink", action="store_true", help="write failures out without shrinking them")
    p.add_argument("--shrink-tries", type=int, default=10, help="runs a shrink may take (default 10)")
    p.add_argument("--retry-inconclusive", type=int, default=1, metavar="N",
                   help="run a schedule whose fault never acted again, up to N times (default 1)")
    p.add_argument("--lane-runs", type=int, default=LANE_RUNS, metavar="N",
                   help=f"rebuild a lane after N schedule runs (default {LANE_RUNS}): bounds its cloud and disk")
    p.add_argument("--keep-lanes", action="store_true", help="keep the lanes' scratch (device state, cloud data)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _progress(total: int, stream: TextIO) -> Progress:
    def show(campaign: Campaign, outcome: Outcome) -> None:
        done = len(campaign.outcomes)
        width = 30
        bar = "#" * round(width * done / max(1, total))
        counts = " ".join(f"{v} {campaign.count(v)}" for v in ("pass", "fail", "inconclusive", "error"))
        print(f"\r[{bar:<{width}}] {done}/{total} {counts} (last {outcome.schedule.name}: "
              f"{outcome.verdict.outcome})", end="" if done < total else "\n", file=stream, flush=True)
    return show


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help (0) or a usage error (2): a code, not an exit, for callers
        return exc.code if isinstance(exc.code, int) else 2
    if args.schedules < 1 or args.workers < 1 or args.duration <= 0 or args.lane_runs < 1:
        print("chaos: --schedules, --workers and --lane-runs must be >= 1, --duration > 0", file=sys.stderr)
        return 2
    out: Path = args.out or Path(tempfile.mkdtemp(prefix="c2c-chaos-"))
    try:
        profile = load_profile(args.device)
        replay = Schedule.read(args.replay) if args.replay else None
        schedules = 1 if replay is not None else args.schedules
        cfg = CampaignConfig(profile=profile, seed=replay.seed if replay else args.seed, schedules=schedules,
                             out=out, duration=args.duration, workers=1 if replay else args.workers,
                             shrink=not args.no_shrink and replay is None, shrink_tries=args.shrink_tries,
                             replay=replay, retry_inconclusive=max(0, args.retry_inconclusive),
                             keep_lanes=args.keep_lanes, lane_runs=args.lane_runs)
        show = None if args.quiet else _progress(schedules, sys.stderr)
        campaign = run_campaign(cfg, show)
    except C2CBenchError as exc:
        print(f"chaos: {type(exc).__name__}: {exc}", file=sys.stderr)
        if args.out is None:  # a folder of our own making with no campaign in it
            shutil.rmtree(out, ignore_errors=True)
        return 2
    finally:
        if not args.keep_lanes:
            shutil.rmtree(out / "lanes", ignore_errors=True)
    paths = write_reports(campaign, out)
    print(summary_table(campaign))
    print(f"reports: {paths['html']} {paths['json']}")
    return campaign.exit_code()

"""A campaign: N schedules from one seed over K lanes at once, failures shrunk and replayed.

Each lane runs in its own thread and takes the next schedule index from a shared counter, so
which lane runs a schedule varies but the schedule itself does not (it depends only on seed
and index). All lanes share one emulator (harness.chaos.shared_cloud); each lane's fault rules
name its own device. A failure is written out (schedule JSON: seed, index, timeline), shrunk on the lane
that found it, and its shrunk form replayed once more to show it fails the same way.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.chaos.checker import Verdict, check
from harness.chaos.generator import generate
from harness.chaos.history import History
from harness.chaos.lane import Lane, lane_dir, open_lane
from harness.chaos.runner import run_schedule
from harness.chaos.schedule import Schedule
from harness.chaos.shared_cloud import SharedCloud
from harness.chaos.shrink import Shrunk, same_failure, shrink
from harness.device.profile import DeviceProfile
from harness.errors import BenchFailure, DeviceFailure

RELAUNCH_AFTER = frozenset({"repaired", "crashed"})
"""A schedule that ended in these leaves the lane's device unusable: the lane is rebuilt."""
LANE_RUNS = 25
"""Schedule runs after which a lane is rebuilt anyway: the cloud lists every asset its device
ever took (the runner reads that ledger several times a second), so a lane kept for a whole
1,000-schedule campaign would slow down as it goes, and its bytes (the cloud's copy, the device's
watch folder: some 50 MiB a schedule, 1.2 GB a lane at 25) would fill the disk. A rebuild costs
a few seconds (a new device, paired); the old lane's scratch and its device's bytes in the shared
cloud are removed (unless kept), as nothing failed on it."""


@dataclass
class Outcome:
    """One schedule's result (plus its shrink and the shrunk schedule's replay when it failed)."""

    schedule: Schedule
    verdict: Verdict
    history: History
    wall_s: float
    written: Path | None = None
    shrunk: Shrunk | None = None
    shrunk_written: Path | None = None
    replay: Verdict | None = None
    earlier: list[Verdict] = field(default_factory=list)
    """Inconclusive attempts before this one (a fault that never acted is run again)."""

    @property
    def attempts(self) -> int:
        return len(self.earlier) + 1


@dataclass
class CampaignConfig:
    profile: DeviceProfile
    seed: int
    schedules: int
    out: Path
    duration: float = 6.0
    workers: int = 2
    shrink: bool = True
    shrink_tries: int = 10
    replay: Schedule | None = None
    lane_runs: int = LANE_RUNS
    """Schedule runs after which a lane is rebuilt (see LANE_RUNS)."""
    keep_lanes: bool = False
    """Keep every lane's scratch, also of lanes rebuilt after `lane_runs` schedules."""
    retry_inconclusive: int = 1
    """Runs again a schedule whose fault never acted (the condition was not created), up to this
    many times: the same schedule, other timing. One still inconclusive is counted as such."""


@dataclass
class Campaign:
    config: CampaignConfig
    outcomes: list[Outcome] = field(default_factory=list)
    started_at: float = 0.0
    wall_s: float = 0.0
    lane_setup_s: list[float] = field(default_factory=list)
    device_error: str | None = None
    bench_error: str | None = None

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.verdict.outcome == outcome)

    @property
    def schedules_per_minute(self) -> float:
        return 60.0 * len(self.outcomes) / self.wall_s if self.wall_s > 0 else 0.0

    def exit_code(self) -> int:
        """2: the bench failed (a lane or a schedule errored); 1: the device failed one; 0: none.

        An inconclusive schedule (a fault that never acted) is neither: it is counted and shown."""
        if self.bench_error or self.count("error"):
            return 2
        if self.device_error or self.count("fail"):
            return 1
        return 0


Progress = Callable[[Campaign, Outcome], None]


def run_one(lane: Lane, schedule: Schedule) -> tuple[Verdict, History, float]:
    began = time.monotonic()
    history = run_schedule(lane, schedule)
    return check(history, recovery=schedule.recovery), history, time.monotonic() - began


class _Runner:
    def __init__(self, cfg: CampaignConfig, progress: Progress | None, shared: SharedCloud) -> None:
        self.cfg = cfg
        self.shared = shared
        self.campaign = Campaign(config=cfg)
        self.progress = progress
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._generations: dict[int, int] = {}
        self.open_lanes: list[Lane] = []

    def take(self) -> int | None:
        with self._lock:
            if self._stop.is_set() or self._next >= self.cfg.schedules:
                return None
            self._next += 1
            return self._next - 1

    def lane_main(self, number: int) -> None:
        lane: Lane | None = None
        try:
            lane = self._open(number)
            while (index := self.take()) is not None:
                schedule = (self.cfg.replay if self.cfg.replay is not None
                            else generate(self.cfg.seed, index, duration=self.cfg.duration))
                earlier: list[Verdict] = []
                verdict, history, wall = run_one(lane, schedule)
                while verdict.outcome == "inconclusive" and len(earlier) < self.cfg.retry_inconclusive:
                    earlier.append(verdict)
                    verdict, history, wall = run_one(lane, schedule)
                outcome = Outcome(schedule, verdict, history, wall, earlier=earlier)
                if verdict.outcome == "fail":
                    lane = self._failed(lane, number, outcome)
                elif RELAUNCH_AFTER & set(verdict.categories):
                    lane = self._reopen(lane, number)
                elif lane.runs >= self.cfg.lane_runs:
                    lane = self._reopen(lane, number, discard=not self.cfg.keep_lanes)
                with self._lock:
                    self.campaign.outcomes.append(outcome)
                    if self.progress is not None:
                        self.progress(self.campaign, outcome)
        except DeviceFailure as exc:
            with self._lock:
                self.campaign.device_error = self.campaign.device_error or f"lane {number}: {exc}"
            self._stop.set()
        except BenchFailure as exc:
            with self._lock:
                self.campaign.bench_error = self.campaign.bench_error or f"lane {number}: {exc}"
            self._stop.set()
        finally:
            if lane is not None:
                self._close(lane)

    def _open(self, number: int) -> Lane:
        began = time.monotonic()
        with self._lock:
            generation = self._generations[number] = self._generations.get(number, 0) + 1
        lane = open_lane(number, self.cfg.profile, lane_dir(self.cfg.out, number, generation), seed=self.cfg.seed,
                         shared=self.shared)
        with self._lock:
            self.campaign.lane_setup_s.append(round(time.monotonic() - began, 2))
            self.open_lanes.append(lane)
        return lane

    def _reopen(self, lane: Lane, number: int, *, discard: bool = False) -> Lane:
        """A new lane in place of `lane`; `discard`: remove the old one's scratch (else it stays
        as evidence of what the device left behind)."""
        self._close(lane, discard=discard)
        if discard:
            shutil.rmtree(lane.workdir, ignore_errors=True)
        return self._open(number)

    def _close(self, lane: Lane, *, discard: bool = False) -> None:
        lane.close(drop_content=discard)
        with self._lock:
            if lane in self.open_lanes:
                self.open_lanes.remove(lane)

    def close_all(self) -> None:
        """Close every lane still open (an interrupted campaign must not leave processes behind)."""
        with self._lock:
            lanes, self.open_lanes = list(self.open_lanes), []
        for lane in lanes:
            lane.close()

    def _failed(self, lane: Lane, number: int, outcome: Outcome) -> Lane:
        """Write the failing schedule out; shrink it and replay the shrunk one.

        A device that failed may be left broken (a queue it dropped, credentials it gave up):
        every try starts on a fresh lane after a failure, so a shrunk schedule fails because of
        its own faults, not the state an earlier one left behind."""
        failures = self.cfg.out / "failures"
        outcome.written = outcome.schedule.write(failures / f"{outcome.schedule.name}.json")
        lane = self._reopen(lane, number)
        if not self.cfg.shrink:
            return lane
        holder = [lane]

        def attempt(candidate: Schedule) -> Verdict:
            verdict, _history, _ = run_one(holder[0], candidate)
            if verdict.outcome == "fail" or RELAUNCH_AFTER & set(verdict.categories):
                holder[0] = self._reopen(holder[0], number)
            return verdict

        shrunk = shrink(outcome.schedule, outcome.verdict, attempt, max_tries=self.cfg.shrink_tries)
        outcome.shrunk = shrunk
        outcome.shrunk_written = shrunk.schedule.write(failures / f"{outcome.schedule.name}.shrunk.json")
        outcome.replay = attempt(Schedule.read(outcome.shrunk_written))
        if not same_failure(outcome.verdict, outcome.replay):
            shrunk.log.append(f"replay of the shrunk schedule: {outcome.replay.outcome} "
                              f"{', '.join(outcome.replay.categories)} (not the same failure)")
        return holder[0]


def run_campaign(cfg: CampaignConfig, progress: Progress | None = None) -> Campaign:
    """Run the campaign on `cfg.workers` lanes (threads) and return every outcome."""
    began = time.monotonic()
    shared = SharedCloud(cfg.out / "lanes" / "cloud").start()
    runner = _Runner(cfg, progress, shared)
    campaign = runner.campaign
    campaign.started_at = time.time()
    lanes = max(1, min(cfg.workers, cfg.schedules))
    threads = [threading.Thread(target=runner.lane_main, args=(n,), name=f"chaos-lane-{n}", daemon=True)
               for n in range(1, lanes + 1)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    except KeyboardInterrupt:
        runner._stop.set()
        for t in threads:
            with contextlib.suppress(Exception):
                t.join(10)
        runner.close_all()
        raise
    finally:
        shared.close()
    campaign.wall_s = time.monotonic() - began
    campaign.outcomes.sort(key=lambda o: o.schedule.index)
    return campaign

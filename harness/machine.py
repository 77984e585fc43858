"""How busy the bench machine is: the share of time runnable tasks waited for a CPU.

Linux PSI (/proc/pressure/cpu, "some") counts the microseconds in which at least one
runnable task waited for a CPU. On a starved bench box a device's throughput, a forwarder's
packets and the emulator's answers all slow down for reasons that are the bench's, not the
device's: a throughput verdict that fails there says nothing about the device.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

PSI_CPU = "/proc/pressure/cpu"
PROC_STAT = "/proc/stat"
STARVED_SHARE = 0.8
"""A bench whose tasks waited for a CPU 80 % of the time or more cannot fail a device on speed.
"Some task waited" is common on a busy 2-core box (a clean-clone `make test` read 22-70 % over
10 s windows, 40-58 % over a minute) without a network-bound device slowing down; at 80 % and above (load 11 measured 91 %) the
device's and the link forwarder's wake-ups lag enough to halve a lossy link's throughput."""


def _psi_some(path: str = PSI_CPU) -> dict[str, float] | None:
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("some "):
                    return {k: float(v) for k, v in (f.split("=", 1) for f in line.split()[1:])}
    except (OSError, ValueError):
        pass
    return None


def cpu_pressure(path: str = PSI_CPU) -> float | None:
    """PSI "some avg10" for CPU, in percent; None where the kernel has no PSI."""
    some = _psi_some(path)
    return some.get("avg10") if some else None


@dataclass(frozen=True)
class CpuStallMark:
    """A point to measure CPU starvation from: PSI's stall total and the wall clock."""

    stalled_us: float | None
    at: float

    @classmethod
    def now(cls, path: str = PSI_CPU) -> CpuStallMark:
        some = _psi_some(path)
        return cls(some.get("total") if some else None, time.monotonic())

    def share_since(self, path: str = PSI_CPU) -> float | None:
        """The share of the time since this mark in which some task waited for a CPU (0..1);
        None without PSI or when no time has passed."""
        end = CpuStallMark.now(path)
        if self.stalled_us is None or end.stalled_us is None or end.at <= self.at:
            return None
        return max(0.0, min(1.0, (end.stalled_us - self.stalled_us) / 1e6 / (end.at - self.at)))


@dataclass(frozen=True)
class CpuIdleMark:
    """A point to measure the machine's spare CPU from: /proc/stat's idle and total ticks.

    PSI says whether tasks waited; this says how much CPU nobody used, which is what a
    scheduler deciding to start more work needs."""

    idle: int | None
    total: int | None

    @classmethod
    def now(cls, path: str = PROC_STAT) -> CpuIdleMark:
        try:
            with open(path, encoding="ascii") as fh:
                ticks = [int(v) for v in fh.readline().split()[1:9]]
        except (OSError, ValueError):
            return cls(None, None)
        if len(ticks) < 5:
            return cls(None, None)
        # user nice system idle iowait irq softirq steal (guest time is already in user/nice)
        return cls(ticks[3] + ticks[4], sum(ticks))

    def idle_since(self, path: str = PROC_STAT) -> float | None:
        """The share of the machine's CPU time since this mark that no task used (0..1); None
        without /proc/stat or when no tick has passed."""
        return self.idle_until(CpuIdleMark.now(path))

    def idle_until(self, end: CpuIdleMark) -> float | None:
        """The unused share of the CPU time between this mark and `end` (see idle_since)."""
        if self.idle is None or self.total is None or end.idle is None or end.total is None:
            return None
        if end.total <= self.total:
            return None
        return max(0.0, min(1.0, (end.idle - self.idle) / (end.total - self.total)))


def starved_note(share: float | None) -> str | None:
    """Why a failed speed verdict is the bench's (None when the bench was not starved)."""
    if share is None or share < STARVED_SHARE:
        return None
    return (f"the bench machine was CPU-starved during the upload (some task waited for a CPU {share:.0%} "
            f"of the time, limit {STARVED_SHARE:.0%}, Linux PSI): the throughput measured is the bench's, "
            "not the device's; run it again on a quieter bench")

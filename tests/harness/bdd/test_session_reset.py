"""A scenario that ends in fail or error leaves the next one a factory-reset device (issue #14)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harness.bdd.session import SessionBench
from harness.timeline import Timeline


@dataclass
class FakeDevice:
    stopped: int = 0
    generation: int = 0

    def stop(self) -> None:
        self.stopped += 1


@dataclass
class CountingSession(SessionBench):
    made: list[FakeDevice] = field(default_factory=list)

    def _make_device(self) -> Any:
        self.device_generation += 1
        d = FakeDevice(generation=self.device_generation)
        self.made.append(d)
        return d


def _session(tmp_path: Path, *, software: bool = True) -> CountingSession:
    profile = SimpleNamespace(launch=object() if software else None)
    return CountingSession(profile=profile, workdir=tmp_path, seed=1, prompt=None,  # type: ignore[arg-type]
                           timeline=Timeline(), checklist=None)  # type: ignore[arg-type]


def test_a_bad_ending_resets_the_software_device_once(tmp_path: Path) -> None:
    s = _session(tmp_path)
    first: object = s.device
    s.paired = True
    assert s.reset_if_unknown() is None and s.device is first  # nothing went wrong: same device
    s.reset_before_next = "'x' ended in fail"
    assert s.reset_if_unknown() == "'x' ended in fail"
    assert s.device is not first and s.made[0].stopped == 1 and not s.paired
    assert [e.name for e in s.timeline.events] == ["factory reset"]
    again = s.device
    assert s.reset_if_unknown() is None and s.device is again  # the flag is spent


def test_a_hardware_device_or_none_started_is_not_reset(tmp_path: Path) -> None:
    s = _session(tmp_path)
    s.reset_before_next = "'x' ended in error"
    assert s.reset_if_unknown() is None and not s.made  # no device launched yet: nothing to reset
    hw = _session(tmp_path, software=False)
    device = hw.device
    hw.reset_before_next = "'x' ended in error"
    assert hw.reset_if_unknown() is None and hw.device is device


def test_the_media_kit_stashes_originals_in_the_run_folder(tmp_path: Path) -> None:
    """Originals stashed before a corruption are the run's evidence: they live beside the manifest,
    not in a temp dir nobody removes (a full matrix left 1,778 of them in /tmp)."""
    from harness.bdd.session import make_media

    kit = make_media(3, tmp_path / "media-manifest.json")
    media = tmp_path / "media"
    media.mkdir()
    entry = kit.generate(["jpg"], media)[0]
    kit.corrupt(Path(entry["path"]), "truncate", keep=0.5)
    assert any((tmp_path / "media-stash").iterdir())

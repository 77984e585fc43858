"""`--dist loadgroup` keeps an `xdist_group` on one worker without rewriting node ids
(harness.bdd.sharding hands the groups to harness.bdd.group_scheduling.GroupScheduling).

Real pytest-xdist workers in a nested pytest run; the control run, with our sharding hooks
blocked, shows that xdist 3.8 under pytest 9.2 spreads the same group (pytest-xdist#1386).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.bdd.sharding import read_groups, write_groups, xdist_group_of

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[3]

MODULE = textwrap.dedent('''
    import os
    import pytest

    def _note(kind, i):
        with open(f"{kind}-workers.txt", "a", encoding="utf-8") as fh:
            fh.write(f"{i} {os.environ.get('PYTEST_XDIST_WORKER', 'serial')}\\n")

    @pytest.mark.xdist_group("one-at-a-time")
    @pytest.mark.parametrize("i", range(6))
    def test_grouped(i, request):
        assert "@" not in request.node.nodeid
        _note("grouped", i)

    @pytest.mark.parametrize("i", range(6))
    def test_free(i):
        _note("free", i)
''')


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


def _workers(path: Path) -> dict[int, str]:
    rows = [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
    return {int(i): worker for i, worker in rows}


def _run(pytester: pytest.Pytester, *extra: str) -> tuple[dict[int, str], dict[int, str]]:
    pytester.makepyfile(test_groups=MODULE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup", *extra)
    result.assert_outcomes(passed=12)
    return _workers(pytester.path / "grouped-workers.txt"), _workers(pytester.path / "free-workers.txt")


def test_a_group_runs_on_one_worker_and_keeps_its_node_ids(pytester: pytest.Pytester) -> None:
    grouped, free = _run(pytester)
    assert sorted(grouped) == list(range(6)) and len(set(grouped.values())) == 1, grouped
    assert set(free) == set(range(6))
    assert not list(pytester.path.glob("c2c-xdist-groups-*"))  # the handover folder is not in the run's cwd


def test_without_the_handover_xdist_spreads_the_group(pytester: pytest.Pytester) -> None:
    """The control: if this fails, pytest-xdist groups by itself again and harness.bdd.sharding's
    handover may go (keep the marks)."""
    grouped, _ = _run(pytester, "-p", "no:harness.bdd.sharding")
    assert len(set(grouped.values())) == 2, grouped


def _item(request: pytest.FixtureRequest, name: str, *groups: pytest.MarkDecorator) -> pytest.Item:
    """A real test item beside this one, with these marks."""
    item = pytest.Function.from_parent(request.node.parent, name=name, callobj=lambda: None)
    for mark in groups:
        item.add_marker(mark)
    return item


def test_the_handover_file_carries_each_grouped_node_id(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    grouped = _item(request, "test_two_groups", pytest.mark.xdist_group("b"), pytest.mark.xdist_group(name="a"))
    free = _item(request, "test_no_group")
    assert [xdist_group_of(i) for i in (grouped, free)] == ["a_b", None]  # xdist's own naming of several marks
    write_groups(tmp_path, "gw0", [grouped, free])
    write_groups(tmp_path, "gw1", [grouped, free])
    assert read_groups(tmp_path) == {grouped.nodeid: "a_b"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gw0.json", "gw1.json"]  # no partial file left

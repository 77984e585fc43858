"""Sharded runs (pytest-xdist): the scenarios that need a machine-wide resource run one after
another on one worker; every other scenario spreads freely.

A part of the `c2c_bench` plugin (`harness.bdd.plugin` loads it through `pytest_plugins`),
inert unless pytest-xdist runs with `--dist loadgroup` (what `c2c-certify run --workers N`
passes, harness.certify.shards.xdist_args).

`harness.certify.shards.exclusive_group` names a scenario's group and the scenario gets
pytest-xdist's own `xdist_group` mark. xdist 3.8 hands a mark to its scheduler by appending
`@group` to the test's node id, which pytest 9.2 ignores (node ids are structured now:
pytest-dev/pytest-xdist#1386), so the marks alone would spread a group over the workers. The
run therefore hands the groups over itself and never rewrites a node id: each worker writes
{node id: group} of the tests it collected into a folder the controller named (xdist's
`workerinput`), before xdist reports that collection; the controller's scheduler
(`harness.bdd.group_scheduling.GroupScheduling`, xdist's loadgroup scheduling) reads them
when it schedules. Every worker collects the same tests, so any worker's file will do.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from harness.bdd.run_record import worker_id
from harness.bdd.scenario_ids import checklist_ids, step_texts

if TYPE_CHECKING:
    from harness.bdd.group_scheduling import GroupScheduling

GROUPS_FOLDER = "c2c_xdist_groups"  # workerinput key: the folder the workers write their groups to
_FOLDER = pytest.StashKey[Path]()


class WorkerNode(Protocol):
    """What the controller's hooks use of an xdist worker (xdist.workermanage.WorkerController)."""

    config: pytest.Config
    workerinput: dict[str, Any]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Scenarios that need a machine-wide resource (harness.certify.shards) get one `xdist_group`
    mark a resource, before anything reads the marks."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    from harness.certify.shards import exclusive_group

    scenarios = [item for item in items if checklist_ids(item)]
    power = _power_driver(config) if scenarios else ""  # a run without scenarios reads no profile
    network = config.getoption("--c2c-network", default=None)
    for item in scenarios:
        group = exclusive_group(step_texts(item), power_driver=power, network_profile=network)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


def _power_driver(config: pytest.Config) -> str:
    from harness.device.profile import load_profile
    from harness.errors import ConfigError

    try:
        return load_profile(config.getoption("--c2c-device")).power.driver
    except ConfigError:
        return ""


def xdist_group_of(item: pytest.Item) -> str | None:
    """The item's xdist group as xdist names it (its `xdist_group` marks, sorted, joined by `_`)."""
    names = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
    return "_".join(sorted(names)) or None


def write_groups(folder: Path, worker: str, items: list[pytest.Item]) -> None:
    """{node id: group} of the grouped items, written whole (a reader never sees half a file)."""
    groups = {item.nodeid: group for item in items if (group := xdist_group_of(item))}
    part = folder / f".{worker}.json.part"
    part.write_text(json.dumps(groups), encoding="utf-8")
    os.replace(part, folder / f"{worker}.json")


def read_groups(folder: Path) -> dict[str, str]:
    """Every worker's {node id: group}, merged ({} when no worker wrote any)."""
    groups: dict[str, str] = {}
    for path in sorted(folder.glob("*.json")):
        groups.update(json.loads(path.read_text(encoding="utf-8")))
    return groups


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """On a worker of a loadgroup run: hand the groups over before xdist reports the collection
    (its own hook of the same name, which sends the node ids, runs after this one)."""
    config = session.config
    if not hasattr(config, "workerinput"):
        return
    folder = config.workerinput.get(GROUPS_FOLDER)
    if folder:
        write_groups(Path(folder), worker_id(config), session.items)


def _uses_groups(config: pytest.Config) -> bool:
    return bool(config.pluginmanager.hasplugin("xdist") and config.getoption("dist", default="no") == "loadgroup")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: WorkerNode) -> None:
    """On the controller: tell each worker where to write its groups."""
    config = node.config
    if not _uses_groups(config):
        return
    if _FOLDER not in config.stash:
        config.stash[_FOLDER] = Path(tempfile.mkdtemp(prefix="c2c-xdist-groups-"))
    node.workerinput[GROUPS_FOLDER] = str(config.stash[_FOLDER])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> GroupScheduling | None:
    """On the controller of a loadgroup run: xdist's loadgroup scheduling, fed the handed-over groups."""
    if not _uses_groups(config) or _FOLDER not in config.stash:
        return None
    from harness.bdd.group_scheduling import GroupScheduling

    return GroupScheduling(config, log, groups=lambda: read_groups(config.stash[_FOLDER]))


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_FOLDER, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)

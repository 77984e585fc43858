"""The machine-readable integrator checklist (`checklist.toml`), loaded and validated.

Every certification verdict is keyed by a checklist item ID (``C2C-UPL-07``). The TOML
carries its own ID list so a clone can check itself without the reference documents:
every item must be listed, every listed ID must be an item, and (tested in
``tests/test_features.py``) every item must have a scenario tagged with its ID.

    checklist = load_checklist()
    item = checklist["C2C-CTL-01"]
    item.measurements[0].check(12_000, part_size=8_388_608)  # -> True
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.config_files import read_toml
from harness.errors import ConfigError
from harness.items.applies import ALL, Expr, ProfileCodes, parse_applies
from harness.items.manual import Question, parse_question
from harness.items.verdicts import PRECEDENCE

DEFAULT_CHECKLIST = Path(__file__).resolve().parents[1] / "certify" / "checklist.toml"
"""The checklist ships beside the certification it drives (harness/certify/checklist.toml)."""
ITEM_ID = re.compile(r"^C2C-[A-Z]+-\d{2}$")
HOW_VERIFIED = frozenset({"oracle", "status", "operator", "declared"})
VERDICTS = PRECEDENCE
# Symbolic limits resolved per scenario (the part size depends on the file under test; the
# deadline, the files expected and the clock jumps are what the scenario's own steps say).
SYMBOLIC_LIMITS = frozenset({"part_size", "deadline_s", "expected_files", "paused_files", "clock_jumps"})


@dataclass(frozen=True)
class ScenarioRef:
    """A scenario that exercises an item: the feature file name and the scenario name."""

    feature: str
    name: str


@dataclass(frozen=True)
class Measurement:
    """A named value with a unit and inclusive limits, as OpenHTF measures it."""

    name: str
    unit: str
    low: float | str | None = None
    high: float | str | None = None
    doc: str = ""

    def resolve(self, limit: float | str | None, context: Mapping[str, float]) -> float | None:
        """Turn a symbolic limit ("part_size") into a number from the scenario context."""
        if limit is None or isinstance(limit, int | float):
            return limit
        if limit not in context:
            raise ConfigError(f"measurement {self.name!r}: limit {limit!r} needs {limit!r} from the scenario")
        return float(context[limit])

    def check(self, value: float, **context: float) -> bool:
        """True when `value` is within the limits (inclusive)."""
        low = self.resolve(self.low, context)
        high = self.resolve(self.high, context)
        if low is not None and value < low:
            return False
        return not (high is not None and value > high)

    def describe(self) -> str:
        """Human limit text, e.g. ">= 50 Mbit/s" or "<= part_size bytes"."""
        if self.low is not None and self.high is not None:
            if self.low == self.high:
                return f"== {self.low} {self.unit}"
            return f"{self.low}..{self.high} {self.unit}"
        if self.low is not None:
            return f">= {self.low} {self.unit}"
        if self.high is not None:
            return f"<= {self.high} {self.unit}"
        return f"recorded ({self.unit})"


@dataclass(frozen=True)
class Item:
    """One checklist requirement."""

    id: str
    title: str
    section: str
    how_verified: tuple[str, ...]
    stimulus: str
    optional: bool
    scenarios: tuple[ScenarioRef, ...]
    measurements: tuple[Measurement, ...] = ()
    applies: Expr = ALL  # which devices the item is about, decided before anything runs
    question: Question | None = None  # what an operator is asked when a person verifies it (harness/items/manual.py)

    def applies_to(self, kind: str, capabilities: Iterable[str] | None = None) -> bool:
        """Whether the item applies to a device of this kind with these capabilities
        (None: capabilities unknown, so only the kind can exclude it)."""
        return self.applies.evaluate(codes(kind, capabilities))

    @property
    def automatable(self) -> bool:
        """True when the bench can decide it without a person (oracle or status)."""
        return bool({"oracle", "status"} & set(self.how_verified))

    def measurement(self, name: str) -> Measurement:
        for m in self.measurements:
            if m.name == name:
                return m
        raise KeyError(f"{self.id} has no measurement {name!r}")


@dataclass(frozen=True)
class Checklist:
    """All items, in document order."""

    items: tuple[Item, ...]
    not_run_verdict: str = "error"
    precedence: tuple[str, ...] = VERDICTS
    path: Path | None = field(default=None, compare=False)
    # scenarios the bench can only exercise on some devices (a tethered camera, proxies):
    # a scenario whose expression is false is skipped as not applicable before it starts
    scenario_applies: Mapping[str, Expr] = field(default_factory=dict)

    def __getitem__(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def __contains__(self, item_id: object) -> bool:
        return any(item.id == item_id for item in self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self.items]

    def scenario_not_applicable(self, scenario: str, item_ids: Iterable[str], device: ProfileCodes) -> str | None:
        """Why a scenario does not apply to the device, decided before it runs (None: it applies).

        It does not apply when its own `[scenario_applies]` expression is false (the bench cannot
        exercise it on this device), or when none of the items it is tagged with applies.
        """
        expr = self.scenario_applies.get(scenario)
        if expr is not None and not expr.evaluate(device):
            return f"the scenario applies when {expr}; {device.describe()}"
        items = [self[i] for i in item_ids if i in self]
        if items and not any(i.applies.evaluate(device) for i in items):
            return "; ".join(f"{i.id} applies when {i.applies}" for i in items) + f"; {device.describe()}"
        return None


def _require(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in table:
        raise ConfigError(f"{where}: missing field {key!r}")
    value = table[key]
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: field {key!r} must be {_type_name(kind)}, got {type(value).__name__}")
    return value


def _type_name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__


def _measurement(raw: Any, where: str) -> Measurement:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    name = _require(raw, "name", str, where)
    unit = _require(raw, "unit", str, where)
    limits: dict[str, float | str | None] = {}
    for key in ("low", "high"):
        value = raw.get(key)
        if isinstance(value, bool) or not (value is None or isinstance(value, int | float | str)):
            raise ConfigError(f"{where}: field {key!r} must be a number or a symbolic limit")
        if isinstance(value, str) and value not in SYMBOLIC_LIMITS:
            raise ConfigError(f"{where}: field {key!r} = {value!r} is not a known symbolic limit {sorted(SYMBOLIC_LIMITS)}")
        limits[key] = value
    unknown = set(raw) - {"name", "unit", "low", "high", "doc"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    return Measurement(name=name, unit=unit, low=limits["low"], high=limits["high"], doc=str(raw.get("doc", "")))


def _item(raw: Any, index: int) -> Item:
    where = f"item[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    item_id = _require(raw, "id", str, where)
    where = f"item {item_id}"
    if not ITEM_ID.match(item_id):
        raise ConfigError(f"{where}: field 'id' must look like C2C-ABC-01")
    applies = parse_applies(_require(raw, "applies", str, where), f"{where} field 'applies'")
    optional = _require(raw, "optional", bool, where) if "optional" in raw else False
    if applies.capabilities and not optional:
        raise ConfigError(f"{where}: field 'applies' = {str(applies)!r} reads capabilities "
                          f"{sorted(applies.capabilities)}, but the item is required: a profile that leaves a "
                          "capability out must not drop a required item (only the kind may exclude it)")
    how = tuple(_require(raw, "how_verified", list, where))
    if not how or set(how) - HOW_VERIFIED:
        raise ConfigError(f"{where}: field 'how_verified' must be a non-empty subset of {sorted(HOW_VERIFIED)}, got {list(how)}")
    scenarios_raw = _require(raw, "scenarios", list, where)
    scenarios: list[ScenarioRef] = []
    for n, s in enumerate(scenarios_raw):
        if not isinstance(s, dict) or not isinstance(s.get("feature"), str) or not isinstance(s.get("name"), str):
            raise ConfigError(f"{where}: field 'scenarios[{n}]' needs string 'feature' and 'name'")
        scenarios.append(ScenarioRef(feature=s["feature"], name=s["name"]))
    if not scenarios:
        raise ConfigError(f"{where}: field 'scenarios' is empty; every item needs at least one scenario")
    measurements = tuple(
        _measurement(m, f"{where} measurement[{n}]") for n, m in enumerate(raw.get("measurements", []))
    )
    question = None
    if "question" in raw:
        if "operator" not in how:
            raise ConfigError(f"{where}: field 'question' needs 'operator' in field 'how_verified'")
        question = parse_question(raw["question"], f"{where} field 'question'")
    unknown = set(raw) - {"id", "title", "section", "applies", "how_verified", "stimulus", "optional", "scenarios",
                          "measurements", "question"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    return Item(
        id=item_id,
        title=_require(raw, "title", str, where),
        section=_require(raw, "section", str, where),
        how_verified=how,
        stimulus=str(raw.get("stimulus", "")),
        optional=optional,
        scenarios=tuple(scenarios),
        measurements=measurements,
        applies=applies,
        question=question,
    )


def codes(kind: str, capabilities: Iterable[str] | None = None) -> ProfileCodes:
    """A device's codes as the applicability expressions read them."""
    return ProfileCodes(kind=kind, capabilities=None if capabilities is None else frozenset(capabilities))


def _scenario_applies(raw: Any, items: list[Item]) -> dict[str, Expr]:
    """`[scenario_applies]`: scenario name -> expression, for scenarios only some devices can run."""
    if not isinstance(raw, dict):
        raise ConfigError("checklist: [scenario_applies] must be a table of scenario name = expression")
    listed = {ref.name for item in items for ref in item.scenarios}
    out: dict[str, Expr] = {}
    for name, text in raw.items():
        where = f"scenario_applies {name!r}"
        if name not in listed:
            raise ConfigError(f"{where}: no item lists a scenario of that name")
        out[name] = parse_applies(text, where)
    return out


def _with_shared_measurements(items: list[Item], shared: Any) -> list[Item]:
    """Merge top-level `[[measurement]]` tables (one definition, `items = [...]`) into each listed
    item, so a measurement many items share (the delivery ledger's counts) is written once."""
    if not isinstance(shared, list):
        raise ConfigError("checklist: field 'measurement' must be an array of tables ([[measurement]])")
    by_id = {item.id: item for item in items}
    for n, raw in enumerate(shared):
        where = f"measurement[{n}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: must be a table")
        where = f"measurement {raw.get('name', n)!r}"
        targets = _require(raw, "items", list, where)
        if not targets or not all(isinstance(t, str) for t in targets):
            raise ConfigError(f"{where}: field 'items' must be a non-empty list of item IDs")
        unknown = [t for t in targets if t not in by_id]
        if unknown:
            raise ConfigError(f"{where}: field 'items' names {unknown}, not items of this checklist")
        m = _measurement({k: v for k, v in raw.items() if k != "items"}, where)
        for t in targets:
            if any(old.name == m.name for old in by_id[t].measurements):
                raise ConfigError(f"{where}: field 'items': {t} already has a measurement {m.name!r}")
            by_id[t] = replace(by_id[t], measurements=(*by_id[t].measurements, m))
    return [by_id[item.id] for item in items]


def parse_checklist(data: Mapping[str, Any], path: Path | None = None) -> Checklist:
    """Validate a decoded checklist document; raise ConfigError naming the bad field."""
    if data.get("schema") != "c2c-checklist/1":
        raise ConfigError(f"checklist: field 'schema' must be 'c2c-checklist/1', got {data.get('schema')!r}")
    ids = _require(data, "ids", list, "checklist")
    raw_items = _require(data, "item", list, "checklist")
    items = _with_shared_measurements([_item(raw, n) for n, raw in enumerate(raw_items)], data.get("measurement", []))
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ConfigError(f"item {item.id}: duplicate id")
        seen.add(item.id)
    if len(set(ids)) != len(ids):
        raise ConfigError("checklist: field 'ids' lists an ID twice")
    missing = [i for i in ids if i not in seen]
    extra = [i for i in seen if i not in ids]
    if missing:
        raise ConfigError(f"checklist: field 'ids' lists {missing} with no [[item]]")
    if extra:
        raise ConfigError(f"checklist: [[item]] {sorted(extra)} not listed in field 'ids'")
    rules = data.get("verdict_rules", {})
    precedence = tuple(rules.get("precedence", VERDICTS))
    if set(precedence) != set(VERDICTS):
        raise ConfigError(f"verdict_rules: field 'precedence' must order exactly {list(VERDICTS)}")
    not_run = rules.get("not_run", "error")
    if not_run not in VERDICTS:
        raise ConfigError(f"verdict_rules: field 'not_run' must be one of {list(VERDICTS)}")
    return Checklist(items=tuple(items), not_run_verdict=not_run, precedence=precedence, path=path,
                     scenario_applies=_scenario_applies(data.get("scenario_applies", {}), items))


def load_checklist(path: Path | str | None = None) -> Checklist:
    """Load and validate the checklist TOML (the packaged one by default).

    Read once per file version and shared (a Checklist is frozen): a bench worker loaded it at
    every scenario's setup and every profile check, ~5 % of its CPU. An edited file (another
    inode, size or mtime) is read again, and a broken one still raises each time.
    """
    p = Path(path) if path is not None else DEFAULT_CHECKLIST
    try:
        st = p.stat()
    except OSError:
        return parse_checklist(read_toml(p, "checklist"), path=p)  # read_toml names the problem
    return _checklist_version(p, (st.st_ino, st.st_size, st.st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _checklist_version(path: Path, version: tuple[int, int, int]) -> Checklist:
    del version  # part of the cache key only
    return parse_checklist(read_toml(path, "checklist"), path=path)

"""docs/contract.md: every contract point of c2c-api.md §2–§6 names an existing test that pins it.

The table is parsed, not trusted: a row without a test, a file that does not exist or a test
function that is not defined in it fails here, so the table cannot drift from the suite.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TABLE = REPO / "docs" / "contract.md"
TAGS = {"DOC", "SPEC", "SDK", "OBS", "INF"}
# every numbered part of c2c-api.md §2–§6, each needing at least one row
SECTIONS = ("§2.1", "§2.2", "§2.3", "§2.4", "§3.1", "§3.2", "§3.3", "§3.4", "§3.5", "§3.6", "§3.7",
            "§3.8", "§3.9", "§3.10", "§3.11", "§3.12", "§3.13", "§3.14", "§3.15", "§3.16", "§4",
            "§5.1", "§5.2", "§5.3", "§5.4", "§5.5", "§5.6", "§5.7", "§5.8", "§5.9", "§5.10", "§6")
NODEID = re.compile(r"`([\w/.]+\.py)::(\w+)`")


@dataclass(frozen=True)
class Row:
    """One contract point: where in c2c-api.md, what, how firm, and the tests that pin it."""

    line: int
    section: str
    endpoint: str
    case: str
    tags: tuple[str, ...]
    tests: tuple[tuple[str, str], ...]


def rows() -> list[Row]:
    out = []
    for n, text in enumerate(TABLE.read_text(encoding="utf-8").splitlines(), 1):
        cells = [c.strip() for c in text.strip().strip("|").split("|")]
        if not text.startswith("|") or len(cells) != 5 or not cells[0].startswith("§"):
            continue
        out.append(Row(n, cells[0], cells[1], cells[2], tuple(cells[3].split("/")),
                       tuple(NODEID.findall(cells[4]))))
    return out


@cache
def functions(path: str) -> frozenset[str]:
    tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
    return frozenset(node.name for node in ast.walk(tree)
                     if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))


def test_the_table_covers_every_section_of_2_to_6() -> None:
    found = {r.section for r in rows()}
    missing = [section for section in SECTIONS if section not in found]
    assert not missing, f"no row for {missing}"
    assert found <= set(SECTIONS), f"rows outside §2–§6: {found - set(SECTIONS)}"


@pytest.mark.parametrize("row", rows(), ids=lambda r: f"line{r.line}")
def test_every_row_has_a_tag_and_an_existing_test(row: Row) -> None:
    assert row.tags and set(row.tags) <= TAGS, f"line {row.line}: tag {row.tags}"
    assert row.tests, f"line {row.line} ({row.section} {row.case}) names no test"
    for path, name in row.tests:
        assert path.startswith("tests/") and (REPO / path).is_file(), f"line {row.line}: no file {path}"
        assert name.startswith("test_") and name in functions(path), f"line {row.line}: no {path}::{name}"

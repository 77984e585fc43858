"""The step catalog for feature authors: every step phrase with its docstring.

    for step in step_catalog():
        print(step.keyword, step.pattern, step.doc)
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from pytest_bdd.steps import step_function_context_registry

from harness.bdd.steps import STEP_MODULES, step_modules


@dataclass(frozen=True)
class StepInfo:
    keyword: str  # given | when | then
    pattern: str  # the phrase, with {placeholders} or a regex
    doc: str
    module: str
    function: str

    def matches(self, text: str) -> bool:
        return bool(self._parser.is_matching(text))  # type: ignore[attr-defined]


def step_catalog() -> list[StepInfo]:
    """Every step of the library, sorted by keyword then phrase."""
    step_modules()
    out: list[StepInfo] = []
    for context in list(step_function_context_registry.values()):
        module = context.step_func.__module__
        if module not in STEP_MODULES:
            continue
        info = StepInfo(
            keyword=context.type or "*", pattern=str(context.parser.name),
            doc=inspect.getdoc(context.step_func) or "", module=module.rsplit(".", 1)[-1],
            function=context.step_func.__name__,
        )
        object.__setattr__(info, "_parser", context.parser)
        out.append(info)
    order = {"given": 0, "when": 1, "then": 2}
    return sorted(out, key=lambda s: (order.get(s.keyword, 3), s.pattern))


def find_step(keyword: str, text: str, catalog: list[StepInfo] | None = None) -> list[StepInfo]:
    """The steps whose phrase matches `text` for this keyword."""
    return [s for s in (catalog or step_catalog()) if s.keyword == keyword and s.matches(text)]


def render_catalog(catalog: list[StepInfo] | None = None) -> str:
    """Plain-text catalog (what `c2c-certify steps` prints)."""
    lines: list[str] = []
    for s in catalog or step_catalog():
        lines.append(f"{s.keyword.capitalize()} {s.pattern}")
        lines.append(f"    {s.doc.splitlines()[0] if s.doc else '(undocumented)'}  [{s.module}]")
    return "\n".join(lines)


if __name__ == "__main__":  # `python -m harness.bdd.catalog`: how `c2c-certify steps` reaches it
    print(render_catalog())

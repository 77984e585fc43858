"""Applicability as data: a tiny expression over a profile's codes (kind, capabilities).

Bluetooth's TCMT gives each test case an AND/OR/NOT expression over the implementer's ICS
rows, and the selection is decided from it before anything runs. Ours is the same idea over
the two codes a device profile declares:

    all                                  every device
    kind in [camera, encoder]            the device's kind is one of these
    kind == app
    has(parallel)                        the profile declares this capability
    not X,  X and Y,  X or Y,  ( X )     the usual precedence: not > and > or

It is parsed here (no eval): a typo is a ConfigError naming the expression, and every
capability name must be one the bench knows (`CAPABILITIES`; a misspelt one would silently
drop an item).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from harness.errors import ConfigError

DEVICE_KINDS = frozenset({"camera", "encoder", "audio", "app"})
# What each capability code tells the bench (profiles declare these; anything else is a typo).
CAPABILITIES = {
    "status": "serves a status the bench can read ([status] driver)",
    "local-api": "takes user actions through a control API ([control] driver)",
    "url-pairing": "shows verification_uri_complete (link or QR)",
    "parallel": "uploads parts of a file in parallel",
    "realtime": "uploads a growing file while it is recorded",
    "priority": "lets the user prioritise files or file types",
    "manual-mode": "has a manual upload mode (upload a selection)",
    "cancel": "lets the user cancel uploads",
    "tether": "tethers a camera over USB/PTP (libgphoto2)",
    "proxies": "makes proxies of the hero files it records",
}
_TOKEN = re.compile(r"\s*(?:(?P<punct>==|[()\[\],])|(?P<word>[a-z][a-z0-9-]*))")


@dataclass(frozen=True)
class ProfileCodes:
    """What an expression is evaluated against. `capabilities` None = not known (an old
    record): `has()` is then taken as true, so missing data never drops an item."""

    kind: str
    capabilities: frozenset[str] | None = None

    def describe(self) -> str:
        caps = "unknown" if self.capabilities is None else ", ".join(sorted(self.capabilities)) or "none"
        return f"device kind {self.kind or 'unknown'}, capabilities [{caps}]"


@dataclass(frozen=True)
class Expr:
    """A parsed applicability expression (immutable; str() gives its canonical text)."""

    op: str  # all | kind | has | not | and | or
    names: tuple[str, ...] = ()
    args: tuple[Expr, ...] = ()

    def evaluate(self, codes: ProfileCodes) -> bool:
        if self.op == "all":
            return True
        if self.op == "kind":
            return not codes.kind or codes.kind in self.names  # unknown kind: never excluded on it
        if self.op == "has":
            return codes.capabilities is None or self.names[0] in codes.capabilities
        if self.op == "not":
            return not self.args[0].evaluate(codes)
        if self.op == "and":
            return all(a.evaluate(codes) for a in self.args)
        return any(a.evaluate(codes) for a in self.args)

    @property
    def capabilities(self) -> frozenset[str]:
        """Every capability the expression reads."""
        own = frozenset(self.names) if self.op == "has" else frozenset()
        return own.union(*(a.capabilities for a in self.args))

    def __str__(self) -> str:
        if self.op == "all":
            return "all"
        if self.op == "kind":
            return f"kind == {self.names[0]}" if len(self.names) == 1 else f"kind in [{', '.join(self.names)}]"
        if self.op == "has":
            return f"has({self.names[0]})"
        if self.op == "not":
            inner = str(self.args[0])
            return f"not ({inner})" if self.args[0].op in ("and", "or") else f"not {inner}"
        joined = f" {self.op} ".join(f"({a})" if a.op in ("and", "or") and a.op != self.op else str(a)
                                     for a in self.args)
        return joined


ALL = Expr("all")


def _tokens(text: str, where: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise ConfigError(f"{where}: cannot read {text[pos:].strip()!r} in applies = {text!r}")
        out.append(m.group("punct") or m.group("word"))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent over the tokens: or > and > not > atom."""

    def __init__(self, text: str, where: str) -> None:
        self.text, self.where = text, where
        self.toks = _tokens(text, where)
        self.i = 0

    def fail(self, what: str) -> ConfigError:
        at = self.toks[self.i] if self.i < len(self.toks) else "the end"
        return ConfigError(f"{self.where}: applies = {self.text!r}: {what}, found {at!r}")

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise self.fail(f"expected {expected!r}" if expected else "expected more")
        self.i += 1
        return tok

    def parse(self) -> Expr:
        if not self.toks:
            raise ConfigError(f"{self.where}: applies is empty; write 'all' for every device")
        expr = self.or_()
        if self.peek() is not None:
            raise self.fail("expected 'and', 'or' or the end")
        return expr

    def or_(self) -> Expr:
        args = [self.and_()]
        while self.peek() == "or":
            self.take()
            args.append(self.and_())
        return args[0] if len(args) == 1 else Expr("or", args=tuple(args))

    def and_(self) -> Expr:
        args = [self.not_()]
        while self.peek() == "and":
            self.take()
            args.append(self.not_())
        return args[0] if len(args) == 1 else Expr("and", args=tuple(args))

    def not_(self) -> Expr:
        if self.peek() == "not":
            self.take()
            return Expr("not", args=(self.not_(),))
        return self.atom()

    def name(self, known: Iterable[str], what: str) -> str:
        tok = self.take()
        if tok not in known:
            self.i -= 1
            raise self.fail(f"expected a {what} ({', '.join(sorted(known))})")
        return tok

    def atom(self) -> Expr:
        tok = self.peek()
        if tok == "(":
            self.take()
            inner = self.or_()
            self.take(")")
            return inner
        if tok == "all":
            self.take()
            return ALL
        if tok == "has":
            self.take()
            self.take("(")
            cap = self.name(CAPABILITIES, "capability")
            self.take(")")
            return Expr("has", names=(cap,))
        if tok == "kind":
            self.take()
            if self.peek() == "==":
                self.take()
                return Expr("kind", names=(self.name(DEVICE_KINDS, "device kind"),))
            self.take("in")
            self.take("[")
            kinds = [self.name(DEVICE_KINDS, "device kind")]
            while self.peek() == ",":
                self.take()
                kinds.append(self.name(DEVICE_KINDS, "device kind"))
            self.take("]")
            return Expr("kind", names=tuple(dict.fromkeys(kinds)))
        raise self.fail("expected 'all', 'kind', 'has(...)', 'not' or '('")


def parse_applies(text: str, where: str = "applies") -> Expr:
    """Parse an applicability expression; ConfigError naming `where` when it is not one."""
    if not isinstance(text, str):
        raise ConfigError(f"{where}: field 'applies' must be a string expression")
    return _Parser(text, where).parse()

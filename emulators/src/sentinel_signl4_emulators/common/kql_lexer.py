"""The KQL tokenizer: names, operators (including the hyphenated ones), string/number/timespan literals."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sentinel_signl4_emulators.common.kql_types import syntax_error

__all__ = ["Token", "tokenize"]

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<timespan>\d+(?:\.\d+)?(?:ms|microsecond|tick|d|h|m|s)\b)
  | (?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?)
  | (?P<string>@?"(?:[^"\\\n]|\\.)*"|@?'(?:[^'\\\n]|\\.)*')
  | (?P<name>\$?[A-Za-z_][A-Za-z0-9_]*(?:-[a-z]+)*)
  | (?P<op>==|!=|=~|!~|<=|>=|\.\.|!in~|!in\b|[|(),;=<>\[\].*+\-/!])
    """,
    re.VERBOSE,
)

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "microsecond": 1e-6, "tick": 1e-7}
_HYPHENATED = frozenset({"mv-expand", "project-away", "project-rename", "project-keep"})


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    value: Any = None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise syntax_error(f"Syntax error: unexpected character {text[pos]!r} at position {pos}")
        pos = match.end()
        kind = match.lastgroup
        raw = match.group()
        if kind == "ws":
            continue
        if kind == "name" and raw.lower() == "in" and text.startswith("~", pos):
            raw, pos, kind = "in~", pos + 1, "op"
        if kind == "name" and "-" in raw and raw.lower() not in _HYPHENATED:
            # "a-b" outside the hyphenated operators is a subtraction: re-tokenize from the first hyphen.
            head = raw.split("-", 1)[0]
            pos = match.start() + len(head)
            raw = head
        if kind == "timespan":
            number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(\D+)", raw).groups()  # type: ignore[union-attr]
            tokens.append(Token("literal", raw, timedelta(seconds=float(number) * _UNITS[unit])))
        elif kind == "number":
            tokens.append(Token("literal", raw, float(raw) if any(c in raw for c in ".e") else int(raw)))
        elif kind == "string":
            tokens.append(Token("literal", raw, _unquote(raw)))
        elif kind == "name":
            tokens.append(Token("name", raw))
        else:
            tokens.append(Token("op", raw))
    tokens.append(Token("end", ""))
    return tokens


def _unquote(raw: str) -> str:
    if raw.startswith("@"):
        return raw[2:-1]
    body = raw[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), body)

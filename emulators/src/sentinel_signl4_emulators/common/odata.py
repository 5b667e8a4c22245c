"""The OData ``$filter`` / ``$orderby`` subset ARM Sentinel (and Graph security) clients send.

Grammar (``and`` binds tighter than ``or``; operators and keywords are lower-case, as in OData)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | comparison
    comparison := PROPERTY ("eq"|"ne"|"gt"|"ge"|"lt"|"le") LITERAL
    LITERAL    := 'single-quoted string' ('' escapes a quote) | unquoted ISO-8601 datetime | integer

Each emulator declares which properties it filters on and their types; anything else, a literal of the wrong type
or a syntax error raises :class:`ODataError`, which the wire layer turns into its service's 400. The parser is a
faithful *subset*: real services accept more (functions, ``in``, ``null``); an emulator rejecting them tells a
developer the connector relies on something the tests do not cover.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

__all__ = [
    "And",
    "Comparison",
    "Expr",
    "FieldType",
    "Not",
    "ODataError",
    "Or",
    "OrderBy",
    "Value",
    "evaluate",
    "format_filter",
    "format_literal",
    "parse_filter",
    "parse_orderby",
]

Value = str | int | datetime


class ODataError(ValueError):
    """The expression is not valid (or not supported); the message says where and why."""


class FieldType(Enum):
    STRING = "string"
    DATETIME = "datetime"
    INT = "int"


OPERATORS = ("eq", "ne", "gt", "ge", "lt", "le")


@dataclass(frozen=True, slots=True)
class Comparison:
    field: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class And:
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Or:
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


Expr = Comparison | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderBy:
    field: str
    descending: bool = False


# --- tokenizer -----------------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<int>-?\d+(?![\w.:-]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            raise ODataError(f"Syntax error at position {pos} in '{text}'.")
        if match.lastgroup != "ws":
            tokens.append(_Token(match.lastgroup, match.group(), pos))
        pos = match.end()
    return tokens


# --- parser --------------------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, FieldType]) -> None:
        self.text = text
        self.fields = fields
        self.tokens = _tokenize(text)
        self.index = 0

    def parse(self) -> Expr:
        if not self.tokens:
            raise ODataError("The $filter expression is empty.")
        expr = self._or()
        if self.index != len(self.tokens):
            token = self.tokens[self.index]
            raise ODataError(f"Syntax error: unexpected '{token.text}' at position {token.pos} in '{self.text}'.")
        return expr

    def _peek_word(self, word: str) -> bool:
        return (
            self.index < len(self.tokens)
            and self.tokens[self.index].kind == "word"
            and self.tokens[self.index].text == word
        )

    def _next(self, expected: str) -> _Token:
        if self.index >= len(self.tokens):
            raise ODataError(f"Syntax error: expected {expected} at the end of '{self.text}'.")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _or(self) -> Expr:
        expr = self._and()
        while self._peek_word("or"):
            self.index += 1
            expr = Or(expr, self._and())
        return expr

    def _and(self) -> Expr:
        expr = self._unary()
        while self._peek_word("and"):
            self.index += 1
            expr = And(expr, self._unary())
        return expr

    def _unary(self) -> Expr:
        if self._peek_word("not"):
            self.index += 1
            return Not(self._unary())
        token = self._next("a comparison or '('")
        if token.kind == "lparen":
            expr = self._or()
            closing = self._next("')'")
            if closing.kind != "rparen":
                raise ODataError(f"Syntax error: expected ')' at position {closing.pos} in '{self.text}'.")
            return expr
        if token.kind != "word" or token.text in ("and", "or", *OPERATORS):
            raise ODataError(f"Syntax error: unexpected '{token.text}' at position {token.pos} in '{self.text}'.")
        return self._comparison(token)

    def _comparison(self, prop: _Token) -> Comparison:
        field_type = self.fields.get(prop.text)
        if field_type is None:
            supported = ", ".join(sorted(self.fields))
            raise ODataError(f"Filtering on property '{prop.text}' is not supported. Supported: {supported}.")
        op = self._next("a comparison operator")
        if op.kind != "word" or op.text not in OPERATORS:
            raise ODataError(f"Syntax error: expected eq, ne, gt, ge, lt or le at position {op.pos} in '{self.text}'.")
        literal = self._next("a literal")
        return Comparison(prop.text, op.text, _literal(literal, field_type, prop.text))


def _literal(token: _Token, field_type: FieldType, prop: str) -> Value:
    if field_type is FieldType.STRING and token.kind == "string":
        return token.text[1:-1].replace("''", "'")
    if field_type is FieldType.DATETIME and token.kind == "datetime":
        parsed = datetime.fromisoformat(token.text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if field_type is FieldType.INT and token.kind == "int":
        return int(token.text)
    raise ODataError(
        f"The literal {token.text} at position {token.pos} is not a valid {field_type.value} for property '{prop}'."
    )


def parse_filter(text: str, fields: Mapping[str, FieldType]) -> Expr:
    """Parse a ``$filter`` value against the declared ``fields`` (property path -> type)."""
    return _Parser(text, fields).parse()


def parse_orderby(text: str, fields: Mapping[str, FieldType]) -> OrderBy:
    """Parse ``$orderby`` — one property, optionally followed by ``asc`` or ``desc``."""
    parts = text.split()
    if not 1 <= len(parts) <= 2 or (len(parts) == 2 and parts[1] not in ("asc", "desc")):
        raise ODataError(f"Invalid $orderby '{text}': expected '<property> [asc|desc]'.")
    if parts[0] not in fields:
        supported = ", ".join(sorted(fields))
        raise ODataError(f"Ordering by property '{parts[0]}' is not supported. Supported: {supported}.")
    return OrderBy(parts[0], descending=len(parts) == 2 and parts[1] == "desc")


# --- evaluation and formatting -------------------------------------------------------------------------------------


def evaluate(expr: Expr, values: Mapping[str, object]) -> bool:
    """Evaluate against one record's property values; a missing (null) value only satisfies ``ne``."""
    if isinstance(expr, And):
        return evaluate(expr.left, values) and evaluate(expr.right, values)
    if isinstance(expr, Or):
        return evaluate(expr.left, values) or evaluate(expr.right, values)
    if isinstance(expr, Not):
        return not evaluate(expr.operand, values)
    actual = values.get(expr.field)
    if actual is None:
        return expr.op == "ne"
    if not isinstance(actual, type(expr.value)):
        raise TypeError(f"{expr.field}: cannot compare {type(actual).__name__} with {type(expr.value).__name__}")
    # Strings compare case-sensitively. Whether Sentinel does is unverified; strict is the safe side for clients.
    left, right = actual, expr.value
    match expr.op:
        case "eq":
            return left == right
        case "ne":
            return left != right
        case "gt":
            return left > right  # type: ignore[operator]
        case "ge":
            return left >= right  # type: ignore[operator]
        case "lt":
            return left < right  # type: ignore[operator]
        case _:
            return left <= right  # type: ignore[operator]


def format_literal(value: Value) -> str:
    """The OData literal for ``value`` (strings quoted, datetimes unquoted UTC ISO-8601)."""
    if isinstance(value, datetime):
        text = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return text
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def format_filter(expr: Expr) -> str:
    """Canonical text of ``expr``; ``parse_filter(format_filter(e)) == e``."""
    if isinstance(expr, Comparison):
        return f"{expr.field} {expr.op} {format_literal(expr.value)}"
    if isinstance(expr, Not):
        return f"not {_operand(expr.operand)}"
    word = "and" if isinstance(expr, And) else "or"
    return f"{_operand(expr.left)} {word} {_operand(expr.right)}"


def _operand(expr: Expr) -> str:
    return format_filter(expr) if isinstance(expr, Comparison) else f"({format_filter(expr)})"

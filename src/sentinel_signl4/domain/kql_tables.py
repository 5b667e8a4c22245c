"""Which Log Analytics tables a KQL query reads: what its table-level read actions must cover. Pure.

A table is read where a tabular expression starts: at the start of a statement or of a ``let`` value, on the right
of ``join`` and ``lookup``, in the list of ``union``, in a parenthesised subquery (``in (T | project x)``), inside
``toscalar(…)``/``materialize(…)``, and by name in ``table("T")``. Names bound by ``let`` are not tables.

Queries whose tables cannot be known from the text are refused with :class:`KqlTablesError`, because no least
privilege role can be derived for them: ``search``/``find`` over every table, wildcards (``union Security*``) and
cross-resource references (``workspace("…").T``, ``app(…)``, ``resource(…)``, ``database(…)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["KqlTablesError", "tables_read_by"]


class KqlTablesError(ValueError):
    """The tables a query reads cannot be derived from its text."""


_TOKEN = re.compile(
    r"""(?P<space>\s+|//[^\n]*)
      | (?P<string>```.*?```|[@hH]?"(?:[^"\\\n]|\\.)*"|[@hH]?'(?:[^'\\\n]|\\.)*')
      | (?P<bracketed>\[\s*(?:'[^']*'|"[^"]*")\s*\])
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*\*?[A-Za-z0-9_*]*|\*)
      | (?P<number>\d[\w.]*)
      | (?P<punct>==|!=|=~|<=|>=|.)""",
    re.VERBOSE | re.DOTALL,
)

_TABULAR_FUNCTIONS = {"toscalar", "materialize", "view"}
_CROSS_RESOURCE = {"workspace", "app", "resource", "database", "cluster", "adx"}
_SCANS_EVERY_TABLE = {"search", "find"}
# Tabular sources that read no table.
_NO_TABLE = {"print", "range", "datatable", "externaldata", "evaluate", "getschema"}
_OPERATOR_PARAMS = re.compile(r"^(kind|withsource|isfuzzy|hint\.[a-z]+|hint)$", re.IGNORECASE)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(kql: str) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN.finditer(kql):
        kind = match.lastgroup or "punct"
        if kind == "space":
            continue
        text = match.group(0)
        if kind == "bracketed":  # ['My Table']: a name that is not an identifier
            kind, text = "word", text.strip("[] ")[1:-1]
        tokens.append(_Token(kind, text))
    return tokens


class _Scan:
    def __init__(self, kql: str) -> None:
        self.tokens = _tokens(kql)
        self.tables: set[str] = set()
        self.lets: set[str] = set()

    def text(self, index: int) -> str:
        return self.tokens[index].text if 0 <= index < len(self.tokens) else ""

    def closing(self, index: int) -> int:
        """The index of the ``)`` matching the ``(`` at ``index`` (or the end)."""
        depth = 0
        for position in range(index, len(self.tokens)):
            text = self.text(position)
            if text == "(":
                depth += 1
            elif text == ")":
                depth -= 1
                if depth == 0:
                    return position
        return len(self.tokens)

    def pipes_inside(self, index: int) -> bool:
        """Whether the parentheses opened at ``index`` hold a pipe at their own level (a tabular subquery)."""
        depth = 0
        for position in range(index, len(self.tokens)):
            text = self.text(position)
            if text == "(":
                depth += 1
            elif text == ")":
                depth -= 1
                if depth == 0:
                    return False
            elif text == "|" and depth == 1:
                return True
        return False

    def skip_params(self, index: int) -> int:
        """Past ``kind=inner``-style operator parameters (``hint.strategy=shuffle``, ``isfuzzy=true``)."""
        while True:
            name = self.text(index)
            if self.text(index + 1) == "." and _OPERATOR_PARAMS.match(f"{name}.{self.text(index + 2)}"):
                name, index = f"{name}.{self.text(index + 2)}", index + 2
            if _OPERATOR_PARAMS.match(name) and self.text(index + 1) == "=":
                index += 3
                continue
            return index

    def source(self, index: int) -> None:
        """A tabular expression starts at ``index``: record the table it names, if any."""
        token = self.tokens[index] if index < len(self.tokens) else None
        if token is None:
            return
        if token.text == "(":
            self.source(index + 1)
            return
        if token.kind != "word":
            return
        name = token.text
        lowered = name.casefold()
        if "*" in name:
            raise KqlTablesError(f"the query reads tables by wildcard ({name}); name each table instead")
        if lowered in _SCANS_EVERY_TABLE:
            raise KqlTablesError(f"'{name}' reads every table; query the tables by name instead")
        if self.text(index + 1) == "(":
            if lowered == "table":
                argument = self.tokens[index + 2] if index + 2 < len(self.tokens) else None
                if argument is None or argument.kind != "string":
                    raise KqlTablesError("table() needs the table name as a string literal")
                self.tables.add(argument.text.lstrip("@hH").strip("'\""))
            elif lowered in _CROSS_RESOURCE:
                raise KqlTablesError(f"cross-resource queries ({name}(…)) need rights outside the workspace")
            elif lowered in _TABULAR_FUNCTIONS:
                self.source(index + 2)
            return
        if lowered in _NO_TABLE or name in self.lets or lowered == "union":
            return
        if self.text(index + 1) == "." and self.text(index + 2).casefold() == "database":
            raise KqlTablesError(f"cross-resource queries ({name}.database…) need rights outside the workspace")
        self.tables.add(name)

    def union_list(self, index: int) -> None:
        index = self.skip_params(index)
        while index < len(self.tokens):
            self.source(index)
            end = self.closing(index) + 1 if self.text(index) == "(" else index + 1
            if self.text(end) != ",":
                return
            index = end + 1

    def run(self) -> frozenset[str]:
        statement_start = True
        for index, token in enumerate(self.tokens):
            text, lowered = token.text, token.text.casefold()
            if statement_start:
                statement_start = False
                if lowered == "let" and self.text(index + 2) == "=":
                    self.lets.add(self.text(index + 1))
                    self.source(index + 3)
                elif lowered not in ("set", "declare", "alias", "pattern", "restrict"):
                    if lowered == "union":
                        self.union_list(index + 1)
                    else:
                        self.source(index)
            if text == ";":
                statement_start = True
            elif lowered in ("join", "lookup") and self.text(index - 1) == "|":
                self.source(self.skip_params(index + 1))
            elif lowered == "union" and self.text(index - 1) == "|":
                self.union_list(index + 1)
            elif lowered in _SCANS_EVERY_TABLE and self.text(index - 1) == "|":
                continue  # `| search "x"` searches the piped rows only
            elif lowered in _TABULAR_FUNCTIONS | {"table"} and self.text(index + 1) == "(":
                self.source(index)
            elif (text == "(" and self.text(index - 1).casefold() not in _TABULAR_FUNCTIONS | {"table"}
                  and self.pipes_inside(index)):
                self.source(index + 1)  # a subquery inside an expression: `where Id in (T | project Id)`
        return frozenset(self.tables)


def tables_read_by(kql: str) -> frozenset[str]:
    """The names of the tables ``kql`` reads (see the module docstring for what is understood and refused)."""
    return _Scan(kql).run()

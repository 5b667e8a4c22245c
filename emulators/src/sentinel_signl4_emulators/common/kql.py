"""A small Kusto (KQL) interpreter: the subset enrichment queries use, over in-memory tables.

Enough to run the connector's default query and the SecurityIncident join of reference microsoft-apis.md §2.7:

* ``let name = <scalar or dynamic([...])>;`` statements, ``//`` comments;
* a table name, then ``| where``, ``| project`` (with ``Name = expr``), ``| project-away``, ``| extend``,
  ``| summarize arg_max(col, *) | arg_min(col, *) | count() | dcount(col) … by col, …``,
  ``| mv-expand col [to typeof(T)]``, ``| join [kind=inner|innerunique|leftouter] (<query>) on $left.a == $right.b``
  (or ``on col``), ``| order by`` / ``| sort by``, ``| take`` / ``| limit``, ``| top N by col``, ``| distinct``,
  ``| count``;
* expressions: ``and or not()``, ``== != =~ !~ < <= > >=``, ``in`` / ``!in`` / ``in~``, ``has``, ``contains``,
  ``startswith``, ``endswith`` (and their ``!`` forms), ``between (a .. b)``, ``+ -``, string/number/bool/timespan
  literals, ``datetime(…)``, ``dynamic([...])``, ``ago()``, ``now()``, ``isempty/isnotempty/isnull/isnotnull``,
  ``tostring/toint/tolong/todouble/todatetime/tolower/toupper/strlen/parse_json/coalesce``, and ``col.prop`` /
  ``col["prop"]`` on dynamic values.

Anything else is a :class:`KqlError` with the service's error kinds: ``SyntaxError`` for what does not parse,
``SemanticError`` for unknown tables, columns and functions. Messages follow the wording the real service uses
where the reference quotes it ("Failed to resolve scalar expression named 'x'").

This module holds the parser/evaluator; the error and table types (``common.kql_types``), the tokenizer
(``common.kql_lexer``) and value semantics (``common.kql_values``) live in sibling modules.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sentinel_signl4_emulators.common.kql_lexer import Token, tokenize
from sentinel_signl4_emulators.common.kql_types import KqlError, Table, kql_type_of, semantic_error, syntax_error
from sentinel_signl4_emulators.common.kql_values import (
    WORD_OPS,
    arith,
    as_dynamic,
    column_key,
    column_types,
    compare,
    infer_type,
    kql_text,
    member_of,
    sort_key,
    to_datetime,
    to_float,
    to_int,
)

__all__ = ["KqlError", "Table", "execute", "kql_type_of"]


# -- expressions ----------------------------------------------------------------------------------------------------

Row = Mapping[str, Any]
Expr = Callable[[Row], Any]


@dataclass(slots=True)
class _Env:
    now: datetime
    tables: Mapping[str, Table]
    lets: dict[str, Any] = field(default_factory=dict)
    tabular_lets: dict[str, Table] = field(default_factory=dict)


class _Parser:
    def __init__(self, text: str, env: _Env) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.env = env

    # token helpers
    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.peek()
        self.pos += 1
        return tok

    def at(self, text: str) -> bool:
        tok = self.peek()
        return tok.kind in ("op", "name") and tok.text.lower() == text.lower()

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            found = self.peek().text or "end of query"
            raise syntax_error(f"Syntax error: expected '{text}' but found '{found}'")

    def name(self) -> str:
        tok = self.next()
        if tok.kind != "name":
            raise syntax_error(f"Syntax error: expected a name but found '{tok.text or 'end of query'}'")
        return tok.text

    # query := (let ...;)* tabular [;]
    def query(self) -> Table:
        while self.accept("let"):
            name = self.name()
            self.expect("=")
            if self.peek().kind == "name" and self._is_table(self.peek().text) and not self.at("dynamic"):
                self.env.tabular_lets[name] = self.tabular()
            else:
                expr = self.expr({})
                self.env.lets[name] = expr({})
            self.expect(";")
        table = self.tabular()
        self.accept(";")
        if self.peek().kind != "end":
            raise syntax_error(f"Syntax error: unexpected '{self.peek().text}'")
        return table

    def _is_table(self, name: str) -> bool:
        return name in self.env.tables or name in self.env.tabular_lets

    def tabular(self) -> Table:
        if self.accept("("):
            table = self.tabular()
            self.expect(")")
        else:
            source = self.name()
            if source in self.env.tabular_lets:
                original = self.env.tabular_lets[source]
            elif source in self.env.tables:
                original = self.env.tables[source]
            else:
                raise semantic_error(f"Failed to resolve table or column expression named '{source}'")
            table = Table(list(original.columns), [dict(row) for row in original.rows])
        while self.accept("|"):
            table = self.operator(table)
        return table

    def operator(self, table: Table) -> Table:
        word = self.name().lower()
        if word == "where":
            predicate = self.expr(column_types(table))
            return Table(table.columns, [row for row in table.rows if predicate(row) is True])
        if word in ("project", "extend"):
            return self._project(table, keep=word == "extend")
        if word in ("project-away",):
            names = self._name_list(table)
            return Table([c for c in table.columns if c[0] not in names],
                         [{k: v for k, v in row.items() if k not in names} for row in table.rows])
        if word in ("take", "limit"):
            return Table(table.columns, table.rows[: self._count()])
        if word in ("order", "sort"):
            self.expect("by")
            return Table(table.columns, self._sorted(table))
        if word == "top":
            count = self._count()
            self.expect("by")
            return Table(table.columns, self._sorted(table)[:count])
        if word == "summarize":
            return self._summarize(table)
        if word == "mv-expand":
            return self._mv_expand(table)
        if word == "join":
            return self._join(table)
        if word == "distinct":
            names = self._name_list(table)
            seen: dict[str, dict[str, Any]] = {}
            for row in table.rows:
                seen.setdefault(json.dumps([kql_text(row.get(n)) for n in names]), {n: row.get(n) for n in names})
            return Table([c for c in table.columns if c[0] in names], list(seen.values()))
        if word == "count":
            return Table([("Count", "long")], [{"Count": len(table.rows)}])
        raise syntax_error(f"Syntax error: unknown or unsupported operator '{word}'")

    def _count(self) -> int:
        tok = self.next()
        value = self.env.lets.get(tok.text) if tok.kind == "name" else tok.value
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise syntax_error(f"Syntax error: expected a row count but found '{tok.text}'")
        return value

    def _name_list(self, table: Table) -> list[str]:
        names = [self.name()]
        while self.accept(","):
            names.append(self.name())
        for name in names:
            table.type_of(name)
        return names

    def _project(self, table: Table, *, keep: bool) -> Table:
        types = column_types(table)
        outputs: list[tuple[str, Expr | None]] = []
        while True:
            if self.peek().kind == "name" and self.peek(1).text == "=" and self.peek(1).kind == "op":
                target = self.name()
                self.expect("=")
                outputs.append((target, self.expr(types)))
            else:
                tok = self.peek()
                if tok.kind == "name" and self.peek(1).kind in ("op", "end") and self.peek(1).text in (
                        ",", "|", ")", ";", ""):
                    self.pos += 1
                    table.type_of(tok.text)
                    outputs.append((tok.text, None))
                else:
                    outputs.append((f"Column{len(outputs) + 1}", self.expr(types)))
            if not self.accept(","):
                break
        rows: list[dict[str, Any]] = []
        for row in table.rows:
            new = dict(row) if keep else {}
            for target, expr in outputs:
                new[target] = row.get(target) if expr is None else expr(row)
            rows.append(new)
        columns = list(table.columns) if keep else []
        for target, expr in outputs:
            kind = table.type_of(target) if expr is None else infer_type(rows, target)
            columns = [c for c in columns if c[0] != target] + [(target, kind)] if keep else [*columns,
                                                                                              (target, kind)]
        return Table(columns, rows)

    def _sorted(self, table: Table) -> list[dict[str, Any]]:
        keys: list[tuple[str, bool]] = []
        while True:
            name = self.name()
            table.type_of(name)
            descending = True  # KQL's default order is descending
            if self.accept("asc"):
                descending = False
            else:
                self.accept("desc")
            keys.append((name, descending))
            if not self.accept(","):
                break
        rows = list(table.rows)
        for name, descending in reversed(keys):
            present = [r for r in rows if r.get(name) is not None]
            missing = [r for r in rows if r.get(name) is None]
            present.sort(key=column_key(name), reverse=descending)
            # Nulls go last in descending and first in ascending order, as in Kusto.
            rows = present + missing if descending else missing + present
        return rows

    def _summarize(self, table: Table) -> Table:
        aggregates: list[tuple[str, str, str | None]] = []  # (output name, function, column)
        while not self.at("by") and self.peek().kind != "end" and not self.at("|"):
            target = None
            if self.peek(1).text == "=" and self.peek(1).kind == "op":
                target = self.name()
                self.expect("=")
            function = self.name().lower()
            self.expect("(")
            column: str | None = None
            if function in ("arg_max", "arg_min"):
                column = self.name()
                table.type_of(column)
                self.expect(",")
                self.expect("*")
            elif function in ("dcount", "max", "min", "make_set"):
                column = self.name()
                table.type_of(column)
            elif function != "count":
                raise semantic_error(f"Unknown function: '{function}'")
            self.expect(")")
            default_name = "count_" if function == "count" else f"{function}_{column}"
            aggregates.append((target or default_name, function, column))
            if not self.accept(","):
                break
        by = self._name_list(table) if self.accept("by") else []
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in table.rows:
            groups.setdefault(json.dumps([kql_text(row.get(n)) for n in by]), []).append(row)
        columns = [(n, table.type_of(n)) for n in by]
        for target, function, column in aggregates:
            if function in ("arg_max", "arg_min"):
                # By columns first, then every other column of the input: Kusto's order for arg_max(col, *).
                columns += [c for c in table.columns if c[0] not in {n for n, _ in columns}]
            else:
                kind = {"count": "long", "dcount": "long", "make_set": "dynamic"}.get(function)
                columns.append((target, kind or table.type_of(column or "")))
        return Table(columns, [self._aggregate(table, members, by, aggregates) for members in groups.values()])

    @staticmethod
    def _aggregate(table: Table, members: list[dict[str, Any]], by: list[str],
                   aggregates: list[tuple[str, str, str | None]]) -> dict[str, Any]:
        out: dict[str, Any] = {n: members[0].get(n) for n in by}
        for target, function, column in aggregates:
            values = [m.get(column) for m in members if column and m.get(column) is not None]
            if function in ("arg_max", "arg_min"):
                assert column is not None
                candidates = [m for m in members if m.get(column) is not None] or members
                chosen = max if function == "arg_max" else min
                pick = chosen(candidates, key=lambda m: sort_key(m.get(column)))
                for name in table.names():
                    out.setdefault(name, pick.get(name))
            elif function == "count":
                out[target] = len(members)
            elif function == "dcount":
                out[target] = len({kql_text(v) for v in values})
            elif function == "make_set":
                out[target] = list(dict.fromkeys(kql_text(v) for v in values))
            else:
                out[target] = (max if function == "max" else min)(values, key=sort_key) if values else None
        return out

    def _mv_expand(self, table: Table) -> Table:
        column = self.name()
        table.type_of(column)
        kind = "dynamic"
        if self.accept("to"):
            self.expect("typeof")
            self.expect("(")
            kind = self.name().lower()
            self.expect(")")
        rows: list[dict[str, Any]] = []
        for row in table.rows:
            value = as_dynamic(row.get(column))
            items = value if isinstance(value, list) else [value]
            for item in items:
                rows.append({**row, column: kql_text(item) if kind == "string" else item})
        columns = [(n, kind if n == column else t) for n, t in table.columns]
        return Table(columns, rows)

    def _join(self, left: Table) -> Table:
        kind = "innerunique"
        if self.accept("kind"):
            self.expect("=")
            kind = self.name().lower()
        if kind not in ("inner", "innerunique", "leftouter"):
            raise semantic_error(f"join kind '{kind}' is not supported by this emulator")
        self.expect("(")
        right = self.tabular()
        self.expect(")")
        self.expect("on")
        if self.peek().text.lower() == "$left":
            self.next()
            self.expect(".")
            left_key = self.name()
            self.expect("==")
            if self.next().text.lower() != "$right":
                raise syntax_error("Syntax error: expected '$right'")
            self.expect(".")
            right_key = self.name()
        else:
            left_key = right_key = self.name()
        left.type_of(left_key)
        right.type_of(right_key)
        left_rows = left.rows
        if kind == "innerunique":
            unique: dict[str, dict[str, Any]] = {}
            for row in left_rows:
                unique.setdefault(kql_text(row.get(left_key)), row)
            left_rows = list(unique.values())
        index: dict[str, list[dict[str, Any]]] = {}
        for row in right.rows:
            index.setdefault(kql_text(row.get(right_key)), []).append(row)
        # Right-side columns whose names clash get a numeric suffix (TimeGenerated → TimeGenerated1), as in Kusto.
        left_names = set(left.names())
        renamed = {name: (f"{name}1" if name in left_names else name) for name in right.names()}
        columns = list(left.columns) + [(renamed[n], t) for n, t in right.columns]
        rows: list[dict[str, Any]] = []
        for row in left_rows:
            matches = index.get(kql_text(row.get(left_key)), [])
            for match in matches:
                rows.append({**row, **{renamed[k]: v for k, v in match.items()}})
            if not matches and kind == "leftouter":
                rows.append({**row, **{renamed[n]: None for n in right.names()}})
        return Table(columns, rows)

    # expressions ---------------------------------------------------------------------------------------------------
    def expr(self, types: Mapping[str, str]) -> Expr:
        return self._or(types)

    def _or(self, types: Mapping[str, str]) -> Expr:
        left = self._and(types)
        while self.accept("or"):
            right = self._and(types)
            left = (lambda a, b: lambda r: a(r) is True or b(r) is True)(left, right)
        return left

    def _and(self, types: Mapping[str, str]) -> Expr:
        left = self._comparison(types)
        while self.accept("and"):
            right = self._comparison(types)
            left = (lambda a, b: lambda r: a(r) is True and b(r) is True)(left, right)
        return left

    def _comparison(self, types: Mapping[str, str]) -> Expr:
        left = self._additive(types)
        tok = self.peek()
        text = tok.text.lower()
        if tok.kind == "op" and text in ("==", "!=", "=~", "!~", "<", "<=", ">", ">="):
            self.next()
            right = self._additive(types)
            return lambda r: compare(text, left(r), right(r))
        if text in ("in", "!in", "in~", "!in~"):
            self.next()
            values = self._list(types)

            def member(row: Row) -> bool:
                value = left(row)
                candidates = [v(row) for v in values]
                flat = [c for item in candidates for c in (item if isinstance(item, list) else [item])]
                if text.endswith("~"):
                    found = kql_text(value).casefold() in {kql_text(c).casefold() for c in flat}
                else:
                    found = value is not None and any(compare("==", value, c) for c in flat)
                return found if not text.startswith("!") else (value is not None and not found)
            return member
        negated = tok.kind == "op" and tok.text == "!" and self.peek(1).text.lower() in WORD_OPS
        if negated:
            self.next()
            text = self.peek().text.lower()
        if text in WORD_OPS and self.peek().kind == "name":
            self.next()
            right = self._additive(types)
            function = WORD_OPS[text]

            def word_match(row: Row) -> bool:
                value = left(row)
                if value is None:
                    return False
                return function(kql_text(value), kql_text(right(row))) is not negated
            return word_match
        if text == "between":
            self.next()
            self.expect("(")
            low = self._additive(types)
            self.expect("..")
            high = self._additive(types)
            self.expect(")")
            return lambda r: compare(">=", left(r), low(r)) and compare("<=", left(r), high(r))
        return left

    def _list(self, types: Mapping[str, str]) -> list[Expr]:
        self.expect("(")
        values = [self.expr(types)]
        while self.accept(","):
            values.append(self.expr(types))
        self.expect(")")
        return values

    def _additive(self, types: Mapping[str, str]) -> Expr:
        left = self._unary(types)
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            op = self.next().text
            right = self._unary(types)
            left = (lambda a, b, o: lambda r: arith(o, a(r), b(r)))(left, right, op)
        return left

    def _unary(self, types: Mapping[str, str]) -> Expr:
        if self.peek().kind == "op" and self.peek().text == "-":
            self.next()
            inner = self._unary(types)
            return lambda r: arith("-", 0, inner(r)) if not isinstance(inner(r), timedelta) else -inner(r)
        return self._postfix(types)

    def _postfix(self, types: Mapping[str, str]) -> Expr:
        base = self._primary(types)
        while True:
            if self.accept("."):
                key = self.name()
                base = (lambda b, k: lambda r: member_of(b(r), k))(base, key)
            elif self.peek().text == "[" and self.peek().kind == "op":
                self.next()
                index = self.expr(types)
                self.expect("]")
                base = (lambda b, i: lambda r: member_of(b(r), i(r)))(base, index)
            else:
                return base

    def _primary(self, types: Mapping[str, str]) -> Expr:
        tok = self.next()
        if tok.kind == "literal":
            value = tok.value
            return lambda r: value
        if tok.kind == "op" and tok.text == "(":
            inner = self.expr(types)
            self.expect(")")
            return inner
        if tok.kind != "name":
            raise syntax_error(f"Syntax error: unexpected '{tok.text or 'end of query'}'")
        name = tok.text
        lowered = name.lower()
        if lowered in ("true", "false"):
            flag = lowered == "true"
            return lambda r: flag
        if lowered == "dynamic" and self.peek().text == "(":
            return self._dynamic_literal()
        if lowered in ("datetime", "timespan") and self.peek().text == "(":
            return self._typed_literal(lowered)
        if self.peek().text == "(" and self.peek().kind == "op":
            return self._call(lowered, types)
        if name in types:
            return lambda r: r.get(name)
        if name in self.env.lets:
            value = self.env.lets[name]
            return lambda r: value
        raise semantic_error(f"Failed to resolve scalar expression named '{name}'")

    def _dynamic_literal(self) -> Expr:
        # Re-read the raw text between the parentheses: JSON inside dynamic() is not KQL.
        self.expect("(")
        depth, parts = 1, []
        while depth:
            tok = self.next()
            if tok.kind == "end":
                raise syntax_error("Syntax error: unterminated dynamic()")
            depth += {"(": 1, ")": -1}.get(tok.text, 0) if tok.kind == "op" else 0
            if depth:
                parts.append(json.dumps(tok.value) if tok.kind == "literal" and isinstance(tok.value, str)
                             else tok.text)
        try:
            value = json.loads(" ".join(parts)) if parts else None
        except ValueError:
            raise syntax_error("Syntax error: dynamic() literal is not valid JSON") from None
        return lambda r: value

    def _typed_literal(self, kind: str) -> Expr:
        self.expect("(")
        depth, raw = 1, []
        while depth:
            tok = self.next()
            if tok.kind == "end":
                raise syntax_error(f"Syntax error: unterminated {kind}()")
            depth += {"(": 1, ")": -1}.get(tok.text, 0) if tok.kind == "op" else 0
            if depth:
                raw.append(tok)
        if kind == "timespan":
            if len(raw) == 1 and isinstance(raw[0].value, timedelta):
                span = raw[0].value
                return lambda r: span
            raise syntax_error("Syntax error: timespan() needs a literal such as 2d or 1h")
        text = "".join(t.value if t.kind == "literal" and isinstance(t.value, str) else t.text for t in raw)
        moment = to_datetime(text)
        if moment is None:
            raise syntax_error(f"Syntax error: invalid datetime literal '{text}'")
        return lambda r: moment

    def _call(self, function: str, types: Mapping[str, str]) -> Expr:
        self.expect("(")
        args: list[Expr] = []
        if not self.accept(")"):
            args.append(self.expr(types))
            while self.accept(","):
                args.append(self.expr(types))
            self.expect(")")
        now = self.env.now
        table: dict[str, Callable[..., Any]] = {
            "ago": lambda span: now - span if isinstance(span, timedelta) else None,
            "now": lambda: now,
            "isempty": lambda v: v is None or v == "",
            "isnotempty": lambda v: v is not None and v != "",
            "isnull": lambda v: v is None,
            "isnotnull": lambda v: v is not None,
            "not": lambda v: v is not True,
            "tostring": kql_text,
            "toint": to_int, "tolong": to_int,
            "todouble": to_float, "toreal": to_float,
            "todatetime": to_datetime,
            "tolower": lambda v: kql_text(v).lower(),
            "toupper": lambda v: kql_text(v).upper(),
            "strlen": lambda v: len(kql_text(v)),
            "parse_json": as_dynamic, "todynamic": as_dynamic,
            "coalesce": lambda *vs: next((v for v in vs if v is not None and v != ""), None),
            "strcat": lambda *vs: "".join(kql_text(v) for v in vs),
            "array_length": lambda v: len(as_dynamic(v)) if isinstance(as_dynamic(v), list) else None,
        }
        if function not in table:
            raise semantic_error(f"Unknown function: '{function}'")
        impl = table[function]
        return lambda r: impl(*(a(r) for a in args))


def execute(query: str, tables: Mapping[str, Table], *, now: datetime) -> Table:
    """Run ``query`` over ``tables`` (``now`` is what ``ago()``/``now()`` use); raise :class:`KqlError`."""
    if not query.strip():
        raise syntax_error("Syntax error: the query is empty")
    return _Parser(query, _Env(now=now, tables=tables)).query()

"""The run search language: filters such as ``metrics.rmse < 45 and params.max_depth = '6'``.

A filter is a conjunction of comparisons joined by ``AND`` (there is no ``OR``). Each comparison is
``<identifier> <operator> <value>``:

- identifier: ``metrics.<name>``, ``params.<name>``, ``tags.<name>`` or ``attributes.<name>``
  (aliases ``metric.``, ``param.``, ``tag.``, ``attribute.``, ``run.``). A name is bare
  (``[A-Za-z0-9_.-/:]+``) or quoted with backquotes or double quotes (``metrics.`r2 score```,
  ``tags."loopml.user"``); a quote inside a quoted name is written twice.
- operator: ``= != < <= > >= LIKE ILIKE IN NOT IN`` (keywords in any case).
- value: a number (``45``, ``-1.5``, ``2e-3``) for metrics and the numeric attributes (``start_time``,
  ``end_time``, ``experiment_id``); a single- or double-quoted string for params, tags and the other
  attributes (a quote inside is written twice: ``'it''s'``); ``IN``/``NOT IN`` take a parenthesised,
  comma-separated, non-empty list of such values.

Semantics the store implements:

- Params and tags are strings, so ``params.lr < '0.1'`` compares strings (code-point order), not
  numbers. ``LIKE`` is case-sensitive, ``ILIKE`` is not; ``%`` and ``_`` are wildcards and ``\\``
  escapes them.
- A comparison only matches runs that have the key: ``params.x != 'a'`` and ``NOT IN`` skip runs without
  param ``x``, and a NaN metric never matches any comparison.

Limits: 10,000 characters, 32 comparisons, 10 order-by items. Positions in error messages are 0-based
character offsets into the filter text. This module parses only;
`loopml.store.run_search` compiles the result to SQL.

The same language searches registered models and model versions: pass `MODEL_FIELDS` or
`MODEL_VERSION_FIELDS` as `fields` (which prefixes and attributes are allowed, which attributes are
numeric); `RUN_FIELDS` is the default. `loopml.store.model_search` compiles those.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from loopml.errors import InvalidFilter

__all__ = [
    "ATTRIBUTES",
    "MAX_COMPARISONS",
    "MAX_FILTER_LENGTH",
    "MAX_ORDER_BY",
    "MODEL_FIELDS",
    "MODEL_VERSION_FIELDS",
    "NUMERIC_ATTRIBUTES",
    "OPERATORS",
    "RUN_FIELDS",
    "Comparison",
    "Kind",
    "OrderBy",
    "SearchFields",
    "SearchFilter",
    "Value",
    "parse_filter",
    "parse_order_by",
]

Kind = Literal["metric", "param", "tag", "attribute"]
Scalar = float | int | str
Value = float | int | str | tuple[float, ...] | tuple[int, ...] | tuple[str, ...] | tuple[Scalar, ...]

MAX_RESULTS = 50_000
"""The most items one page of a search holds (runs, models, model versions)."""
MAX_FILTER_LENGTH = 10_000
"""Longest filter (and longest single order-by item) accepted, in characters."""
MAX_COMPARISONS = 32
"""Most comparisons in one filter: each one is a semi-join, and PostgreSQL's planning time grows faster
than linearly with their number (0.1 s at 32, 1.8 s at 100, minutes at 500)."""
MAX_ORDER_BY = 10
"""Most order-by items accepted: each one joins a table."""

NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time", "experiment_id"})
ATTRIBUTES = frozenset({"run_id", "run_name", "status", "parent_run_id"}) | NUMERIC_ATTRIBUTES
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN")
_PATTERN_OPERATORS = frozenset({"LIKE", "ILIKE"})
_LIST_OPERATORS = frozenset({"IN", "NOT IN"})

_PREFIXES: dict[str, Kind] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "run": "attribute",
}
_PLURAL: dict[Kind, str] = {"metric": "metrics", "param": "params", "tag": "tags", "attribute": "attributes"}
_EXPECTED_OPERATOR = "an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN)"


@dataclass(frozen=True)
class SearchFields:
    """What one searchable entity offers: the prefixes a filter may use (lower case, mapped to their kind),
    its attribute names, and which of those are numeric (compared with numbers, not strings)."""

    prefixes: Mapping[str, Kind]
    attributes: frozenset[str]
    numeric_attributes: frozenset[str]

    def _kinds(self) -> list[Kind]:
        order: list[Kind] = ["metric", "param", "tag", "attribute"]
        return [kind for kind in order if kind in self.prefixes.values()]

    @property
    def expected_identifier(self) -> str:
        names = [f"{_PLURAL[kind]}.<name>" for kind in self._kinds()]
        return f"an identifier ({_join_or(names)})"

    @property
    def expected_prefixes(self) -> str:
        return _join_or([f"{_PLURAL[kind]}." for kind in self._kinds()])


def _join_or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


RUN_FIELDS = SearchFields(_PREFIXES, ATTRIBUTES, NUMERIC_ATTRIBUTES)
MODEL_FIELDS = SearchFields(
    prefixes={"tags": "tag", "tag": "tag", "attributes": "attribute", "attribute": "attribute"},
    attributes=frozenset({"name", "created_at", "updated_at"}),
    numeric_attributes=frozenset({"created_at", "updated_at"}),
)
"""Registered models: ``attributes.name``, ``attributes.created_at``, ``attributes.updated_at``, ``tags.<k>``."""
MODEL_VERSION_FIELDS = SearchFields(
    prefixes={
        "metrics": "metric",
        "metric": "metric",
        "tags": "tag",
        "tag": "tag",
        "attributes": "attribute",
        "attribute": "attribute",
    },
    attributes=frozenset({"name", "version", "run_id", "status", "flavor", "created_at"}),
    numeric_attributes=frozenset({"version", "created_at"}),
)
"""Model versions: ``attributes.name`` (the model's), ``version``, ``run_id``, ``status``, ``flavor``,
``created_at``; ``tags.<k>``; ``metrics.<k>`` (the snapshot taken at registration)."""

_WORD = re.compile(r"[A-Za-z_]+")
_BARE_NAME = re.compile(r"[A-Za-z0-9_.\-/:]+")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_FOUND = re.compile(r"[A-Za-z0-9_.\-/:]+|\S")
_INT64 = 2**63


@dataclass(frozen=True, slots=True)
class Comparison:
    """One ``<kind>.<key> <op> <value>`` term. ``op`` is one of `OPERATORS`, upper case."""

    kind: Kind
    key: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """All comparisons must hold (AND). No comparisons: every run matches."""

    comparisons: tuple[Comparison, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderBy:
    kind: Kind
    key: str
    ascending: bool = True


def parse_filter(text: str | None, fields: SearchFields = RUN_FIELDS) -> SearchFilter:
    """Parse a filter; ``None`` or blank text is the filter that matches every run (model, version).

    >>> parse_filter("metrics.rmse < 45 and params.max_depth = '6'").comparisons[1]
    Comparison(kind='param', key='max_depth', op='=', value='6')
    """
    if text is None:
        return SearchFilter()
    parser = _Parser(text, "filter", fields)
    comparisons = [parser.comparison()] if not parser.at_end() else []
    while not parser.at_end():
        start = parser.pos
        word = parser.word().upper()
        if word == "OR":
            raise parser.error("OR is not supported: a filter is comparisons joined by AND", start)
        if word != "AND":
            raise parser.unexpected("AND or the end of the filter", start)
        if len(comparisons) == MAX_COMPARISONS:
            raise parser.error(f"too many comparisons: the limit is {MAX_COMPARISONS}", start)
        comparisons.append(parser.comparison())
    return SearchFilter(tuple(comparisons))


def parse_order_by(items: Sequence[str] | None, fields: SearchFields = RUN_FIELDS) -> tuple[OrderBy, ...]:
    """Parse order-by items such as ``"metrics.rmse"``, ``"params.x ASC"``, ``"attributes.start_time DESC"``.

    ``None`` or an empty sequence gives ``()``: the store then orders by start time, newest first.
    Runs without the key always come last; ties are broken by run id.

    >>> parse_order_by(["metrics.`r2 score` DESC"])
    (OrderBy(kind='metric', key='r2 score', ascending=False),)
    """
    if items is None:
        return ()
    if isinstance(items, str):
        raise InvalidFilter("order_by must be a list of items such as ['metrics.rmse DESC'], not one string")
    if len(items) > MAX_ORDER_BY:
        raise InvalidFilter(f"too many order_by items: {len(items)}, the limit is {MAX_ORDER_BY}")
    parsed: list[OrderBy] = []
    for item in items:
        parser = _Parser(item, "order_by item", fields)
        if parser.at_end():
            raise parser.unexpected(fields.expected_identifier, parser.pos)
        kind, key = parser.identifier()
        ascending = True
        if not parser.at_end():
            start = parser.pos
            direction = parser.word().upper()
            if direction not in ("ASC", "DESC"):
                raise parser.unexpected("ASC, DESC or the end of the item", start)
            ascending = direction == "ASC"
            if not parser.at_end():
                raise parser.unexpected("the end of the item", parser.pos)
        parsed.append(OrderBy(kind, key, ascending))
    return tuple(parsed)


class _Parser:
    """A scanner-less recursive-descent parser over one string, with a cursor."""

    def __init__(self, text: str, what: str, fields: SearchFields = RUN_FIELDS) -> None:
        self.text = text
        self.what = what
        self.fields = fields
        self.pos = 0
        if len(text) > MAX_FILTER_LENGTH:
            raise InvalidFilter(f"{what} is too long: {len(text)} characters, the limit is {MAX_FILTER_LENGTH}")
        for index, char in enumerate(text):
            # Neither backend can store these in a query parameter; reject them here, not as a 5xx.
            if char == "\x00" or "\ud800" <= char <= "\udfff":
                raise self.error(f"character {char!r} is not allowed", index)

    def error(self, message: str, at: int) -> InvalidFilter:
        return InvalidFilter(f"invalid {self.what} at position {at}: {message}")

    def unexpected(self, what: str, at: int) -> InvalidFilter:
        return self.error(f"expected {what}, found {self._found(at)}", at)

    def _found(self, at: int) -> str:
        if at >= len(self.text):
            return "the end of the text"
        match = _FOUND.match(self.text, at)
        return "whitespace" if match is None else repr(match.group())

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        self.skip_space()
        return self.pos >= len(self.text)

    def word(self) -> str:
        """The keyword at the cursor (empty when there is none), consumed."""
        self.skip_space()
        match = _WORD.match(self.text, self.pos)
        if match is None:
            return ""
        self.pos = match.end()
        return match.group()

    def peek(self, literal: str) -> bool:
        self.skip_space()
        if self.text.startswith(literal, self.pos):
            self.pos += len(literal)
            return True
        return False

    def identifier(self) -> tuple[Kind, str]:
        self.skip_space()
        start = self.pos
        prefix = self.word()
        if not prefix or not self.text.startswith(".", self.pos):
            raise self.unexpected(self.fields.expected_identifier, start)
        kind = self.fields.prefixes.get(prefix.lower())
        if kind is None:
            raise self.error(f"unknown prefix {prefix!r}: expected {self.fields.expected_prefixes}", start)
        self.pos += 1
        name_start = self.pos
        if self.pos < len(self.text) and self.text[self.pos] in '`"':
            key = self.quoted(self.text[self.pos], "name")
            if not key:
                raise self.error("a quoted name must not be empty", name_start)
        else:
            match = _BARE_NAME.match(self.text, self.pos)
            if match is None:
                raise self.unexpected(f"a name after {prefix}.", name_start)
            key = match.group()
            self.pos = match.end()
        attributes = self.fields.attributes
        if kind == "attribute" and key not in attributes:
            raise self.error(f"unknown attribute {key!r}: expected one of {', '.join(sorted(attributes))}", name_start)
        return kind, key

    def quoted(self, quote: str, what: str) -> str:
        """The quoted text at the cursor (which is on the opening quote); a doubled quote is one quote."""
        start = self.pos
        self.pos += 1
        parts: list[str] = []
        while True:
            end = self.text.find(quote, self.pos)
            if end < 0:
                raise self.error(f"unterminated {what}: no closing {quote}", start)
            parts.append(self.text[self.pos : end])
            self.pos = end + 1
            if not self.text.startswith(quote, self.pos):
                return "".join(parts)
            parts.append(quote)
            self.pos += 1

    def operator(self) -> str:
        self.skip_space()
        start = self.pos
        for symbol in ("!=", "<=", ">=", "<", ">", "="):
            if self.text.startswith(symbol, self.pos):
                self.pos += len(symbol)
                return symbol
        word = self.word().upper()
        if word in ("LIKE", "ILIKE", "IN"):
            return word
        if word == "NOT":
            self.skip_space()
            after_not = self.pos
            if self.word().upper() == "IN":
                return "NOT IN"
            raise self.unexpected("IN after NOT", after_not)
        self.pos = start
        raise self.unexpected(_EXPECTED_OPERATOR, start)

    def comparison(self) -> Comparison:
        kind, key = self.identifier()
        self.skip_space()
        op_start = self.pos
        op = self.operator()
        numeric = kind == "metric" or (kind == "attribute" and key in self.fields.numeric_attributes)
        if numeric and op in _PATTERN_OPERATORS:
            raise self.error(f"{op} compares strings, but {_PLURAL[kind]}.{key} is numeric", op_start)
        value: Value
        if op in _LIST_OPERATORS:
            self.skip_space()
            if not self.peek("("):
                raise self.unexpected(f"'(' to open the list of values after {op}", self.pos)
            self.skip_space()
            if self.text.startswith(")", self.pos):
                raise self.error(f"{op} needs at least one value", self.pos)
            items = [self.value(kind, key, numeric)]
            while not self.peek(")"):
                if not self.peek(","):
                    raise self.unexpected("',' or ')' in the list of values", self.pos)
                items.append(self.value(kind, key, numeric))
            value = tuple(items)
        else:
            value = self.value(kind, key, numeric)
            if op in _PATTERN_OPERATORS and isinstance(value, str):
                trailing = len(value) - len(value.rstrip("\\"))
                if trailing % 2:
                    raise self.error(f"a {op} pattern must not end with a lone escape character '\\'", op_start)
        return Comparison(kind, key, op, value)

    def value(self, kind: Kind, key: str, numeric: bool) -> Scalar:
        self.skip_space()
        start = self.pos
        if self.pos < len(self.text) and self.text[self.pos] in "'\"":
            text = self.quoted(self.text[self.pos], "string")
            if numeric:
                raise self.error(f"{_PLURAL[kind]}.{key} is numeric: expected a number, found a string", start)
            return text
        match = _NUMBER.match(self.text, self.pos)
        if match is None or _BARE_NAME.match(self.text, match.end()):
            raise self.unexpected("a number" if numeric else "a quoted string", start)
        if not numeric:
            raise self.error(f"{_PLURAL[kind]}.{key} is a string: quote the value, e.g. '{match.group()}'", start)
        self.pos = match.end()
        literal = match.group()
        if any(char in literal for char in ".eE"):
            number = float(literal)
            if math.isfinite(number):
                return number
        elif len(literal) <= 20:  # also keeps int() below Python's limit on digits
            whole = int(literal)
            if -_INT64 <= whole < _INT64:
                return whole
        raise self.error(f"number {literal} is out of range", start)

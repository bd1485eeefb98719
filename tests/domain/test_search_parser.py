"""The run search filter language: text -> AST, and a useful InvalidFilter for everything else."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopml.domain.search import (
    ATTRIBUTES,
    MAX_COMPARISONS,
    MAX_FILTER_LENGTH,
    NUMERIC_ATTRIBUTES,
    Comparison,
    OrderBy,
    SearchFilter,
    parse_filter,
    parse_order_by,
)
from loopml.errors import InvalidFilter, InvalidInput


def one(kind: str, key: str, op: str, value: object) -> SearchFilter:
    return SearchFilter((Comparison(kind, key, op, value),))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, SearchFilter(())),
        ("", SearchFilter(())),
        ("   \n", SearchFilter(())),
        (
            "metrics.rmse < 45 and params.max_depth = '6'",
            SearchFilter(
                (
                    Comparison("metric", "rmse", "<", 45),
                    Comparison("param", "max_depth", "=", "6"),
                )
            ),
        ),
        ("tags.\"loopml.user\" LIKE 'ann%'", one("tag", "loopml.user", "LIKE", "ann%")),
        (
            "attributes.status IN ('FINISHED', 'FAILED')",
            one("attribute", "status", "IN", ("FINISHED", "FAILED")),
        ),
        ("metrics.`r2 score` >= 0.8", one("metric", "r2 score", ">=", 0.8)),
        (
            "params.lr != '0.1' AND attributes.run_name ILIKE '%base%'",
            SearchFilter(
                (
                    Comparison("param", "lr", "!=", "0.1"),
                    Comparison("attribute", "run_name", "ILIKE", "%base%"),
                )
            ),
        ),
        ("metric.loss<=-1.5e-3", one("metric", "loss", "<=", -0.0015)),
        ("metrics.loss > +2E3", one("metric", "loss", ">", 2000.0)),
        ("metrics.loss = .5", one("metric", "loss", "=", 0.5)),
        ("metrics.loss not IN (1, 2.0,-3)", one("metric", "loss", "NOT IN", (1, 2.0, -3))),
        ("metrics.loss\tnOt\n in(1)", one("metric", "loss", "NOT IN", (1,))),
        ('param.a/b:c-d.e = "x"', one("param", "a/b:c-d.e", "=", "x")),
        ("tag.note = 'it''s'", one("tag", "note", "=", "it's")),
        ('tag.note = "say ""hi"""', one("tag", "note", "=", 'say "hi"')),
        ("tags.`a``b` = ''", one("tag", "a`b", "=", "")),
        ("run.start_time >= 1700000000000", one("attribute", "start_time", ">=", 1700000000000)),
        ("attribute.experiment_id IN (1, 2)", one("attribute", "experiment_id", "IN", (1, 2))),
        ("attributes.run_id = 'abc'", one("attribute", "run_id", "=", "abc")),
        ("METRICS.x = 1", one("metric", "x", "=", 1)),
        ("params.x < '10'", one("param", "x", "<", "10")),
        ("params.x like 'a\\%'", one("param", "x", "LIKE", "a\\%")),
        ("tags.x = 'and or'", one("tag", "x", "=", "and or")),
    ],
)
def test_valid_filters_parse_to_the_expected_ast(text: str | None, expected: SearchFilter) -> None:
    assert parse_filter(text) == expected


def test_int_and_float_literals_keep_their_type() -> None:
    (integer,) = parse_filter("metrics.x = 45").comparisons
    (real,) = parse_filter("metrics.x = 45.0").comparisons
    assert type(integer.value) is int
    assert type(real.value) is float


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        (
            "metrics.rmse foo 45",
            13,
            "expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN), found 'foo'",
        ),
        ("metrics.rmse < 45 or params.x = '1'", 18, "OR is not supported"),
        ("metrics.rmse < 45 OR params.x = '1'", 18, "OR is not supported"),
        ("rmse < 45", 0, "expected an identifier (metrics.<name>, params.<name>"),
        ("foo.bar = 1", 0, "unknown prefix 'foo'"),
        ("attributes.artifact_uri = 'x'", 11, "unknown attribute 'artifact_uri'"),
        ("metrics.x > 'a'", 12, "metrics.x is numeric: expected a number"),
        ("attributes.start_time = '5'", 24, "attributes.start_time is numeric"),
        ("metrics.x LIKE '1%'", 10, "LIKE compares strings, but metrics.x is numeric"),
        ("metrics.x ILIKE '1%'", 10, "ILIKE compares strings"),
        ("params.max_depth = 6", 19, "params.max_depth is a string: quote the value, e.g. '6'"),
        ("params.x IN ()", 13, "IN needs at least one value"),
        ("params.x NOT IN ( )", 18, "NOT IN needs at least one value"),
        ("params.x IN 'a'", 12, "expected '(' to open the list of values after IN, found"),
        ("params.x IN ('a',)", 17, "expected a quoted string, found ')'"),
        ("params.x IN ('a' 'b')", 17, "expected ',' or ')' in the list of values, found"),
        ("params.x IN ('a', 3)", 18, "params.x is a string"),
        ("metrics.x IN (1, 'a')", 17, "metrics.x is numeric"),
        ("params.x IN ('a'", 16, "expected ',' or ')' in the list of values, found the end of the text"),
        ("metrics.x = 1 foo", 14, "expected AND or the end of the filter, found 'foo'"),
        ("metrics.x = 1 )", 14, "expected AND or the end of the filter, found ')'"),
        ("metrics.x = 1 and", 17, "expected an identifier"),
        ("params.x = 'abc", 11, "unterminated string: no closing '"),
        ('params.x = "abc', 11, 'unterminated string: no closing "'),
        ("tags.`abc = 'x'", 5, "unterminated name: no closing `"),
        ("tags.`` = 'x'", 5, "a quoted name must not be empty"),
        ("metrics. = 3", 8, "expected a name after metrics., found whitespace"),
        ("metrics.x NOT 5", 14, "expected IN after NOT, found '5'"),
        ("metrics.x == 5", 11, "expected a number, found '='"),
        ("metrics.x = 45abc", 12, "expected a number, found '45abc'"),
        ("metrics.x = 1e999", 12, "number 1e999 is out of range"),
        ("metrics.x = 9223372036854775808", 12, "out of range"),
        ("metrics.x = " + "9" * 5000, 12, "out of range"),
        ("metrics.x =", 11, "expected a number, found the end of the text"),
        ("params.x LIKE 'a\\'", 9, "must not end with a lone escape character"),
        ("params.x = 'a\x00'", 13, "character '\\x00' is not allowed"),
    ],
)
def test_malformed_filters_say_where_and_what(text: str, position: int, message: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(text)
    assert str(caught.value).startswith(f"invalid filter at position {position}: ")
    assert message in str(caught.value)


def test_invalid_filter_is_an_invalid_input_and_a_value_error() -> None:
    with pytest.raises(InvalidInput):
        parse_filter("nope")
    with pytest.raises(ValueError, match="position 0"):
        parse_filter("nope")


def test_overly_long_filter_is_rejected_before_parsing() -> None:
    clause = "metrics.x > 0 and "
    text = clause * (MAX_FILTER_LENGTH // len(clause)) + "metrics.y > 0"
    assert len(text) > MAX_FILTER_LENGTH
    with pytest.raises(InvalidFilter, match=r"filter is too long: \d+ characters, the limit is 10000"):
        parse_filter(text)
    values = [str(i) for i in range(1800)]
    fits = f"metrics.x IN ({', '.join(values)})"
    assert MAX_FILTER_LENGTH - 1000 < len(fits) <= MAX_FILTER_LENGTH
    assert parse_filter(fits) == one("metric", "x", "IN", tuple(map(int, values)))


def test_too_many_comparisons_are_rejected() -> None:
    terms = [f"metrics.m{i} > {i}" for i in range(MAX_COMPARISONS + 1)]
    assert len(parse_filter(" and ".join(terms[:-1])).comparisons) == MAX_COMPARISONS
    at = len(" and ".join(terms[:-1])) + 1
    with pytest.raises(InvalidFilter, match=f"at position {at}: too many comparisons: the limit is 32"):
        parse_filter(" and ".join(terms))


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (None, ()),
        ([], ()),
        (["metrics.rmse"], (OrderBy("metric", "rmse", True),)),
        (["metrics.rmse DESC"], (OrderBy("metric", "rmse", False),)),
        (["params.x ASC", "tags.`a b` desc"], (OrderBy("param", "x", True), OrderBy("tag", "a b", False))),
        (["attributes.start_time DESC"], (OrderBy("attribute", "start_time", False),)),
        (["  run.run_name  "], (OrderBy("attribute", "run_name", True),)),
    ],
)
def test_order_by_parses(items: list[str] | None, expected: tuple[OrderBy, ...]) -> None:
    assert parse_order_by(items) == expected


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([""], "invalid order_by item at position 0: expected an identifier"),
        (["metrics.rmse DOWN"], "position 13: expected ASC, DESC or the end of the item, found 'DOWN'"),
        (["metrics.rmse DESC x"], "position 18: expected the end of the item, found 'x'"),
        (["attributes.nope"], "unknown attribute 'nope'"),
        (["x.rmse"], "unknown prefix 'x'"),
        (["metrics.x"] * 11, "too many order_by items: 11, the limit is 10"),
        ("metrics.rmse", "must be a list"),
    ],
)
def test_malformed_order_by_is_rejected(items: list[str], message: str) -> None:
    with pytest.raises(InvalidFilter, match=re.escape(message)):
        parse_order_by(items)


# --- Property tests --------------------------------------------------------------------------------

_FRAGMENTS = st.sampled_from(
    [
        "metrics.", "params.", "tags.", "attributes.", "run.", "x", "`a b`", '"q"', "status", "start_time",
        "=", "!=", "<", "<=", ">", ">=", "LIKE", "ilike", "IN", "NOT", "(", ")", ",", "'s'", "'", '"', "`",
        "1", "-2.5e3", "1e999", ".", "and", "OR", " ", "\t", "\\", "%", "\x00", "é",
    ]
)  # fmt: skip


@given(st.one_of(st.text(), st.lists(_FRAGMENTS, max_size=30).map("".join)))
def test_parser_raises_only_invalid_filter(text: str) -> None:
    with contextlib.suppress(InvalidFilter):
        parse_filter(text)


@given(st.lists(st.one_of(st.text(max_size=40), st.lists(_FRAGMENTS, max_size=8).map("".join)), max_size=4))
def test_order_by_parser_raises_only_invalid_filter(items: list[str]) -> None:
    with contextlib.suppress(InvalidFilter):
        parse_order_by(items)


_ALIASES = {
    "metric": ["metrics", "metric", "METRICS"],
    "param": ["params", "param", "Params"],
    "tag": ["tags", "tag", "TAGS"],
    "attribute": ["attributes", "attribute", "run", "Attributes"],
}
_BARE = re.compile(r"[A-Za-z0-9_.\-/:]+")
_SPACE = st.sampled_from([" ", "  ", "\t", "\n "])
_OPTIONAL_SPACE = st.sampled_from(["", " ", "\t"])
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_KEY = st.one_of(st.from_regex(r"[A-Za-z0-9_.\-/:]{1,12}", fullmatch=True), _TEXT.filter(bool))
_INT = st.integers(-(2**63), 2**63 - 1)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    kind = draw(st.sampled_from(["metric", "param", "tag", "attribute"]))
    key = draw(st.sampled_from(sorted(ATTRIBUTES)) if kind == "attribute" else _KEY)
    numeric = kind == "metric" or key in NUMERIC_ATTRIBUTES
    ops = ["=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"] + ([] if numeric else ["LIKE", "ILIKE"])
    op = draw(st.sampled_from(ops))
    scalar = st.one_of(_INT, _FLOAT) if numeric else _TEXT
    if op in ("LIKE", "ILIKE"):
        scalar = _TEXT.filter(lambda s: (len(s) - len(s.rstrip("\\"))) % 2 == 0)
    value = tuple(draw(st.lists(scalar, min_size=1, max_size=4))) if op.endswith("IN") else draw(scalar)
    return Comparison(kind, key, op, value)


def _quote(text: str, quote: str) -> str:
    return quote + text.replace(quote, quote * 2) + quote


@st.composite
def rendered(draw: st.DrawFn, search: SearchFilter) -> str:
    """The filter as a user could type it: any alias, keyword case, quote style and spacing."""

    def scalar(value: object) -> str:
        if isinstance(value, str):
            return _quote(value, draw(st.sampled_from(["'", '"'])))
        return repr(value)

    def keyword(word: str) -> str:
        return draw(st.sampled_from([word, word.lower(), word.title()]))

    parts = []
    for comparison in search.comparisons:
        prefix = draw(st.sampled_from(_ALIASES[comparison.kind]))
        key = comparison.key
        if not _BARE.fullmatch(key) or draw(st.booleans()):
            key = _quote(key, draw(st.sampled_from(["`", '"'])))
        if comparison.op[0].isalpha():
            op = draw(_SPACE) + " ".join(keyword(w) for w in comparison.op.split()) + draw(_SPACE)
        else:
            op = draw(_OPTIONAL_SPACE) + comparison.op + draw(_OPTIONAL_SPACE)
        if isinstance(comparison.value, tuple):
            items = (draw(_OPTIONAL_SPACE) + "," + draw(_OPTIONAL_SPACE)).join(map(scalar, comparison.value))
            value = "(" + items + ")"
        else:
            value = scalar(comparison.value)
        parts.append(f"{prefix}.{key}{op}{value}")
    return (draw(_SPACE) + keyword("AND") + draw(_SPACE)).join(parts)


@given(st.data(), st.lists(comparisons(), max_size=5).map(lambda c: SearchFilter(tuple(c))))
def test_rendered_valid_filter_parses_back_to_the_same_ast(data: st.DataObject, search: SearchFilter) -> None:
    text = data.draw(rendered(search))
    assert parse_filter(text) == search

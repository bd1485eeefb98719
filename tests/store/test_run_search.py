"""Run search compiled to SQL: every operator, ordering and page checked against a Python reference.

The fixtures are ~50 runs in 2 experiments (plus one run in a third experiment that is never searched),
inserted with SQLAlchemy Core on SQLite and on PostgreSQL; the expected ids are computed in Python from
the same fixture objects, independently of the SQL.
"""

from __future__ import annotations

import itertools
import math
import operator
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, insert

from loopml.domain.search import (
    MAX_COMPARISONS,
    MAX_FILTER_LENGTH,
    Comparison,
    OrderBy,
    SearchFilter,
    parse_filter,
    parse_order_by,
)
from loopml.errors import InvalidInput
from loopml.store import schema
from loopml.store.run_search import build_run_search, search_run_ids

SEARCHED = (1, 2)
OTHER_EXPERIMENT = 3
NAN = float("nan")


@dataclass
class FakeRun:
    id: str
    experiment_id: int
    name: str
    status: str
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def attribute(self, key: str) -> Any:
        return getattr(self, {"run_id": "id", "run_name": "name"}.get(key, key))


def make_runs() -> list[FakeRun]:
    rnd = random.Random(20240601)
    made: list[FakeRun] = []
    for i in range(52):
        run = FakeRun(
            id=f"{rnd.getrandbits(128):032x}",
            experiment_id=SEARCHED[i % 2],
            name=rnd.choice(["base", "Base", "tuned", "my-baseline", "x_y"]) + f"-{i}",
            status=rnd.choice(["FINISHED", "FAILED", "RUNNING", "KILLED"]),
            start_time=1000 + rnd.randrange(15),  # ties on purpose
            end_time=rnd.choice([None, 1500, 2000 + i]),
            parent_run_id=rnd.choice([None, made[rnd.randrange(len(made))].id]) if made else None,
        )
        for key, choices in {
            "rmse": [None, NAN, math.inf, -math.inf, 10.0, 20.5, 44.9, 45.0, 45, 60.0, 1e-3],
            "r2 score": [None, 0.1, 0.5, 0.8, 0.95],
            "loss": [0.25, 0.5, 1.0, 2.0],
        }.items():
            value = rnd.choice(choices)
            if value is not None:
                run.metrics[key] = float(value)
        for key, choices in {
            "max_depth": [None, "2", "6", "10"],
            "lr": [None, "0.1", "0.01", "1e-3", "1E-3"],
            "opt/beta-1:x": [None, "a", "B", "b"],
        }.items():
            value = rnd.choice(choices)
            if value is not None:
                run.params[key] = value
        for key, choices in {
            # the last one ends in a Cyrillic a: a look-alike that must not match "ann"
            "loopml.user": [None, "ann", "Ann", "annie", "ANN_x", "an%n", "bob", "\u00e4nn\u0430"],
            "note": [None, "it's", 'say "hi"', ""],
        }.items():
            value = rnd.choice(choices)
            if value is not None:
                run.tags[key] = value
        made.append(run)
    stray = FakeRun("f" * 32, OTHER_EXPERIMENT, "base-stray", "FINISHED", 1005, None, None)
    stray.metrics["rmse"] = 1.0
    stray.params["max_depth"] = "6"
    stray.tags["loopml.user"] = "ann"
    return [*made, stray]


RUNS = make_runs()
BY_ID = {run.id: run for run in RUNS}


def insert_runs(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(schema.projects), [{"id": 1, "name": "p", "created_at": 0}])
        conn.execute(
            insert(schema.experiments),
            [{"id": e, "project_id": 1, "name": f"e{e}", "created_at": 0} for e in (*SEARCHED, OTHER_EXPERIMENT)],
        )
        for run in RUNS:  # one by one: parents are inserted before their children
            conn.execute(
                insert(schema.runs),
                {
                    "id": run.id,
                    "experiment_id": run.experiment_id,
                    "name": run.name,
                    "status": run.status,
                    "start_time": run.start_time,
                    "end_time": run.end_time,
                    "parent_run_id": run.parent_run_id,
                },
            )
        metric_rows = [
            {
                "run_id": run.id,
                "key": key,
                "value": None if math.isnan(value) else value,
                "is_nan": math.isnan(value),
                "step": 0,
                "timestamp": 0,
            }
            for run in RUNS
            for key, value in run.metrics.items()
        ]
        conn.execute(insert(schema.latest_metrics), metric_rows)
        for table, attribute in ((schema.params, "params"), (schema.tags, "tags")):
            rows = [
                {"run_id": run.id, "key": key, "value": value}
                for run in RUNS
                for key, value in getattr(run, attribute).items()
            ]
            conn.execute(insert(table), rows)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _case_sensitive_like(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA case_sensitive_like=ON")

    schema.metadata.create_all(engine)
    insert_runs(engine)
    yield engine
    engine.dispose()


def search(
    engine: Engine,
    filter_text: str | None = None,
    order_by: list[str] | None = None,
    *,
    experiments: tuple[int, ...] = SEARCHED,
    limit: int = 1000,
    offset: int = 0,
) -> list[str]:
    query = build_run_search(experiments, parse_filter(filter_text), parse_order_by(order_by), limit, offset)
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


# --- The Python reference ---------------------------------------------------------------------------


def like_regex(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    parts, escaped = [], False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            parts.append({"%": ".*", "_": "."}.get(char, re.escape(char)))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE | re.ASCII if ignore_case else 0))


COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "IN": lambda actual, values: actual in values,
    "NOT IN": lambda actual, values: actual not in values,
    "LIKE": lambda actual, pattern: like_regex(pattern, ignore_case=False).fullmatch(actual) is not None,
    "ILIKE": lambda actual, pattern: like_regex(pattern, ignore_case=True).fullmatch(actual) is not None,
}


def lookup(run: FakeRun, kind: str, key: str) -> Any:
    if kind == "attribute":
        return run.attribute(key)
    return {"metric": run.metrics, "param": run.params, "tag": run.tags}[kind].get(key)


def matches(run: FakeRun, comparison: Comparison) -> bool:
    actual = lookup(run, comparison.kind, comparison.key)
    if actual is None or (isinstance(actual, float) and math.isnan(actual)):
        return False  # a missing key or a NaN never matches
    return COMPARE[comparison.op](actual, comparison.value)


def expected_ids(
    search_filter: SearchFilter, order_by: tuple[OrderBy, ...] = (), experiments: tuple[int, ...] = SEARCHED
) -> list[str]:
    found = [
        run
        for run in RUNS
        if run.experiment_id in experiments and all(matches(run, c) for c in search_filter.comparisons)
    ]
    found.sort(key=lambda run: run.id)
    keys = order_by or (OrderBy("attribute", "start_time", ascending=False),)
    for item in reversed(keys):  # stable sorts, least significant key first

        def value(run: FakeRun, item: OrderBy = item) -> Any:
            return lookup(run, item.kind, item.key)

        def group(run: FakeRun, item: OrderBy = item) -> int:
            actual = value(run, item)
            return 2 if actual is None else 1 if isinstance(actual, float) and math.isnan(actual) else 0

        present = [run for run in found if group(run) == 0]
        present.sort(key=value, reverse=not item.ascending)
        found = present + sorted((run for run in found if group(run) != 0), key=group)
    return [run.id for run in found]


# --- Tests ------------------------------------------------------------------------------------------

PARENT = next(run.parent_run_id for run in RUNS if run.parent_run_id)
SOME_IDS = [RUNS[3].id, RUNS[10].id, "0" * 32]

FILTERS = [
    None,
    "metrics.rmse < 45",
    "metrics.rmse <= 45",
    "metrics.rmse > 45",
    "metrics.rmse >= 45.0",
    "metrics.rmse = 45",
    "metrics.rmse != 45",
    "metrics.rmse IN (10, 44.9, 1e-3)",
    "metrics.rmse NOT IN (10, 45)",
    "metrics.rmse > 1e300",
    "metrics.rmse < -1e300",
    "metrics.`r2 score` >= 0.8",
    "metric.loss < 1 and metrics.loss > 0.25",
    "params.max_depth = '6'",
    "params.max_depth != '6'",
    "params.max_depth < '6'",  # a string comparison: '10' < '6'
    "params.max_depth >= '2'",
    "params.max_depth IN ('2', '10')",
    "params.max_depth NOT IN ('2')",
    "params.lr LIKE '1e%'",
    "params.lr ILIKE '1e%'",
    "params.lr LIKE '0._'",
    "params.opt/beta-1:x > 'B'",
    "params.`opt/beta-1:x` <= 'a'",
    "tags.\"loopml.user\" LIKE 'ann%'",
    "tags.\"loopml.user\" ILIKE 'ann%'",
    "tags.\"loopml.user\" LIKE 'an\\%n'",
    "tags.\"loopml.user\" LIKE 'ANN\\_%'",
    "tags.\"loopml.user\" = '\u00e4nn\u0430'",
    "tags.note = 'it''s'",
    'tags.note = "say ""hi"""',
    "tags.note = ''",
    "tags.note LIKE '%'",
    "attributes.status IN ('FINISHED', 'FAILED')",
    "attributes.status != 'RUNNING'",
    "attributes.status NOT IN ('RUNNING', 'KILLED')",
    "attributes.run_name ILIKE '%base%'",
    "attributes.run_name LIKE '%base%'",
    "attributes.run_name LIKE 'x\\_y%'",
    "attributes.run_name > 'b'",
    "run.start_time >= 1010",
    "run.start_time IN (1000, 1001)",
    "run.start_time > 1009.5",
    "run.start_time <= 1004.9",
    "run.start_time = 1005.0",
    "run.start_time IN (1000.5, 1001, 1002.0)",
    "attributes.end_time != 1500.5",
    "attributes.experiment_id IN (1.5, 2)",
    "metrics.rmse IN (45, 44.9)",
    "attributes.end_time < 1600",
    "attributes.end_time != 1500",
    "attributes.experiment_id = 2",
    f"attributes.parent_run_id = '{PARENT}'",
    f"attributes.parent_run_id != '{PARENT}'",
    "attributes.run_id IN (" + ", ".join(f"'{i}'" for i in SOME_IDS) + ")",
    "metrics.rmse < 45 and params.max_depth = '6'",
    "params.lr != '0.1' AND attributes.run_name ILIKE '%base%'",
    "metrics.loss <= 1 and params.max_depth != '2' and tags.\"loopml.user\" ILIKE 'a%' and run.status = 'FINISHED'",
    "metrics.nope > 0",
    "params.nope = 'x'",
]


def test_every_operator_returns_exactly_the_expected_runs(engine: Engine) -> None:
    for text in FILTERS:
        expected = expected_ids(parse_filter(text))
        assert search(engine, text) == expected, text
    # the fixtures exercise every branch: no filter above is vacuous or matches everything by accident
    sizes = {text: len(expected_ids(parse_filter(text))) for text in FILTERS}
    assert all(0 < size < len(RUNS) - 1 for text, size in sizes.items() if text and "nope" not in text), sizes


def test_like_is_case_sensitive_and_ilike_is_not(engine: Engine) -> None:
    like = {BY_ID[i].tags["loopml.user"] for i in search(engine, "tags.\"loopml.user\" LIKE 'ann%'")}
    ilike = {BY_ID[i].tags["loopml.user"] for i in search(engine, "tags.\"loopml.user\" ILIKE 'ann%'")}
    assert like == {"ann", "annie"}
    assert ilike == {"ann", "Ann", "annie", "ANN_x"}


def test_nan_matches_no_numeric_comparison(engine: Engine) -> None:
    nan_runs = {run.id for run in RUNS if math.isnan(run.metrics.get("rmse", 0.0))}
    assert nan_runs
    for text in (
        "metrics.rmse != 1",
        "metrics.rmse NOT IN (1)",
        "metrics.rmse > -1e308",
        "metrics.rmse < 1e308",
    ):
        assert not nan_runs & set(search(engine, text)), text


ORDERS = [
    [],
    ["metrics.rmse"],
    ["metrics.rmse DESC"],
    ["metrics.`r2 score` DESC", "metrics.loss ASC"],
    ["params.max_depth"],
    ["params.max_depth DESC", "attributes.start_time"],
    ['tags."loopml.user" DESC'],
    ["attributes.start_time DESC"],
    ["attributes.start_time"],
    ["attributes.end_time DESC"],
    ["attributes.run_name"],
    ["attributes.parent_run_id"],
    ["attributes.status", "metrics.loss DESC"],
    ["metrics.nope DESC"],
]


def test_ordering_matches_the_reference(engine: Engine) -> None:
    for order_by in ORDERS:
        expected = expected_ids(SearchFilter(), parse_order_by(order_by))
        assert search(engine, None, order_by) == expected, order_by


def test_runs_without_the_key_sort_last_in_both_directions(engine: Engine) -> None:
    for direction in ("ASC", "DESC"):
        ordered = [BY_ID[i].metrics.get("rmse") for i in search(engine, None, [f"metrics.rmse {direction}"])]
        present = [v for v in ordered if v is not None and not math.isnan(v)]
        assert present == sorted(present, reverse=direction == "DESC")
        tail = ordered[len(present) :]
        nans = [v for v in tail if v is not None]
        assert nans and all(math.isnan(v) for v in nans)
        assert tail == nans + [None] * (len(tail) - len(nans))  # numbers, then NaN, then missing


def test_ties_are_broken_by_run_id(engine: Engine) -> None:
    ordered = search(engine, None, ["attributes.start_time DESC"])
    assert ordered == search(engine)  # the default order
    pairs = list(itertools.pairwise(ordered))
    ties = [(a, b) for a, b in pairs if BY_ID[a].start_time == BY_ID[b].start_time]
    assert ties and all(a < b for a, b in ties)


@pytest.mark.parametrize("page_size", [1, 7, 50])
def test_pages_concatenate_to_the_full_ordered_list(engine: Engine, page_size: int) -> None:
    for text, order_by in [(None, []), ("metrics.loss > 0.25", ["metrics.rmse DESC"]), (None, ["params.lr"])]:
        full = search(engine, text, order_by)
        pages, offset = [], 0
        while page := search(engine, text, order_by, limit=page_size, offset=offset):
            assert len(page) <= page_size
            pages.extend(page)
            offset += page_size
        assert pages == full
        assert len(set(pages)) == len(pages)


def test_only_the_given_experiments_are_searched(engine: Engine) -> None:
    for experiments in [(1,), (2,), (1, 2), (OTHER_EXPERIMENT,), (), (1, 999)]:
        for text in (None, "params.max_depth = '6'", "tags.\"loopml.user\" = 'ann'"):
            expected = expected_ids(parse_filter(text), experiments=experiments)
            assert search(engine, text, experiments=experiments) == expected, (experiments, text)
    assert search(engine, experiments=(OTHER_EXPERIMENT,)) == ["f" * 32]
    assert search(engine, experiments=()) == []


def test_the_largest_filters_run_on_the_database(engine: Engine) -> None:
    terms = [f"metrics.loss > {i / 100}" for i in range(MAX_COMPARISONS - 2)] + ["params.max_depth != '2'"]
    terms.append("metrics.rmse < 45")
    text = " and ".join(terms)
    assert len(parse_filter(text).comparisons) == MAX_COMPARISONS
    assert search(engine, text) == expected_ids(parse_filter(text))
    distinct = " and ".join(f"metrics.m{i} > 0" for i in range(MAX_COMPARISONS))
    assert search(engine, distinct) == []
    values = ", ".join(f"'{i}'" for i in range(1350)) + ", '6'"
    long_in = f"params.max_depth IN ({values})"
    assert len(long_in) < MAX_FILTER_LENGTH
    assert search(engine, long_in) == expected_ids(parse_filter("params.max_depth IN ('6', '2', '10')"))


def test_negative_limit_or_offset_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        build_run_search([1], SearchFilter(), (), -1, 0)
    with pytest.raises(InvalidInput):
        build_run_search([1], SearchFilter(), (), 10, -5)


def test_the_statement_selects_run_ids_only() -> None:
    query = build_run_search([1], parse_filter("metrics.rmse < 45"), parse_order_by(["params.x"]), 10, 0)
    assert [column.name for column in query.selected_columns] == ["id"]


# --- the ordered scan: the same answer as the one statement, whatever part of the order it reads -------------

METRIC_ORDERS = [
    ["metrics.rmse"],
    ["metrics.rmse DESC"],
    ["metrics.loss"],
    ["metrics.`r2 score` DESC"],
    ["metrics.nope"],
]


def scan_search(
    engine: Engine, filter_text: str | None, order_by: list[str], *, scan: int | None, limit: int, offset: int = 0
) -> list[str]:
    with engine.connect() as conn:
        return search_run_ids(
            conn, SEARCHED, parse_filter(filter_text), parse_order_by(order_by), limit, offset, scan=scan
        )


@pytest.mark.parametrize("scan", [1, 4, 16, None])
def test_ordered_scan_answers_as_the_statement(engine: Engine, scan: int | None) -> None:
    """Small scans stop short of a page (and must fall back), large ones answer from the index: both give
    the reference order, NaN and missing metrics last, pages included."""
    for text, order_by in itertools.product([None, *FILTERS[::3]], METRIC_ORDERS):
        expected = expected_ids(parse_filter(text), parse_order_by(order_by))
        for limit, offset in [(1000, 0), (5, 0), (5, 5), (3, 20)]:
            found = scan_search(engine, text, order_by, scan=scan, limit=limit, offset=offset)
            assert found == expected[offset : offset + limit], (text, order_by, scan, limit, offset)


def test_ordered_scan_keeps_to_the_searched_experiments(engine: Engine) -> None:
    for experiments in [(1,), (2,), (OTHER_EXPERIMENT,), (1, 999), ()]:
        for order_by in (["metrics.rmse"], ["metrics.rmse DESC"]):
            expected = expected_ids(SearchFilter(), parse_order_by(order_by), experiments=experiments)
            with engine.connect() as conn:
                found = search_run_ids(conn, experiments, SearchFilter(), parse_order_by(order_by), 5, 0, scan=8)
            assert found == expected[:5], (experiments, order_by)

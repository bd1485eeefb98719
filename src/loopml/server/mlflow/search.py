"""MLflow's search dialect, translated to loopml's search language (then compiled to the same SQL).

MLflow's filter grammar is loopml's (comparisons joined by AND, the same operators and quoting), with a few
more names: `attributes.created` is `start_time`, `attributes.user_id` is the `mlflow.user` tag, and the
`mlflow.runName` / `mlflow.parentRunId` tags are the run's name and parent. An order-by item may name an
attribute without a prefix (`start_time DESC`). `attributes.artifact_uri` and `attributes.lifecycle_stage`
are refused with a message (use `run_view_type` for the lifecycle): docs/mlflow.md lists the differences.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

from loopml.domain import Experiment
from loopml.domain.search import (
    ATTRIBUTES,
    NUMERIC_ATTRIBUTES,
    RUN_FIELDS,
    Comparison,
    OrderBy,
    SearchFields,
    SearchFilter,
    parse_filter,
    parse_order_by,
)
from loopml.errors import InvalidFilter, InvalidInput
from loopml.server.mlflow.convert import PARENT_TAG, RUN_NAME_TAG, USER_TAG

__all__ = ["MAX_RESULTS", "run_filter", "run_order", "select_experiments", "view_type"]

MAX_RESULTS = 50_000
_UNSUPPORTED = frozenset({"artifact_uri", "lifecycle_stage"})
MLFLOW_RUN_FIELDS = SearchFields(
    prefixes=RUN_FIELDS.prefixes,
    attributes=ATTRIBUTES | {"created", "user_id"} | _UNSUPPORTED,
    numeric_attributes=NUMERIC_ATTRIBUTES | {"created"},
)
_VIEWS: dict[str, bool | None] = {"ACTIVE_ONLY": False, "DELETED_ONLY": True, "ALL": None}


def view_type(value: str | None) -> bool | None:
    """MLflow's ViewType as loopml's `deleted` flag (ACTIVE_ONLY when absent)."""
    if value is None:
        return False
    if value not in _VIEWS:
        raise InvalidInput(f"Invalid view type {value!r}: expected one of {', '.join(_VIEWS)}")
    return _VIEWS[value]


def _translate(kind: str, key: str) -> tuple[str, str]:
    if kind == "attribute":
        if key in _UNSUPPORTED:
            raise InvalidFilter(
                f"attributes.{key} cannot be searched on this server"
                + ("; use run_view_type to choose live or deleted runs" if key == "lifecycle_stage" else "")
            )
        if key == "created":
            return "attribute", "start_time"
        if key == "user_id":
            return "tag", USER_TAG
    if kind == "tag" and key == RUN_NAME_TAG:
        return "attribute", "run_name"
    if kind == "tag" and key == PARENT_TAG:
        return "attribute", "parent_run_id"
    return kind, key


def run_filter(text: str | None) -> SearchFilter:
    parsed = parse_filter(text, MLFLOW_RUN_FIELDS)
    translated = []
    for comparison in parsed.comparisons:
        kind, key = _translate(comparison.kind, comparison.key)
        translated.append(Comparison(kind, key, comparison.op, comparison.value))  # type: ignore[arg-type]
    return SearchFilter(tuple(translated))


def _with_prefix(item: str) -> str:
    head = item.strip().split(" ", 1)[0]
    if "." not in head and "`" not in head and '"' not in head and head:
        return f"attributes.{item.strip()}"
    return item


def run_order(items: Sequence[str]) -> tuple[OrderBy, ...]:
    parsed = parse_order_by([_with_prefix(item) for item in items], MLFLOW_RUN_FIELDS)
    ordered = []
    for item in parsed:
        kind, key = _translate(item.kind, item.key)
        ordered.append(OrderBy(kind, key, item.ascending))  # type: ignore[arg-type]
    return tuple(ordered)


EXPERIMENT_FIELDS = SearchFields(
    prefixes={"tags": "tag", "tag": "tag", "attributes": "attribute", "attribute": "attribute"},
    attributes=frozenset({"name", "creation_time", "last_update_time"}),
    numeric_attributes=frozenset({"creation_time", "last_update_time"}),
)


_BARE = re.compile(r"(?i)(?:^|(?<=\s))(?:and\s+)?([a-z_]+)(?=\s*(?:[=!<>]|like\b|ilike\b|in\b|not\b))")


def prefix_bare_names(text: str, names: frozenset[str]) -> str:
    """`name LIKE 'a%' and tags.t = 'x'` -> `attributes.name LIKE ...`: MLflow takes bare attribute names in
    experiment filters. Quoted text is left alone."""
    out: list[str] = []
    quote: str | None = None
    segment_start = 0
    for index, char in enumerate(text + "\0"):
        if quote is None and (char in "'\"`" or index == len(text)):
            out.append(_BARE.sub(lambda m: _prefixed(m, names), text[segment_start:index]))
            quote = char if index < len(text) else None
            segment_start = index
        elif quote is not None and char == quote:
            quote = None
            out.append(text[segment_start : index + 1])
            segment_start = index + 1
    if quote is not None:
        out.append(text[segment_start:])
    return "".join(out)


def _prefixed(match: re.Match[str], names: frozenset[str]) -> str:
    whole, word = match.group(0), match.group(1)
    if word.lower() not in names:
        return whole
    return whole[: match.start(1) - match.start(0)] + "attributes." + word


def _experiment_value(experiment: Experiment, kind: str, key: str) -> str | int | None:
    if kind == "tag":
        return experiment.tags.get(key)
    if key == "name":
        return experiment.name
    if key == "creation_time":
        return experiment.created_at
    return experiment.updated_at or experiment.created_at


def _like(pattern: str, text: str, fold: bool) -> bool:
    regex = []
    escaped = False
    for char in pattern:
        if escaped:
            regex.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            regex.append(".*")
        elif char == "_":
            regex.append(".")
        else:
            regex.append(re.escape(char))
    flags = re.DOTALL | (re.IGNORECASE if fold else 0)
    return re.fullmatch("".join(regex), text, flags) is not None


def _holds(comparison: Comparison, value: str | int | None) -> bool:
    if value is None:  # as for runs: a comparison only matches what has the key
        return False
    wanted = comparison.value
    op = comparison.op
    if op == "IN":
        return isinstance(wanted, tuple) and value in wanted
    if op == "NOT IN":
        return isinstance(wanted, tuple) and value not in wanted
    if op in ("LIKE", "ILIKE"):
        return isinstance(wanted, str) and isinstance(value, str) and _like(wanted, value, op == "ILIKE")
    if isinstance(wanted, tuple) or isinstance(wanted, str) != isinstance(value, str):
        return False
    checks: dict[str, Callable[[Any, Any], bool]] = {
        "=": operator.eq,
        "!=": operator.ne,
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    }
    return checks[op](value, wanted)


def _sort_key(item: OrderBy) -> Callable[[Experiment], Any]:
    return lambda experiment: _experiment_value(experiment, item.kind, item.key)


def select_experiments(found: list[Experiment], text: str | None, order_by: Sequence[str]) -> list[Experiment]:
    """MLflow's experiment search over the experiments a caller can see (a few per project, so filtered here
    with the run search's grammar and semantics rather than in SQL). Default order: newest first."""
    parsed = parse_filter(prefix_bare_names(text, EXPERIMENT_FIELDS.attributes) if text else text, EXPERIMENT_FIELDS)
    kept = [e for e in found if all(_holds(c, _experiment_value(e, c.kind, c.key)) for c in parsed.comparisons)]
    order = parse_order_by([_with_prefix(item) for item in order_by], EXPERIMENT_FIELDS)
    kept.sort(key=lambda e: e.id)
    if not order:
        kept.sort(key=lambda e: e.created_at, reverse=True)
    for item in reversed(order):  # stable sorts, least significant key first; missing keys last
        present = [e for e in kept if _experiment_value(e, item.kind, item.key) is not None]
        missing = [e for e in kept if _experiment_value(e, item.kind, item.key) is None]
        present.sort(key=_sort_key(item), reverse=not item.ascending)
        kept = present + missing
    return kept

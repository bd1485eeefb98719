"""Compile a parsed model or model-version search (`MODEL_FIELDS`, `MODEL_VERSION_FIELDS` in
`loopml.domain.search`) to one SQL SELECT, in the style of `loopml.store.run_search`:

- every comparison is evaluated by the database; tag and metric comparisons are one uncorrelated
  ``IN (SELECT ...)`` per key, and only match rows that have the key (a NaN metric matches nothing);
- strings compare and sort in code-point order on both backends; numbers are bound by the literal's type;
- each tag or metric order-by item is a LEFT OUTER JOIN, rows without the key sort last either way, a NaN
  metric after every number;
- every order ends with the primary key, so pages are deterministic. Without order-by items: models by
  name; versions by model name, then newest version first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, select, tuple_

from loopml.domain.search import Comparison, OrderBy, SearchFilter
from loopml.errors import InvalidInput
from loopml.store.run_search import code_point_order, compare, direction
from loopml.store.schema import (
    model_version_metrics,
    model_version_tags,
    model_versions,
    projects,
    registered_model_tags,
    registered_models,
)

__all__ = ["build_model_search", "build_version_search"]

_MODEL_ATTRIBUTES: dict[str, ColumnElement[Any]] = {
    "name": registered_models.c.name,
    "created_at": registered_models.c.created_at,
    "updated_at": registered_models.c.updated_at,
}
_VERSION_ATTRIBUTES: dict[str, ColumnElement[Any]] = {
    "name": registered_models.c.name,
    "version": model_versions.c.version,
    "run_id": model_versions.c.run_id,
    "status": model_versions.c.status,
    "flavor": model_versions.c.flavor,
    "created_at": model_versions.c.created_at,
}
_STRING_ATTRIBUTES = frozenset({"name", "run_id", "status", "flavor"})


def _check_page(limit: int, offset: int) -> None:
    if limit < 0 or offset < 0:
        raise InvalidInput(f"limit and offset must be >= 0, got limit={limit}, offset={offset}")


def _attribute(comparison: Comparison, columns: dict[str, ColumnElement[Any]]) -> ColumnElement[bool]:
    return compare(comparison, columns[comparison.key], comparison.key in _STRING_ATTRIBUTES)


def _by_key(search: SearchFilter) -> dict[tuple[str, str], list[Comparison]]:
    grouped: dict[tuple[str, str], list[Comparison]] = {}
    for comparison in search.comparisons:
        if comparison.kind != "attribute":
            grouped.setdefault((comparison.kind, comparison.key), []).append(comparison)
    return grouped


def _attribute_sort(item: OrderBy, columns: dict[str, ColumnElement[Any]]) -> ColumnElement[Any]:
    column = columns[item.key]
    if item.key in _STRING_ATTRIBUTES:
        column = code_point_order(column)
    return direction(column, item.ascending)


def build_model_search(
    project: str | None,
    search: SearchFilter,
    order_by: Sequence[OrderBy],
    limit: int,
    offset: int,
) -> Select[Any]:
    """A SELECT of ``registered_models.id`` for the matching models (of `project`, or of every project)."""
    _check_page(limit, offset)
    source: Any = registered_models.join(projects, projects.c.id == registered_models.c.project_id)
    conditions: list[ColumnElement[bool]] = []
    if project is not None:
        conditions.append(projects.c.name == project)
    for comparison in search.comparisons:
        if comparison.kind == "attribute":
            conditions.append(_attribute(comparison, _MODEL_ATTRIBUTES))
    for (_kind, key), terms in _by_key(search).items():
        table = registered_model_tags
        matching = select(table.c.model_id).where(table.c.key == key, *(compare(t, table.c.value, True) for t in terms))
        conditions.append(registered_models.c.id.in_(matching))
    sort_keys: list[ColumnElement[Any]] = []
    for index, item in enumerate(order_by):
        if item.kind == "attribute":
            sort_keys.append(_attribute_sort(item, _MODEL_ATTRIBUTES))
            continue
        joined = registered_model_tags.alias(f"order_{index}")
        source = source.outerjoin(joined, and_(joined.c.model_id == registered_models.c.id, joined.c.key == item.key))
        sort_keys.append(joined.c.model_id.is_(None))
        sort_keys.append(direction(code_point_order(joined.c.value), item.ascending))
    if not order_by:
        sort_keys.append(code_point_order(registered_models.c.name).asc())
    sort_keys.append(registered_models.c.id.asc())
    query = select(registered_models.c.id).select_from(source).where(*conditions)
    return query.order_by(*sort_keys).limit(limit).offset(offset)


def build_version_search(
    project: str | None,
    model_id: int | None,
    search: SearchFilter,
    order_by: Sequence[OrderBy],
    limit: int,
    offset: int,
) -> Select[Any]:
    """A SELECT of ``(model_id, version)`` for the matching versions (of one model, of `project`, or all)."""
    _check_page(limit, offset)
    source: Any = model_versions.join(registered_models, registered_models.c.id == model_versions.c.model_id).join(
        projects, projects.c.id == registered_models.c.project_id
    )
    conditions: list[ColumnElement[bool]] = []
    if project is not None:
        conditions.append(projects.c.name == project)
    if model_id is not None:
        conditions.append(model_versions.c.model_id == model_id)
    key = tuple_(model_versions.c.model_id, model_versions.c.version)
    for comparison in search.comparisons:
        if comparison.kind == "attribute":
            conditions.append(_attribute(comparison, _VERSION_ATTRIBUTES))
    for (kind, name), terms in _by_key(search).items():
        table: Table = model_version_metrics if kind == "metric" else model_version_tags
        matching = select(table.c.model_id, table.c.version).where(
            table.c.key == name, *(compare(t, table.c.value, kind != "metric") for t in terms)
        )
        conditions.append(key.in_(matching))
    sort_keys: list[ColumnElement[Any]] = []
    for index, item in enumerate(order_by):
        if item.kind == "attribute":
            sort_keys.append(_attribute_sort(item, _VERSION_ATTRIBUTES))
            continue
        joined = (model_version_metrics if item.kind == "metric" else model_version_tags).alias(f"order_{index}")
        source = source.outerjoin(
            joined,
            and_(
                joined.c.model_id == model_versions.c.model_id,
                joined.c.version == model_versions.c.version,
                joined.c.key == item.key,
            ),
        )
        sort_keys.append(joined.c.model_id.is_(None))
        if item.kind == "metric":
            sort_keys.append(joined.c.is_nan)
            sort_keys.append(direction(joined.c.value, item.ascending))
        else:
            sort_keys.append(direction(code_point_order(joined.c.value), item.ascending))
    if not order_by:
        sort_keys += [code_point_order(registered_models.c.name).asc(), model_versions.c.version.desc()]
    sort_keys += [model_versions.c.model_id.asc(), model_versions.c.version.asc()]
    query = select(model_versions.c.model_id, model_versions.c.version).select_from(source).where(*conditions)
    return query.order_by(*sort_keys).limit(limit).offset(offset)

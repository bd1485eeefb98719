"""The definitions a user writes in a Python file: entities, sources, feature views, on-demand views and
feature services. Constructors only store and check configuration; `spec()` is the canonical JSON form that
is stored, diffed and hashed (the digest names a version)."""

from __future__ import annotations

import hashlib
import inspect
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeAlias

import orjson

from loopml.domain.features import DefinitionKind
from loopml.errors import InvalidInput

DTYPES = ("int", "float", "string", "bool", "timestamp")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_TTL = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def check_identifier(kind: str, name: object) -> str:
    """Names of definitions and columns end up in SQL and in keys: letters, digits and `_` only."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"{kind} name must start with a letter or `_` and hold only letters, digits and `_` "
            f"(at most 128 characters), got {name!r}"
        )
    return name


def ttl_seconds(ttl: object, owner: str) -> int | None:
    """A TTL given as a `timedelta`, a string such as "2h" / "30m" / "7d", or None (no limit)."""
    if ttl is None:
        return None
    if isinstance(ttl, timedelta):
        seconds = ttl.total_seconds()
        if seconds <= 0 or seconds != int(seconds):
            raise InvalidInput(f"{owner}: ttl must be a positive whole number of seconds, got {ttl!r}")
        return int(seconds)
    if isinstance(ttl, str):
        match = _TTL.match(ttl)
        if match and int(match.group(1)) > 0:
            return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise InvalidInput(
        f"{owner}: ttl must be a datetime.timedelta or a string such as '90s', '30m', '2h', '7d' or '1w' "
        f"(or None for no limit), got {ttl!r} of type {type(ttl).__name__}"
    )


@dataclass(frozen=True)
class Entity:
    """What features are about (a station, a customer), and the columns that identify one."""

    name: str
    join_keys: Sequence[str]
    description: str = ""

    def __post_init__(self) -> None:
        check_identifier("entity", self.name)
        if isinstance(self.join_keys, str) or not isinstance(self.join_keys, Sequence) or not self.join_keys:
            raise InvalidInput(f"entity {self.name!r}: join_keys must be a non-empty list of column names")
        for key in self.join_keys:
            check_identifier(f"entity {self.name!r}: join key", key)
        if len(set(self.join_keys)) != len(self.join_keys):
            raise InvalidInput(f"entity {self.name!r}: join_keys repeat a column: {list(self.join_keys)}")

    kind: DefinitionKind = field(default="entity", init=False, repr=False)

    def spec(self) -> dict[str, Any]:
        return {"join_keys": list(self.join_keys), "description": self.description}


@dataclass(frozen=True)
class Field:
    """One feature column and its type: "int", "float", "string", "bool" or "timestamp"."""

    name: str
    dtype: str
    default: Any = None
    """Value served online for an entity that has no row (None: the lookup reports it missing)."""

    def __post_init__(self) -> None:
        check_identifier("field", self.name)
        if self.dtype not in DTYPES:
            raise InvalidInput(f"field {self.name!r}: dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")


@dataclass(frozen=True)
class FileSource:
    """A Parquet or CSV file (or a glob of them) with an event timestamp and, optionally, a created one."""

    path: str
    timestamp: str
    created: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path or "\x00" in self.path:
            raise InvalidInput(f"FileSource path must be a non-empty string, got {self.path!r}")
        _check_times(self)

    def spec(self) -> dict[str, Any]:
        return {"type": "file", "path": self.path, "timestamp": self.timestamp, "created": self.created}


@dataclass(frozen=True)
class PostgresSource:
    """The rows of a SQL query on PostgreSQL. The connection URL is read from the environment variable
    named by `url_env` when the source is read, so no password is ever stored with the definition."""

    query: str
    timestamp: str
    created: str | None = None
    url_env: str = "LOOPML_FEATURES_DATABASE_URL"

    def __post_init__(self) -> None:
        if not isinstance(self.query, str) or not self.query.strip():
            raise InvalidInput("PostgresSource query must be a non-empty SQL string")
        if ";" in self.query.strip().rstrip(";"):
            raise InvalidInput("PostgresSource query must be one SELECT statement (it holds a ';')")
        check_identifier("PostgresSource url_env", self.url_env)
        _check_times(self)

    def spec(self) -> dict[str, Any]:
        return {
            "type": "postgres",
            "query": self.query.strip().rstrip(";"),
            "timestamp": self.timestamp,
            "created": self.created,
            "url_env": self.url_env,
        }


@dataclass(frozen=True)
class DatasetSource:
    """A dataset logged to loopml (by its sha256 digest); its file is read and checked against the digest."""

    digest: str
    timestamp: str
    created: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.digest, str) or not re.fullmatch(r"[0-9a-f]{64}", self.digest):
            raise InvalidInput(f"DatasetSource digest must be 64 lowercase hex characters, got {self.digest!r}")
        _check_times(self)

    def spec(self) -> dict[str, Any]:
        return {"type": "dataset", "digest": self.digest, "timestamp": self.timestamp, "created": self.created}


Source: TypeAlias = FileSource | PostgresSource | DatasetSource


def _check_times(source: Source) -> None:
    check_identifier(f"{type(source).__name__} timestamp column", source.timestamp)
    if source.created is not None:
        check_identifier(f"{type(source).__name__} created column", source.created)
        if source.created == source.timestamp:
            raise InvalidInput(f"{type(source).__name__}: the created column must differ from the timestamp column")


@dataclass(frozen=True)
class FeatureView:
    """Features of some entities, read from a source, each row valid from its timestamp for `ttl`."""

    name: str
    entities: Sequence[Entity]
    source: Source
    schema: Sequence[Field]
    ttl: timedelta | str | None = None
    online: bool = True
    description: str = ""

    kind: DefinitionKind = field(default="feature_view", init=False, repr=False)

    def __post_init__(self) -> None:
        check_identifier("feature view", self.name)
        if isinstance(self.entities, Entity) or not self.entities:
            raise InvalidInput(f"feature view {self.name!r}: entities must be a non-empty list of Entity")
        for entity in self.entities:
            if not isinstance(entity, Entity):
                raise InvalidInput(f"feature view {self.name!r}: {entity!r} is not an Entity")
        if not isinstance(self.source, FileSource | PostgresSource | DatasetSource):
            raise InvalidInput(
                f"feature view {self.name!r}: source must be a FileSource, PostgresSource or DatasetSource, "
                f"got {type(self.source).__name__}"
            )
        if isinstance(self.schema, Field) or not self.schema:
            raise InvalidInput(f"feature view {self.name!r}: schema must be a non-empty list of Field")
        names = [f.name for f in self.schema if isinstance(f, Field)]
        if len(names) != len(self.schema):
            raise InvalidInput(f"feature view {self.name!r}: every schema entry must be a Field")
        if len(set(names)) != len(names):
            raise InvalidInput(f"feature view {self.name!r}: the schema names a field twice: {names}")
        clash = set(names) & (set(self.join_keys) | {self.source.timestamp, self.source.created})
        if clash:
            raise InvalidInput(f"feature view {self.name!r}: {sorted(clash)} are keys or timestamps, not features")
        ttl_seconds(self.ttl, f"feature view {self.name!r}")

    @property
    def join_keys(self) -> list[str]:
        return [key for entity in self.entities for key in entity.join_keys]

    @property
    def ttl_seconds(self) -> int | None:
        return ttl_seconds(self.ttl, f"feature view {self.name!r}")

    def spec(self) -> dict[str, Any]:
        return {
            "entities": [entity.name for entity in self.entities],
            "join_keys": self.join_keys,
            "source": self.source.spec(),
            "schema": [[f.name, f.dtype, f.default] for f in self.schema],
            "ttl_seconds": self.ttl_seconds,
            "online": bool(self.online),
            "description": self.description,
        }


@dataclass(frozen=True)
class OnDemandFeatureView:
    """Features computed from other features by a Python function over the joined frame, the same way in
    training and online. The function takes a pandas DataFrame holding the `inputs` (plain feature names)
    and returns one with the `schema` columns; it must be self-contained (import inside it), since its
    source is stored and run again wherever features are read."""

    name: str
    inputs: Sequence[str]
    function: Callable[..., Any]
    schema: Sequence[Field]

    kind: DefinitionKind = field(default="on_demand_view", init=False, repr=False)

    def __post_init__(self) -> None:
        check_identifier("on-demand view", self.name)
        if isinstance(self.inputs, str) or not self.inputs:
            raise InvalidInput(f"on-demand view {self.name!r}: inputs must be a non-empty list of 'view:feature'")
        for ref in self.inputs:
            parse_ref(ref)
        if not callable(self.function):
            raise InvalidInput(f"on-demand view {self.name!r}: function must be a Python function")
        if isinstance(self.schema, Field) or not self.schema or not all(isinstance(f, Field) for f in self.schema):
            raise InvalidInput(f"on-demand view {self.name!r}: schema must be a non-empty list of Field")
        function_source(self.function, self.name)

    def spec(self) -> dict[str, Any]:
        return {
            "inputs": list(self.inputs),
            "function": function_source(self.function, self.name),
            "function_name": self.function.__name__,
            "schema": [[f.name, f.dtype, f.default] for f in self.schema],
        }


@dataclass(frozen=True)
class FeatureService:
    """A named set of features, the ones one model uses (`view:feature` references or whole views)."""

    name: str
    features: Sequence[str | FeatureView | OnDemandFeatureView]
    description: str = ""

    kind: DefinitionKind = field(default="feature_service", init=False, repr=False)

    def __post_init__(self) -> None:
        check_identifier("feature service", self.name)
        if isinstance(self.features, str) or not self.features:
            raise InvalidInput(f"feature service {self.name!r}: features must be a non-empty list")
        self.refs()

    def refs(self) -> list[str]:
        refs: list[str] = []
        for item in self.features:
            if isinstance(item, FeatureView | OnDemandFeatureView):
                refs.extend(f"{item.name}:{f.name}" for f in item.schema)
            elif isinstance(item, str):
                parse_ref(item)
                refs.append(item)
            else:
                raise InvalidInput(f"feature service {self.name!r}: {item!r} is not a 'view:feature' or a view")
        return refs

    def spec(self) -> dict[str, Any]:
        return {"features": self.refs(), "description": self.description}


Definition: TypeAlias = Entity | FeatureView | OnDemandFeatureView | FeatureService


def parse_ref(ref: object) -> tuple[str, str]:
    """'view:feature' -> (view, feature)."""
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise InvalidInput(f"a feature reference is 'view:feature', got {ref!r}")
    view, feature = ref.split(":")
    check_identifier("feature view", view)
    check_identifier("feature", feature)
    return view, feature


def function_source(function: Callable[..., Any], owner: str) -> str:
    try:
        return textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        raise InvalidInput(
            f"on-demand view {owner!r}: the source of its function cannot be read; define it with `def` in the "
            "definitions file"
        ) from None


def digest(kind: str, name: str, spec: dict[str, Any]) -> str:
    canonical = orjson.dumps({"kind": kind, "name": name, "spec": spec}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()

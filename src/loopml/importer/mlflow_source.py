"""Reading an MLflow tracking store (its SQLite database and artifact directory) without importing mlflow.

The database is opened read-only: the import never changes the store it copies. Artifacts are found under
the directory given by the user, by the layout every MLflow artifact root shares
(`<experiment id>/<run id>/artifacts/...` and, for MLflow 3 logged models,
`<experiment id>/models/<model id>/artifacts/...`), whatever scheme the stored URIs carry
(`mlflow-artifacts:/`, `file://`, a plain path): only files under that directory are ever read.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from loopml.errors import InvalidInput

__all__ = [
    "MlflowExperiment",
    "MlflowModelVersion",
    "MlflowRegisteredModel",
    "MlflowRun",
    "MlflowSource",
    "RunMetrics",
]


@dataclass(frozen=True, slots=True)
class MlflowExperiment:
    id: str
    name: str
    artifact_location: str
    created_at: int | None
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class MlflowRun:
    id: str
    experiment_id: str
    name: str
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    parent_run_id: str | None


@dataclass(frozen=True, slots=True)
class RunMetrics:
    """Every metric point of one run, in columns (NaN where MLflow flagged `is_nan`)."""

    keys: list[str]
    values: list[float]
    steps: list[int]
    timestamps: list[int]


@dataclass(frozen=True, slots=True)
class MlflowRegisteredModel:
    name: str
    description: str
    created_at: int | None
    tags: dict[str, str]
    aliases: dict[str, int]


@dataclass(frozen=True, slots=True)
class MlflowModelVersion:
    name: str
    version: int
    run_id: str | None
    source: str
    storage_location: str | None
    stage: str
    status: str
    description: str
    created_at: int | None
    tags: dict[str, str]


_IN_CHUNK = 500  # ids per IN (...) list: far below SQLite's bound on host parameters


def _database_path(source: str) -> Path:
    if not source.startswith("sqlite:"):
        scheme = source.split(":", 1)[0] if ":" in source else "a path"
        raise InvalidInput(
            f"--from {source!r}: loopml imports MLflow stores in SQLite (sqlite:///path/to/mlflow.db), not {scheme}; "
            "for a PostgreSQL or MySQL store, import from a SQLite copy"
        )
    parsed = urlparse(source)
    if parsed.netloc not in ("", "localhost"):
        raise InvalidInput(f"--from {source!r}: a sqlite URL names a local file (sqlite:///path/to/mlflow.db)")
    raw = unquote(parsed.path)
    # sqlite:///relative.db -> "/relative.db"; sqlite:////abs.db -> "//abs.db" (SQLAlchemy's convention)
    path = Path(raw[1:]) if raw.startswith("/") else Path(raw)
    if not path.is_file():
        raise InvalidInput(f"--from {source!r}: no such file {str(path)!r}")
    return path


class MlflowSource:
    """An MLflow store opened read-only: `sqlite:///mlflow.db` plus the artifact directory (may be None)."""

    def __init__(self, source: str, artifacts: str | Path | None) -> None:
        self.path = _database_path(source)
        self.artifacts = None if artifacts is None else Path(artifacts).resolve()
        if self.artifacts is not None and not self.artifacts.is_dir():
            raise InvalidInput(f"--artifacts {str(artifacts)!r}: no such directory")
        self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        try:
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise InvalidInput(f"--from {source!r}: not a SQLite database ({exc})") from None
        missing = {"experiments", "runs", "metrics", "params", "tags"} - tables
        if missing:
            self._db.close()
            raise InvalidInput(
                f"--from {source!r}: not an MLflow tracking store (no table {', '.join(sorted(missing))})"
            )
        self._tables = tables

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> MlflowSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _has(self, table: str) -> bool:
        return table in self._tables

    # -- tracking ------------------------------------------------------------------------------------

    def experiments(self) -> list[MlflowExperiment]:
        """The active experiments (deleted ones are not imported)."""
        tags: dict[str, dict[str, str]] = {}
        if self._has("experiment_tags"):
            for key, value, experiment_id in self._db.execute("SELECT key, value, experiment_id FROM experiment_tags"):
                tags.setdefault(str(experiment_id), {})[key] = value or ""
        rows = self._db.execute(
            "SELECT experiment_id, name, artifact_location, creation_time FROM experiments "
            "WHERE lifecycle_stage = 'active' ORDER BY experiment_id"
        )
        return [MlflowExperiment(str(i), n, loc or "", t, tags.get(str(i), {})) for i, n, loc, t in rows]

    def count_runs(self) -> tuple[int, int]:
        """(active runs of active experiments, their metric points)."""
        runs, points = self._db.execute(
            "SELECT count(*), (SELECT count(*) FROM metrics) FROM runs r JOIN experiments e "
            "ON e.experiment_id = r.experiment_id WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active'"
        ).fetchone()
        return int(runs), int(points)

    def count_deleted_runs(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM runs WHERE lifecycle_stage != 'active'").fetchone()[0])

    def runs(self) -> list[MlflowRun]:
        """The active runs of active experiments, parents before their children (by start time)."""
        parent_of = dict(self._db.execute("SELECT run_uuid, value FROM tags WHERE key = 'mlflow.parentRunId'"))
        rows = self._db.execute(
            "SELECT r.run_uuid, r.experiment_id, r.name, r.status, r.start_time, r.end_time, r.artifact_uri "
            "FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id "
            "WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' "
            "ORDER BY r.start_time, r.run_uuid"
        )
        return [
            MlflowRun(run_id, str(exp), name or "", status or "FINISHED", start, end, uri or "", parent_of.get(run_id))
            for run_id, exp, name, status, start, end, uri in rows
        ]

    def _by_run(self, sql: str, run_ids: Sequence[str]) -> Iterator[tuple[object, ...]]:
        for i in range(0, len(run_ids), _IN_CHUNK):
            chunk = list(run_ids[i : i + _IN_CHUNK])
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(sql.format(marks=marks), chunk).fetchall()

    def params(self, run_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for key, value, run_id in self._by_run(
            "SELECT key, value, run_uuid FROM params WHERE run_uuid IN ({marks})", run_ids
        ):
            found.setdefault(str(run_id), {})[str(key)] = str(value)
        return found

    def tags(self, run_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for key, value, run_id in self._by_run(
            "SELECT key, value, run_uuid FROM tags WHERE run_uuid IN ({marks})", run_ids
        ):
            found.setdefault(str(run_id), {})[str(key)] = "" if value is None else str(value)
        return found

    def metrics(self, run_ids: Sequence[str]) -> dict[str, RunMetrics]:
        """Every point of the runs, in the order the store returns them (loopml orders history on read)."""
        # One query per run walks MLflow's (run_uuid, key, step) index; the columns come out of zip() in C,
        # never one Python step per point (NaN is fixed up only in runs that have one).
        sql = "SELECT key, CASE WHEN is_nan THEN NULL ELSE value END, step, timestamp FROM metrics WHERE run_uuid = ?"
        found: dict[str, RunMetrics] = {}
        for run_id in run_ids:
            rows = self._db.execute(sql, (run_id,)).fetchall()
            if not rows:
                continue
            keys, values, steps, stamps = (list(column) for column in zip(*rows, strict=True))
            if None in values:
                values = [math.nan if v is None else v for v in values]
            found[run_id] = RunMetrics(keys=keys, values=values, steps=steps, timestamps=stamps)
        return found

    # -- registry ------------------------------------------------------------------------------------

    def registered_models(self) -> list[MlflowRegisteredModel]:
        if not self._has("registered_models"):
            return []
        tags: dict[str, dict[str, str]] = {}
        for key, value, name in self._db.execute("SELECT key, value, name FROM registered_model_tags"):
            tags.setdefault(name, {})[key] = value or ""
        aliases: dict[str, dict[str, int]] = {}
        if self._has("registered_model_aliases"):
            for alias, version, name in self._db.execute("SELECT alias, version, name FROM registered_model_aliases"):
                aliases.setdefault(name, {})[alias] = int(version)
        rows = self._db.execute("SELECT name, description, creation_time FROM registered_models ORDER BY name")
        return [MlflowRegisteredModel(n, d or "", t, tags.get(n, {}), aliases.get(n, {})) for n, d, t in rows]

    def model_versions(self, name: str) -> list[MlflowModelVersion]:
        tags: dict[int, dict[str, str]] = {}
        for key, value, version in self._db.execute(
            "SELECT key, value, version FROM model_version_tags WHERE name = ?", (name,)
        ):
            tags.setdefault(int(version), {})[key] = value or ""
        has_location = "storage_location" in {r[1] for r in self._db.execute("PRAGMA table_info(model_versions)")}
        location = "storage_location" if has_location else "NULL"
        rows = self._db.execute(
            f"SELECT version, run_id, source, {location}, current_stage, status, description, creation_time "  # noqa: S608 (a column name of ours)
            "FROM model_versions WHERE name = ? ORDER BY version",
            (name,),
        )
        return [
            MlflowModelVersion(
                name=name,
                version=int(version),
                run_id=run_id or None,
                source=source or "",
                storage_location=storage or None,
                stage=stage or "None",
                status=status or "READY",
                description=description or "",
                created_at=created,
                tags=tags.get(int(version), {}),
            )
            for version, run_id, source, storage, stage, status, description, created in rows
        ]

    def logged_model_location(self, model_id: str) -> tuple[str, str] | None:
        """(experiment id, artifact location) of an MLflow 3 logged model, if the store has it."""
        if not self._has("logged_models"):
            return None
        row = self._db.execute(
            "SELECT experiment_id, artifact_location FROM logged_models WHERE model_id = ?", (model_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    # -- artifacts -----------------------------------------------------------------------------------

    def run_directory(self, run_id: str) -> Path | None:
        """The local artifact directory of run `run_id` (see `local_directory`)."""
        row = self._db.execute("SELECT experiment_id, artifact_uri FROM runs WHERE run_uuid = ?", (run_id,)).fetchone()
        return None if row is None else self.local_directory(row[1] or "", str(row[0]), run_id)

    def local_directory(self, uri: str, experiment_id: str, owner: str) -> Path | None:
        """The directory under `--artifacts` that holds `uri` (a run's or logged model's artifact location).

        `owner` is the run id or `models` (logged models). None when no artifacts directory was given or the
        directory does not exist (a run that logged no artifact has none)."""
        if self.artifacts is None or not uri:
            return None
        parsed = urlparse(uri)
        path = unquote(parsed.path if parsed.scheme else uri)
        parts = PurePosixPath(path.replace("\\", "/")).parts
        start = next(
            (
                i
                for i in range(len(parts) - 1, -1, -1)
                if parts[i] == experiment_id and parts[i + 1 : i + 2] == (owner,)
            ),
            None,
        )
        if start is None:
            return None
        relative = parts[start:]
        if any(p in ("..", "") or "\x00" in p for p in relative):
            return None
        directory = (self.artifacts.joinpath(*relative)).resolve()
        if not directory.is_relative_to(self.artifacts) or not directory.is_dir():
            return None
        return directory

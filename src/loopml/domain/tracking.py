"""Experiment tracking vocabulary. Times are integer milliseconds since the Unix epoch (as in MLflow)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")


class RunStatus(str, enum.Enum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Experiment:
    id: int
    project: str
    name: str
    created_at: int
    deleted_at: int | None = None
    """When the experiment was deleted (it and the runs deleted with it can be restored); None if it is not."""
    updated_at: int | None = None
    """The last rename, tag change, deletion or restoration; None if there was none."""
    tags: dict[str, str] = field(default_factory=dict)


class Metric(NamedTuple):
    """One metric point. A NamedTuple rather than a frozen dataclass: it is built once per logged point,
    on the ingest hot path, and a NamedTuple is five times cheaper to create while just as immutable."""

    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class MetricColumns:
    """A batch of metric points as four equal-length columns: how points travel and are stored in bulk,
    without one Python object per point."""

    keys: Sequence[str]
    values: Sequence[float]
    steps: Sequence[int]
    timestamps: Sequence[int]

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_points(cls, points: Iterable[tuple[str, float, int, int]]) -> MetricColumns:
        listed = list(points)
        if not listed:
            return cls((), (), (), ())
        keys, values, steps, timestamps = zip(*listed, strict=True)
        return cls(keys, values, steps, timestamps)


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    experiment_id: int
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    """Latest value of each metric (highest step, then latest timestamp)."""
    tags: dict[str, str] = field(default_factory=dict)
    deleted_at: int | None = None
    """When the run was deleted (searches leave it out; it can be restored); None if it is not."""
    metric_points: dict[str, Metric] = field(default_factory=dict, compare=False)
    """The latest point of each metric, with its step and timestamp (`metrics` holds the values only)."""


@dataclass(frozen=True, slots=True)
class DatasetInput:
    """What a client sends to log a dataset: a fingerprint, never the data itself."""

    name: str
    digest: str
    schema: tuple[tuple[str, str], ...]
    rows: int
    source: str
    role: str


@dataclass(frozen=True, slots=True)
class Dataset:
    """One dataset version: the same content logged twice is one Dataset (same digest)."""

    digest: str
    name: str
    schema: tuple[tuple[str, str], ...]
    rows: int
    source: str
    created_at: int
    role: str | None = None
    """The role in a given run (training, validation, test, reference) when read through a run."""


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    run_id: str
    path: str
    digest: str
    size: int
    created_at: int


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str | None

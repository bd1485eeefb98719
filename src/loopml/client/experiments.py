"""Experiments: named groups of runs in a project (`client.experiments`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from loopml.api import tracking as ops
from loopml.api.tracking import ViewType
from loopml.domain import Experiment
from loopml.errors import ExperimentNotFound, InvalidInput

if TYPE_CHECKING:
    from loopml.client.backend import Backend
    from loopml.client.client import Client


class Experiments:
    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def list(self, project: str | None = None, view_type: ViewType = "active_only") -> list[Experiment]:
        """The experiments (of `project` if given): live ones, or `view_type` "deleted_only" or "all"."""
        return self._backend.call(ops.LIST_EXPERIMENTS, project=project, deleted=_deleted(view_type))

    def get(self, experiment_id: int) -> Experiment:
        return self._backend.call(ops.GET_EXPERIMENT, experiment_id=experiment_id)

    def find(self, name: str, project: str | None = None) -> Experiment:
        return find_experiment(self._backend, name, project)

    def get_or_create(self, name: str, project: str | None = None) -> Experiment:
        return self._backend.call(ops.GET_OR_CREATE_EXPERIMENT, name=name, project=project)

    def rename(self, experiment_id: int, name: str) -> Experiment:
        """Rename an experiment; `AlreadyExists` if its project has another experiment of that name."""
        return self._backend.call(ops.RENAME_EXPERIMENT, experiment_id=experiment_id, name=name)

    def delete(self, experiment_id: int) -> Experiment:
        """Delete an experiment and its live runs (soft: `restore` brings both back); returns it, deleted."""
        return self._backend.call(ops.DELETE_EXPERIMENT, experiment_id=experiment_id)

    def restore(self, experiment_id: int) -> Experiment:
        """Restore a deleted experiment and the runs that were deleted with it."""
        return self._backend.call(ops.RESTORE_EXPERIMENT, experiment_id=experiment_id)

    def set_tags(self, experiment_id: int, tags: Mapping[str, object]) -> Experiment:
        return self._backend.call(ops.SET_EXPERIMENT_TAGS, experiment_id=experiment_id, tags=tags)

    def delete_tag(self, experiment_id: int, key: str) -> Experiment:
        return self._backend.call(ops.DELETE_EXPERIMENT_TAG, experiment_id=experiment_id, key=key)


def _deleted(view_type: str) -> bool | None:
    """The service's `deleted` argument of a view type (`InvalidInput` for an unknown one)."""
    views: dict[str, bool | None] = {"active_only": False, "deleted_only": True, "all": None}
    if view_type not in views:
        raise InvalidInput(f"view_type must be one of {', '.join(views)}, got {view_type!r}")
    return views[view_type]


def find_experiment(backend: Backend, name: str, project: str | None = None) -> Experiment:
    """The experiment `name` of `project` (the default project if None); `ExperimentNotFound` if there is none."""
    found = backend.call(ops.LIST_EXPERIMENTS, name=name, project=project)
    if not found:
        raise ExperimentNotFound(
            f"experiment {name!r} does not exist" + (f" in project {project!r}" if project else "")
        )
    return found[0]

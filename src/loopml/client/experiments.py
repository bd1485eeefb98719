"""Experiments: named groups of runs in a project (`client.experiments`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.api import tracking as ops
from loopml.domain import Experiment
from loopml.errors import ExperimentNotFound

if TYPE_CHECKING:
    from loopml.client.backend import Backend
    from loopml.client.client import Client


class Experiments:
    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def list(self, project: str | None = None) -> list[Experiment]:
        return self._backend.call(ops.LIST_EXPERIMENTS, project=project)

    def get(self, experiment_id: int) -> Experiment:
        return self._backend.call(ops.GET_EXPERIMENT, experiment_id=experiment_id)

    def find(self, name: str, project: str | None = None) -> Experiment:
        return find_experiment(self._backend, name, project)

    def get_or_create(self, name: str, project: str | None = None) -> Experiment:
        return self._backend.call(ops.GET_OR_CREATE_EXPERIMENT, name=name, project=project)


def find_experiment(backend: Backend, name: str, project: str | None = None) -> Experiment:
    """The experiment `name` of `project` (the default project if None); `ExperimentNotFound` if there is none."""
    found = backend.call(ops.LIST_EXPERIMENTS, name=name, project=project)
    if not found:
        raise ExperimentNotFound(
            f"experiment {name!r} does not exist" + (f" in project {project!r}" if project else "")
        )
    return found[0]

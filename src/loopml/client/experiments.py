"""Experiments: named groups of runs in a project (`client.experiments`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.domain import Experiment

if TYPE_CHECKING:
    from loopml.client.client import Client


class Experiments:
    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def list(self, project: str | None = None) -> list[Experiment]:
        return self._backend.list_experiments(project)

    def get(self, experiment_id: int) -> Experiment:
        return self._backend.get_experiment(experiment_id)

    def find(self, name: str, project: str | None = None) -> Experiment:
        return self._backend.find_experiment(name, project)

    def get_or_create(self, name: str, project: str | None = None) -> Experiment:
        return self._backend.get_or_create_experiment(name, project)

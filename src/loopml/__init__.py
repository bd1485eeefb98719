"""loopml: the whole production ML loop in one install.

    import loopml as lm
    with lm.start_run(experiment="bike-demand", params={"max_depth": 6}) as run:
        run.log_metric("rmse", 41.2, step=3)
    lm.search_runs("bike-demand", filter="metrics.rmse < 45", order_by=["metrics.rmse"])

Importing loopml is cheap: names below load their modules on first use, so pandas, SQLAlchemy and
FastAPI are imported only by the calls that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_attributes

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "Client",
    "Dataset",
    "Model",
    "Run",
    "RunStatus",
    "__version__",
    "active_run",
    "end_run",
    "errors",
    "evaluate",
    "features",
    "gate",
    "get_client",
    "get_run",
    "lineage",
    "log_artifact",
    "log_artifacts",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "models",
    "pipeline",
    "retrain",
    "search_runs",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "step",
]

_LAZY = {
    "ActiveRun": "loopml.client.fluent",
    "Client": "loopml.client.client",
    "Dataset": "loopml.client.pipelines",
    "Model": "loopml.client.pipelines",
    "lineage": "loopml.client.pipelines",
    "pipeline": "loopml.client.pipelines",
    "step": "loopml.client.pipelines",
    "Run": "loopml.domain",
    "RunStatus": "loopml.domain",
    "active_run": "loopml.client.fluent",
    "end_run": "loopml.client.fluent",
    "evaluate": "loopml.client.evaluations",
    "gate": "loopml.client.evaluations",
    "get_client": "loopml.client.fluent",
    "get_run": "loopml.client.fluent",
    "log_artifact": "loopml.client.fluent",
    "log_artifacts": "loopml.client.fluent",
    "log_dataset": "loopml.client.fluent",
    "log_metric": "loopml.client.fluent",
    "log_metrics": "loopml.client.fluent",
    "log_param": "loopml.client.fluent",
    "log_params": "loopml.client.fluent",
    "models": "loopml.client.fluent",
    "retrain": "loopml.client.fluent",
    "search_runs": "loopml.client.fluent",
    "set_tag": "loopml.client.fluent",
    "set_tags": "loopml.client.fluent",
    "set_tracking_uri": "loopml.client.fluent",
    "start_run": "loopml.client.fluent",
}

if TYPE_CHECKING:
    from loopml import errors, features
    from loopml.client.client import Client
    from loopml.client.evaluations import evaluate, gate
    from loopml.client.fluent import (
        ActiveRun,
        active_run,
        end_run,
        get_client,
        get_run,
        log_artifact,
        log_artifacts,
        log_dataset,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        models,
        search_runs,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )
    from loopml.client.pipelines import Dataset, Model, lineage, pipeline, step
    from loopml.domain import Run, RunStatus


__getattr__ = lazy_attributes(__name__, {**_LAZY, "errors": "loopml.errors", "features": "loopml.features"})


def __dir__() -> list[str]:
    return sorted(__all__)

"""Serving: the inference replica behind `loopml serve`, hosting deployments of registry model packages.

Owns the wire protocols (loopml native JSON, Open Inference Protocol v2, MLflow `/invocations`), request
validation against the model signature, micro-batching, traffic splitting (weights, sticky keys, shadows), hot
reload of deployment specs and the replica's Prometheus metrics. It imports `loopml.registry`, the domain, errors
and settings; never `loopml.server`, `loopml.cli` or `loopml.client`.

The names below are imported on first use, so `loopml predict` (batch scoring) does not pay for the web
server's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_attributes

if TYPE_CHECKING:
    from loopml.serving.app import ServingApp, create_serving_app
    from loopml.serving.batch import BatchResult, count_rows, score_file
    from loopml.serving.batching import BatchingConfig
    from loopml.serving.host import ModelHost
    from loopml.serving.records import RequestLogSink, RequestRecord
    from loopml.serving.runner import ServeConfig, serve
    from loopml.serving.segments import read_open_segment, read_segments
    from loopml.serving.specs import (
        DeploymentSpec,
        DirectorySpecSource,
        ServingVersion,
        SpecSource,
        StaticSpecSource,
    )

__all__ = [
    "BatchResult",
    "BatchingConfig",
    "DeploymentSpec",
    "DirectorySpecSource",
    "ModelHost",
    "RequestLogSink",
    "RequestRecord",
    "ServeConfig",
    "ServingApp",
    "ServingVersion",
    "SpecSource",
    "StaticSpecSource",
    "count_rows",
    "create_serving_app",
    "read_open_segment",
    "read_segments",
    "score_file",
    "serve",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        "BatchResult": "loopml.serving.batch",
        "count_rows": "loopml.serving.batch",
        "score_file": "loopml.serving.batch",
        "BatchingConfig": "loopml.serving.batching",
        "ModelHost": "loopml.serving.host",
        "ServingApp": "loopml.serving.app",
        "create_serving_app": "loopml.serving.app",
        "RequestLogSink": "loopml.serving.records",
        "RequestRecord": "loopml.serving.records",
        "ServeConfig": "loopml.serving.runner",
        "serve": "loopml.serving.runner",
        "read_open_segment": "loopml.serving.segments",
        "read_segments": "loopml.serving.segments",
        "DeploymentSpec": "loopml.serving.specs",
        "DirectorySpecSource": "loopml.serving.specs",
        "ServingVersion": "loopml.serving.specs",
        "SpecSource": "loopml.serving.specs",
        "StaticSpecSource": "loopml.serving.specs",
    },
)

"""Deployments and progressive delivery: `DeployService` (deploy, roll back, promote, history), the rollout
analysis (`analyze`: candidate vs stable on error rate, p99 latency, prediction distance and, once labels
arrive, realised quality) and the `RolloutController` that moves canaries through their steps inside
`loopml server`.

A service package: imports the store, the domain, `loopml.registry`, `loopml.monitoring` and
`loopml.serving` (to read the request log) through their public modules; never the server, CLI or client.
"""

from loopml.deploy.analysis import Thresholds, WindowStats, analyze, explain
from loopml.deploy.controller import ROLLOUT_LEASE, RolloutController
from loopml.deploy.manifests import DEFAULT_IMAGE, EMIT_KINDS, render_dockerfile, render_kubernetes, write_emit
from loopml.deploy.service import CONTROLLER_ACTOR, DeployService, check_deployment_name
from loopml.deploy.windows import RequestLogReader

__all__ = [
    "CONTROLLER_ACTOR",
    "DEFAULT_IMAGE",
    "EMIT_KINDS",
    "ROLLOUT_LEASE",
    "DeployService",
    "RequestLogReader",
    "RolloutController",
    "Thresholds",
    "WindowStats",
    "analyze",
    "check_deployment_name",
    "explain",
    "render_dockerfile",
    "render_kubernetes",
    "write_emit",
]

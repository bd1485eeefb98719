"""Retraining: policies (what starts a retraining, the guards, the gate and the rollout) and the controller
that runs each loop inside `loopml server`. Uses `pipelines`, `registry` and `deploy` through their public
modules; never imports an interface (server, client, CLI)."""

from __future__ import annotations

from loopml.retraining.controller import RETRAIN_ACTOR, RETRAIN_LEASE, RetrainController
from loopml.retraining.policies import parse_duration, parse_trigger, parse_triggers
from loopml.retraining.service import RetrainService

__all__ = [
    "RETRAIN_ACTOR",
    "RETRAIN_LEASE",
    "RetrainController",
    "RetrainService",
    "parse_duration",
    "parse_trigger",
    "parse_triggers",
]

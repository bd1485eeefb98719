"""Retraining operations: policies (create, list, get, delete) and their loops (list, get, approve, reject)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, JsonValue

from loopml.api.codecs import listed, one
from loopml.api.fields import Integer, Key, Name
from loopml.api.governance import NoArguments
from loopml.api.operation import Operation, Request
from loopml.domain.retrain import (
    RetrainLoop,
    RetrainPolicy,
    loop_from_json,
    loop_to_json,
    policy_from_json,
    policy_to_json,
)

Duration = Annotated[str, Field(min_length=1, max_length=32)]
LoopId = Annotated[str, Field(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")]
Reason = Annotated[str, Field(max_length=2000)]
Trigger = Annotated[str, Field(min_length=1, max_length=300)]

POLICY = "policy's project (its model's)"
LOOP = "loop -> policy's project"


class CreatePolicy(Request):
    name: Name
    monitor: Name
    pipeline: Annotated[str, Field(min_length=3, max_length=2000)]
    triggers: Annotated[list[Trigger | dict[Key, JsonValue]], Field(min_length=1, max_length=20)]
    model: Name | None = None
    gate: Annotated[str, Field(max_length=100_000)] | None = None
    rollout: Literal["canary", "direct"] = "canary"
    canary_steps: Annotated[list[Integer], Field(min_length=1, max_length=20)] | None = None
    analysis_seconds: Annotated[Integer, Field(ge=1, le=86_400)] | None = None
    cooldown: Duration = "1d"
    max_loops: Annotated[Integer, Field(ge=1, le=1000)] = 2
    period: Duration = "7d"
    approval: Literal["auto", "manual"] = "auto"
    params: Annotated[dict[Key, JsonValue], Field(max_length=100)] | None = None
    label: Name | None = None


class PolicyPath(Request):
    name: Name


class ListLoops(Request):
    policy: Name | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class LoopPath(Request):
    loop_id: LoopId


class Decide(Request):
    body_required = False

    loop_id: LoopId
    reason: Reason | None = None


_policy = one("policy", policy_to_json, policy_from_json)
_loop = one("loop", loop_to_json, loop_from_json)

CREATE_RETRAIN_POLICY: Operation[RetrainPolicy] = Operation(
    "create_retrain_policy", "retrain", "create_policy", "editor", "body", "body.model -> model's project",
    "POST", "/retrain/policies", CreatePolicy, _policy, "retrain",
)  # fmt: skip
LIST_RETRAIN_POLICIES: Operation[list[RetrainPolicy]] = Operation(
    "list_retrain_policies", "retrain", "list_policies", "viewer", "listing", POLICY,
    "GET", "/retrain/policies", NoArguments, listed("policies", policy_to_json, policy_from_json), "retrain",
)  # fmt: skip
GET_RETRAIN_POLICY: Operation[RetrainPolicy] = Operation(
    "get_retrain_policy", "retrain", "get_policy", "viewer", "path", POLICY,
    "GET", "/retrain/policies/{name}", PolicyPath, _policy, "retrain",
)  # fmt: skip
DELETE_RETRAIN_POLICY: Operation[RetrainPolicy] = Operation(
    "delete_retrain_policy", "retrain", "delete_policy", "editor", "path", POLICY,
    "DELETE", "/retrain/policies/{name}", PolicyPath, _policy, "retrain",
)  # fmt: skip
LIST_RETRAIN_LOOPS: Operation[list[RetrainLoop]] = Operation(
    "list_retrain_loops", "retrain", "list_loops", "viewer", "listing", LOOP,
    "GET", "/retrain/loops", ListLoops, listed("loops", loop_to_json, loop_from_json), "retrain",
)  # fmt: skip
GET_RETRAIN_LOOP: Operation[RetrainLoop] = Operation(
    "get_retrain_loop", "retrain", "get_loop", "viewer", "path", LOOP,
    "GET", "/retrain/loops/{loop_id}", LoopPath, _loop, "retrain",
)  # fmt: skip
APPROVE_RETRAIN_LOOP: Operation[RetrainLoop] = Operation(
    "approve_retrain_loop", "retrain", "approve", "editor", "path", LOOP,
    "POST", "/retrain/loops/{loop_id}/approve", Decide, _loop, "retrain",
)  # fmt: skip
REJECT_RETRAIN_LOOP: Operation[RetrainLoop] = Operation(
    "reject_retrain_loop", "retrain", "reject", "editor", "path", LOOP,
    "POST", "/retrain/loops/{loop_id}/reject", Decide, _loop, "retrain",
)  # fmt: skip

OPERATIONS = (
    CREATE_RETRAIN_POLICY,
    LIST_RETRAIN_POLICIES,
    GET_RETRAIN_POLICY,
    DELETE_RETRAIN_POLICY,
    LIST_RETRAIN_LOOPS,
    GET_RETRAIN_LOOP,
    APPROVE_RETRAIN_LOOP,
    REJECT_RETRAIN_LOOP,
)

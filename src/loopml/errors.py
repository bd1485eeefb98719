"""The loopml error tree. Every error a user can see is a `LoopmlError`.

    LoopmlError
    ├── NotFound (LookupError)                      code: not_found
    │   ├── ProjectNotFound, ExperimentNotFound, RunNotFound,
    │   ├── DatasetNotFound, ArtifactNotFound, TokenNotFound, TagNotFound
    │   ├── ModelNotFound, ModelVersionNotFound, AliasNotFound, LoggedModelNotFound
    │   ├── DeploymentNotFound, MonitorNotFound
    │   └── PipelineNotFound, StepRunNotFound, ScheduleNotFound, RetrainPolicyNotFound, RetrainLoopNotFound
    ├── InvalidInput (ValueError)                   code: invalid_input
    │   ├── InvalidName, InvalidPath, InvalidFilter, InvalidMetric
    │   ├── InvalidStatus, ParamConflict
    │   ├── InvalidRequest, InvalidJson              (an HTTP body of the wrong shape, or not JSON)
    │   ├── PayloadTooLarge
    │   ├── InvalidPipeline                         (a cycle, a step outside a pipeline, an unknown executor...)
    │   └── InvalidPolicy                           (a gate policy: bad YAML, unknown metric..., with the line)
    ├── AlreadyExists (ValueError)                  code: already_exists
    ├── AuthenticationRequired (PermissionError)    code: unauthenticated
    ├── PermissionDenied (PermissionError)          code: permission_denied
    ├── IntegrityError                              code: integrity_error
    │   ├── ArtifactCorrupted                       (content does not match its sha256)
    │   ├── ResourceInUse                           (a delete refused: a deployment or an alias uses it)
    │   ├── AuditChainBroken                        (an audit row was edited, inserted or deleted)
    │   └── GateRequired                            (an alias needs a passed gate the version lacks: 409)
    ├── DeliveryFailed                              code: delivery_failed (points not stored)
    ├── StoreUnavailable                            code: store_unavailable (unreachable, or a table missing)
    ├── RemoteError                                 code: remote_error (server failed, not the caller)
    ├── ExecutorUnavailable                         code: executor_unavailable (e.g. no Ray cluster at the address)
    └── UserCodeError                               code: user_code_error (wraps an exception of user code)

Each class carries a stable `code`; the HTTP mapping lives in `loopml.server.errors` only, and the HTTP
client turns a code back into the same class with `error_for_code`. Callers catch at any level:
`except LookupError` works as well as `except loopml.errors.RunNotFound`.
"""

from __future__ import annotations

__all__ = [
    "AliasNotFound",
    "AlreadyExists",
    "ArtifactCorrupted",
    "ArtifactNotFound",
    "AuditChainBroken",
    "AuthenticationRequired",
    "DatasetNotFound",
    "DeliveryFailed",
    "DeploymentNotFound",
    "ExecutorUnavailable",
    "ExperimentNotFound",
    "GateRequired",
    "IntegrityError",
    "InvalidFilter",
    "InvalidInput",
    "InvalidJson",
    "InvalidMetric",
    "InvalidName",
    "InvalidPath",
    "InvalidPipeline",
    "InvalidPolicy",
    "InvalidRequest",
    "InvalidStatus",
    "LoggedModelNotFound",
    "LoopmlError",
    "ModelNotFound",
    "ModelVersionNotFound",
    "MonitorNotFound",
    "NotFound",
    "ParamConflict",
    "PayloadTooLarge",
    "PermissionDenied",
    "PipelineNotFound",
    "ProjectNotFound",
    "RemoteError",
    "ResourceInUse",
    "RetrainLoopNotFound",
    "RetrainPolicyNotFound",
    "RunNotFound",
    "ScheduleNotFound",
    "ServerBusy",
    "StepRunNotFound",
    "StoreUnavailable",
    "TagNotFound",
    "TokenNotFound",
    "UserCodeError",
    "error_for_code",
]


class LoopmlError(Exception):
    """Root of every error loopml raises on purpose."""

    code = "loopml_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(LoopmlError, LookupError):
    code = "not_found"


class ProjectNotFound(NotFound):
    code = "project_not_found"


class ExperimentNotFound(NotFound):
    code = "experiment_not_found"


class RunNotFound(NotFound):
    code = "run_not_found"


class DatasetNotFound(NotFound):
    code = "dataset_not_found"


class ArtifactNotFound(NotFound):
    code = "artifact_not_found"


class TagNotFound(NotFound):
    code = "tag_not_found"


class TokenNotFound(NotFound):
    code = "token_not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class ModelVersionNotFound(NotFound):
    code = "model_version_not_found"


class LoggedModelNotFound(NotFound):
    code = "logged_model_not_found"


class AliasNotFound(NotFound):
    code = "alias_not_found"


class DeploymentNotFound(NotFound):
    code = "deployment_not_found"


class MonitorNotFound(NotFound):
    code = "monitor_not_found"


class PipelineNotFound(NotFound):
    code = "pipeline_not_found"


class StepRunNotFound(NotFound):
    code = "step_run_not_found"


class ScheduleNotFound(NotFound):
    code = "schedule_not_found"


class RetrainPolicyNotFound(NotFound):
    code = "retrain_policy_not_found"


class RetrainLoopNotFound(NotFound):
    code = "retrain_loop_not_found"


class InvalidInput(LoopmlError, ValueError):
    code = "invalid_input"


class InvalidName(InvalidInput):
    code = "invalid_name"


class InvalidPath(InvalidInput):
    code = "invalid_path"


class InvalidFilter(InvalidInput):
    code = "invalid_filter"


class InvalidMetric(InvalidInput):
    code = "invalid_metric"


class InvalidStatus(InvalidInput):
    code = "invalid_status"


class ParamConflict(InvalidInput):
    """A param was logged again with a different value (params are write-once)."""

    code = "param_conflict"


class InvalidRequest(InvalidInput):
    """An HTTP request whose fields have the wrong type or shape (the message names each field)."""

    code = "invalid_request"


class InvalidJson(InvalidInput):
    code = "invalid_json"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class InvalidPipeline(InvalidInput):
    """A pipeline that cannot run as written: a cycle, a step called outside a pipeline, an output with no
    serializer, an unknown executor. The message names the cause."""

    code = "invalid_pipeline"


class InvalidPolicy(InvalidInput):
    """A gate policy that cannot be judged: bad YAML, an unknown metric, a threshold that is not a number, a
    relative check on a model without the champion alias. The message names the line."""

    code = "invalid_policy"


class AlreadyExists(LoopmlError, ValueError):
    code = "already_exists"


class AuthenticationRequired(LoopmlError, PermissionError):
    code = "unauthenticated"


class PermissionDenied(LoopmlError, PermissionError):
    code = "permission_denied"


class IntegrityError(LoopmlError):
    code = "integrity_error"


class ArtifactCorrupted(IntegrityError):
    code = "artifact_corrupted"


class ResourceInUse(IntegrityError):
    """A delete refused because something else uses the resource (a deployment serves the version, an alias
    points at it); the message names the user and what to do first. HTTP 409."""

    code = "resource_in_use"


class AuditChainBroken(IntegrityError):
    code = "audit_chain_broken"


class GateRequired(IntegrityError):
    """An alias that requires a passed gate was asked to point at a version whose newest gate result failed or
    that has none (409); an admin may override with a reason."""

    code = "gate_required"


class DeliveryFailed(LoopmlError):
    """Logged data could not be delivered to the store; nothing was silently dropped."""

    code = "delivery_failed"

    def __init__(self, message: str, run_ids: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.run_ids = run_ids
        """The runs whose data was not stored (empty when unknown)."""


class StoreUnavailable(LoopmlError):
    """The metadata store cannot be used: its database is unreachable, or lacks a table (never migrated,
    or the URL names another database)."""

    code = "store_unavailable"


class RemoteError(LoopmlError):
    """The server failed for a reason that is not the caller's mistake."""

    code = "remote_error"


class ExecutorUnavailable(LoopmlError):
    """The executor cannot run steps: its engine is not installed or its cluster cannot be reached."""

    code = "executor_unavailable"


class ServerBusy(ExecutorUnavailable):
    """The server runs as many pipeline runs as it may at once (`LOOPML_PIPELINE_WORKERS`): try again later."""

    code = "server_busy"


class UserCodeError(LoopmlError):
    """An exception raised by user code (a training step, a custom model), wrapped."""

    code = "user_code_error"


def _all_subclasses(cls: type[LoopmlError]) -> list[type[LoopmlError]]:
    found: list[type[LoopmlError]] = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


def error_for_code(code: str) -> type[LoopmlError]:
    """The error class for a stable code, `RemoteError` for codes this version does not know."""
    for cls in _all_subclasses(LoopmlError):
        if cls.code == code:
            return cls
    return RemoteError

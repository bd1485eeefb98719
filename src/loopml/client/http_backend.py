"""The HTTP backend: the same operations against a loopml server (`LOOPML_TRACKING_URI`, `LOOPML_TOKEN`)."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from loopml.client.downloads import write_verified
from loopml.domain import (
    ArtifactRecord,
    AuditEvent,
    Dataset,
    DatasetInput,
    Deployment,
    DeploymentRevision,
    Experiment,
    Metric,
    MetricColumns,
    ModelVersion,
    Page,
    RegisteredModel,
    RolloutDecision,
    Run,
    Token,
    wire,
)
from loopml.domain.monitoring import (
    Alert,
    Monitor,
    MonitorWindow,
    alert_from_json,
    monitor_from_json,
    window_from_json,
)
from loopml.errors import (
    AuthenticationRequired,
    IntegrityError,
    InvalidInput,
    LoopmlError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RemoteError,
    error_for_code,
)

API = "/api/v1"
CONNECT_RETRIES = 3
"""Attempts when the server cannot be reached at all (the request was not sent, so a retry is safe)."""
MAX_BACKFILL_OVER_HTTP = 100_000
"""Requests per backfill call over HTTP (the route's bound)."""


_BY_STATUS: dict[int, type[LoopmlError]] = {
    400: InvalidInput,
    401: AuthenticationRequired,
    403: PermissionDenied,
    404: NotFound,
    405: InvalidInput,
    409: IntegrityError,
    413: PayloadTooLarge,
    415: InvalidInput,
    422: InvalidInput,
}
"""For error codes this client does not know (request validation, unknown routes, newer servers)."""


def _path(value: str) -> str:
    return quote(value, safe="")


class HttpBackend:
    def __init__(
        self,
        uri: str,
        token: str | None = None,
        client: httpx.Client | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.uri = uri.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if client is None:
            client = httpx.Client(base_url=self.uri, timeout=timeout)
        client.headers.update(headers)
        self._http = client

    # -- transport ---------------------------------------------------------------------------------

    def _request(self, method: str, url: str, *, json: Any = None, **kwargs: Any) -> httpx.Response:
        if json is not None:
            kwargs["content"] = orjson.dumps(json)
            kwargs.setdefault("headers", {})["Content-Type"] = "application/json"
        for attempt in range(CONNECT_RETRIES):
            try:
                response = self._http.request(method, API + url, **kwargs)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == CONNECT_RETRIES - 1:
                    raise RemoteError(f"cannot reach the loopml server at {self.uri}: {exc}") from exc
                time.sleep(0.2 * 2**attempt)
            except httpx.TransportError as exc:
                # Sent, but the answer was lost (reset, timeout, cut off): the server may have applied it.
                raise RemoteError(
                    f"{method} {url} to the loopml server at {self.uri} got no complete answer "
                    f"({type(exc).__name__}: {exc or 'no detail'})"
                ) from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _json(self, method: str, url: str, *, json: Any = None, **kwargs: Any) -> Any:
        return orjson.loads(self._request(method, url, json=json, **kwargs).content)

    def _error(self, response: httpx.Response) -> Exception:
        """The loopml error a failed response stands for: by its stable code, else by its HTTP status."""
        try:
            body = orjson.loads(response.read())
            code, message = str(body["error"]["code"]), str(body["error"]["message"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            code = ""
            message = f"{response.request.method} {response.request.url.path} answered {response.status_code}"
            if response.status_code == 401:
                message = f"the server at {self.uri} asks for a token (set LOOPML_TOKEN)"
        cls = error_for_code(code)
        if cls is RemoteError:
            cls = _BY_STATUS.get(response.status_code, RemoteError)
        return cls(message)

    # -- experiments -------------------------------------------------------------------------------

    def get_or_create_experiment(self, name: str, project: str | None = None) -> Experiment:
        body = self._json("POST", "/experiments", json={"name": name, "project": project})
        return wire.experiment_from_json(body["experiment"])

    def get_experiment(self, experiment_id: int) -> Experiment:
        return wire.experiment_from_json(self._json("GET", f"/experiments/{int(experiment_id)}")["experiment"])

    def find_experiment(self, name: str, project: str | None = None) -> Experiment:
        from loopml.errors import ExperimentNotFound

        query = {"name": name} | ({"project": project} if project else {})
        found = self._json("GET", "/experiments", params=query)["experiments"]
        if not found:
            raise ExperimentNotFound(
                f"experiment {name!r} does not exist" + (f" in project {project!r}" if project else "")
            )
        return wire.experiment_from_json(found[0])

    def list_experiments(self, project: str | None = None) -> list[Experiment]:
        query = {"project": project} if project else {}
        return [wire.experiment_from_json(e) for e in self._json("GET", "/experiments", params=query)["experiments"]]

    # -- runs --------------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: int,
        name: str | None = None,
        parent_run_id: str | None = None,
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
        start_time: int | None = None,
    ) -> Run:
        body = {
            "experiment_id": experiment_id,
            "name": name,
            "parent_run_id": parent_run_id,
            "params": _stringify(params),
            "tags": _stringify(tags),
            "start_time": start_time,
        }
        return wire.run_from_json(self._json("POST", "/runs", json=body)["run"])

    def get_run(self, run_id: str) -> Run:
        return wire.run_from_json(self._json("GET", f"/runs/{_path(run_id)}")["run"])

    def end_run(self, run_id: str, status: str, end_time: int | None = None) -> Run:
        body = {"status": status, "end_time": end_time}
        return wire.run_from_json(self._json("PATCH", f"/runs/{_path(run_id)}", json=body)["run"])

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        self._request("POST", f"/runs/{_path(run_id)}/params", json={"params": _stringify(params)})

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        self._request("POST", f"/runs/{_path(run_id)}/tags", json={"tags": _stringify(tags)})

    def log_metrics(self, run_id: str, batch: MetricColumns, batch_key: str | None = None) -> int:
        values: Sequence[float | str] = batch.values
        # A float sum is finite only if every value is (a NaN or an infinity makes it NaN or infinite); it
        # runs at C speed, so the per-value check runs only for a batch that has a non-finite value or whose
        # finite values overflow the sum.
        if not math.isfinite(sum(batch.values)) and not all(math.isfinite(v) for v in batch.values):
            values = [wire.encode_float(v) for v in batch.values]
        body = {"keys": batch.keys, "values": values, "steps": batch.steps, "timestamps": batch.timestamps}
        headers = {} if batch_key is None else {"Idempotency-Key": batch_key}
        return int(self._json("POST", f"/runs/{_path(run_id)}/metrics", json=body, headers=headers)["stored"])

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        url = f"/runs/{_path(run_id)}/metrics/{quote(key, safe='/')}"
        return [wire.metric_from_json(m) for m in self._json("GET", url)["metrics"]]

    def log_dataset(self, run_id: str, data: DatasetInput) -> Dataset:
        body = {
            "name": data.name,
            "digest": data.digest,
            "schema": [list(c) for c in data.schema],
            "rows": data.rows,
            "source": data.source,
            "role": data.role,
        }
        return wire.dataset_from_json(self._json("POST", f"/runs/{_path(run_id)}/datasets", json=body)["dataset"])

    def run_datasets(self, run_id: str) -> list[Dataset]:
        return [wire.dataset_from_json(d) for d in self._json("GET", f"/runs/{_path(run_id)}/datasets")["datasets"]]

    def log_artifact(self, run_id: str, path: str, local_file: Path) -> ArtifactRecord:
        digest = _file_sha256(local_file)
        with open(local_file, "rb") as stream:
            body = self._json(
                "PUT",
                f"/runs/{_path(run_id)}/artifacts/{quote(path, safe='/')}",
                content=iter(lambda: stream.read(1 << 20), b""),
                headers={"X-Content-SHA256": digest, "Content-Type": "application/octet-stream"},
            )
        return wire.artifact_from_json(body["artifact"])

    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[ArtifactRecord]:
        query = {"prefix": prefix} if prefix else {}
        body = self._json("GET", f"/runs/{_path(run_id)}/artifacts", params=query)
        return [wire.artifact_from_json(a) for a in body["artifacts"]]

    def download_artifact(self, run_id: str, path: str, dest: Path) -> Path:
        url = f"{API}/runs/{_path(run_id)}/artifacts/{quote(path, safe='/')}"
        with self._http.stream("GET", url) as response:
            if response.status_code >= 400:
                raise self._error(response)
            digest = response.headers.get("X-Content-SHA256", "")
            return write_verified(response.iter_bytes(1 << 20), digest, dest)

    def search_runs(
        self,
        experiment_ids: Sequence[int],
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[Run]:
        body = {
            "experiment_ids": list(experiment_ids),
            "filter": filter,
            "order_by": list(order_by) if order_by else None,
            "max_results": max_results,
            "page_token": page_token,
        }
        found = self._json("POST", "/runs/search", json=body)
        return Page(items=[wire.run_from_json(r) for r in found["runs"]], next_page_token=found["next_page_token"])

    # -- governance --------------------------------------------------------------------------------

    def create_token(self, name: str, role: str, project: str | None = None) -> tuple[Token, str]:
        body = self._json("POST", "/tokens", json={"name": name, "role": role, "project": project})
        return wire.token_from_json(body["token"]), str(body["secret"])

    def list_tokens(self) -> list[Token]:
        return [wire.token_from_json(t) for t in self._json("GET", "/tokens")["tokens"]]

    def revoke_token(self, token_id: str) -> Token:
        return wire.token_from_json(self._json("DELETE", f"/tokens/{_path(token_id)}")["token"])

    def audit_events(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEvent]:
        body = self._json("GET", "/audit", params={"after_seq": after_seq, "limit": limit})
        return [wire.audit_from_json(e) for e in body["events"]]

    def verify_audit(self) -> list[str]:
        return [str(p) for p in self._json("GET", "/audit/verify")["problems"]]

    # -- model registry ----------------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        project: str | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
        exist_ok: bool = False,
    ) -> RegisteredModel:
        body: dict[str, Any] = {"name": name, "project": project, "description": description}
        body |= {"tags": _stringify(tags), "exist_ok": exist_ok}
        return wire.registered_model_from_json(self._json("POST", "/models", json=body)["model"])

    def get_model(self, name: str) -> RegisteredModel:
        return wire.registered_model_from_json(self._json("GET", f"/models/{_path(name)}")["model"])

    def update_model(
        self, name: str, description: str | None = None, tags: Mapping[str, object] | None = None
    ) -> RegisteredModel:
        body = {"description": description, "tags": _stringify(tags)}
        return wire.registered_model_from_json(self._json("PATCH", f"/models/{_path(name)}", json=body)["model"])

    def search_models(
        self,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]:
        found = self._json("GET", "/models", params=_search_query(filter, order_by, max_results, page_token))
        return Page([wire.registered_model_from_json(m) for m in found["models"]], found["next_page_token"])

    def create_model_version(
        self,
        name: str,
        run_id: str,
        artifact_path: str,
        manifest_digest: str,
        flavor: str,
        signature: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        body = {
            "run_id": run_id,
            "artifact_path": artifact_path,
            "manifest_digest": manifest_digest,
            "flavor": flavor,
            "signature": None if signature is None else dict(signature),
            "description": description,
            "tags": _stringify(tags),
        }
        found = self._json("POST", f"/models/{_path(name)}/versions", json=body)
        return wire.model_version_from_json(found["model_version"])

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        found = self._json("GET", f"/models/{_path(name)}/versions/{_version(version)}")
        return wire.model_version_from_json(found["model_version"])

    def update_model_version(
        self,
        name: str,
        version: int,
        status: str | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        body = {"status": status, "description": description, "tags": _stringify(tags)}
        found = self._json("PATCH", f"/models/{_path(name)}/versions/{_version(version)}", json=body)
        return wire.model_version_from_json(found["model_version"])

    def search_model_versions(
        self,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        name: str | None = None,
    ) -> Page[ModelVersion]:
        if name is not None:
            query = _search_query(filter, order_by, max_results, page_token)
            found = self._json("GET", f"/models/{_path(name)}/versions", params=query)
        else:
            body = {
                "filter": filter,
                "order_by": list(order_by) if order_by else None,
                "max_results": max_results,
                "page_token": page_token,
            }
            found = self._json("POST", "/model-versions/search", json=body)
        return Page([wire.model_version_from_json(v) for v in found["model_versions"]], found["next_page_token"])

    def set_model_alias(self, name: str, alias: str, version: int, reason: str | None = None) -> ModelVersion:
        body = {"version": version, "reason": reason}
        found = self._json("PUT", f"/models/{_path(name)}/aliases/{_path(alias)}", json=body)
        return wire.model_version_from_json(found["model_version"])

    def delete_model_alias(self, name: str, alias: str, reason: str | None = None) -> int:
        query = {"reason": reason} if reason is not None else {}
        found = self._json("DELETE", f"/models/{_path(name)}/aliases/{_path(alias)}", params=query)
        return int(found["deleted"]["version"])

    def resolve_model_version(self, uri: str, alias_or_version: str | int | None = None) -> ModelVersion:
        query: dict[str, str] = {"uri": uri}
        if alias_or_version is not None:
            if isinstance(alias_or_version, bool):
                raise InvalidInput(f"a version must be an integer or an alias, got {alias_or_version!r}")
            query["alias_or_version"] = str(alias_or_version)
        found = self._json("GET", "/model-versions/resolve", params=query)
        return wire.model_version_from_json(found["model_version"])

    # -- deployments -------------------------------------------------------------------------------

    def deploy(
        self,
        name: str,
        model: str,
        strategy: str = "direct",
        canary_steps: Sequence[int] = (10, 50, 100),
        analysis_seconds: int = 300,
        thresholds: Mapping[str, float] | None = None,
        sticky_key: str | None = None,
        ab_weight: int | None = None,
        reason: str | None = None,
    ) -> Deployment:
        body = {
            "name": name,
            "model": model,
            "strategy": strategy,
            "canary_steps": list(canary_steps),
            "analysis_seconds": analysis_seconds,
            "thresholds": None if thresholds is None else dict(thresholds),
            "sticky_key": sticky_key,
            "ab_weight": ab_weight,
            "reason": reason,
        }
        return wire.deployment_from_json(self._json("POST", "/deployments", json=body)["deployment"])

    def list_deployments(self) -> list[Deployment]:
        return [wire.deployment_from_json(d) for d in self._json("GET", "/deployments")["deployments"]]

    def get_deployment(self, name: str) -> Deployment:
        return wire.deployment_from_json(self._json("GET", f"/deployments/{_path(name)}")["deployment"])

    def rollback_deployment(self, name: str, reason: str | None = None) -> Deployment:
        found = self._json("POST", f"/deployments/{_path(name)}/rollback", json={"reason": reason})
        return wire.deployment_from_json(found["deployment"])

    def promote_deployment(self, name: str, reason: str | None = None) -> Deployment:
        found = self._json("POST", f"/deployments/{_path(name)}/promote", json={"reason": reason})
        return wire.deployment_from_json(found["deployment"])

    def deployment_history(self, name: str, limit: int = 100) -> list[DeploymentRevision]:
        found = self._json("GET", f"/deployments/{_path(name)}/history", params={"limit": limit})
        return [wire.deployment_revision_from_json(r) for r in found["revisions"]]

    def deployment_decisions(self, name: str, limit: int = 100) -> list[RolloutDecision]:
        found = self._json("GET", f"/deployments/{_path(name)}/decisions", params={"limit": limit})
        return [wire.rollout_decision_from_json(d) for d in found["decisions"]]

    def shadow_comparison(self, name: str, window_seconds: int = 3600, tolerance: float = 1e-6) -> dict[str, Any]:
        query = {"window_seconds": window_seconds, "tolerance": tolerance}
        found = self._json("GET", f"/deployments/{_path(name)}/shadow-comparison", params=query)
        comparison: dict[str, Any] = found["comparison"]
        return comparison

    # -- monitoring --------------------------------------------------------------------------------

    def set_reference_profile(self, name: str, version: int, profile: Mapping[str, Any]) -> None:
        self._json(
            "PUT",
            f"/models/{_path(name)}/versions/{_version(version)}/reference-profile",
            json={"profile": dict(profile)},
        )

    def get_reference_profile(self, name: str, version: int) -> dict[str, Any]:
        found = self._json("GET", f"/models/{_path(name)}/versions/{_version(version)}/reference-profile")
        profile: dict[str, Any] = found["profile"]
        return profile

    def create_monitor(
        self,
        name: str,
        deployment: str,
        window: str = "1d",
        label_delay: str = "0s",
        consecutive: int = 3,
        model: str | None = None,
        version: int | None = None,
        thresholds: Mapping[str, float] | None = None,
        webhook: str | None = None,
        kinds: Sequence[str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Monitor:
        body = {
            "name": name,
            "deployment": deployment,
            "window": str(window),
            "label_delay": str(label_delay),
            "consecutive": consecutive,
            "model": model,
            "version": version,
            "thresholds": None if thresholds is None else dict(thresholds),
            "webhook": webhook,
            "kinds": None if kinds is None else list(kinds),
            "options": None if options is None else dict(options),
        }
        return monitor_from_json(self._json("POST", "/monitors", json=body)["monitor"])

    def list_monitors(self) -> list[Monitor]:
        return [monitor_from_json(m) for m in self._json("GET", "/monitors")["monitors"]]

    def get_monitor(self, name: str) -> Monitor:
        return monitor_from_json(self._json("GET", f"/monitors/{_path(name)}")["monitor"])

    def run_monitor(self, name: str, now: int | None = None) -> dict[str, Any]:
        run: dict[str, Any] = self._json("POST", f"/monitors/{_path(name)}/run", json={"now": now})["run"]
        return run

    def backfill_monitor(
        self, name: str, requests: Sequence[Mapping[str, Any]], now: int | None = None
    ) -> dict[str, Any]:
        if len(requests) > MAX_BACKFILL_OVER_HTTP:
            raise InvalidInput(
                f"{len(requests)} requests: a backfill over HTTP takes at most {MAX_BACKFILL_OVER_HTTP}; run larger "
                "backtests with an embedded client on the server's database and artifact store"
            )
        body = {"requests": list(requests), "now": now}
        run: dict[str, Any] = self._json("POST", f"/monitors/{_path(name)}/backfill", json=body)["run"]
        return run

    def monitor_windows(self, name: str, limit: int | None = None) -> list[MonitorWindow]:
        params = {} if limit is None else {"limit": limit}
        found = self._json("GET", f"/monitors/{_path(name)}/windows", params=params)
        return [window_from_json(w) for w in found["windows"]]

    def monitor_report(self, name: str) -> str:
        return self._request("GET", f"/monitors/{_path(name)}/report").text

    def record_feedback(self, items: Sequence[Mapping[str, Any]]) -> int:
        recorded: int = self._json("POST", "/feedback", json={"feedback": [dict(i) for i in items]})["recorded"]
        return recorded

    def list_alerts(self, monitor: str | None = None, state: str | None = None) -> list[Alert]:
        params = {k: v for k, v in (("monitor", monitor), ("state", state)) if v is not None}
        return [alert_from_json(a) for a in self._json("GET", "/alerts", params=params)["alerts"]]

    def close(self) -> None:
        self._http.close()


def _stringify(values: Mapping[str, object] | None) -> dict[str, object] | None:
    """Params and tags travel as strings; numbers and booleans become their text here, as in the service."""
    if values is None:
        return None
    return {
        k: v if isinstance(v, str) or v is None or isinstance(v, list | dict) else str(v) for k, v in values.items()
    }


def _search_query(
    filter: str | None, order_by: Sequence[str] | None, max_results: int, page_token: str | None
) -> dict[str, Any]:
    query: dict[str, Any] = {"max_results": max_results}
    if filter is not None:
        query["filter"] = filter
    if order_by:
        query["order_by"] = list(order_by)
    if page_token is not None:
        query["page_token"] = page_token
    return query


def _version(version: int) -> str:
    """A version number for a URL path; anything else is refused here, as the service would refuse it."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidInput(f"a model version must be an integer, got {version!r}")
    return str(version)


def _file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()

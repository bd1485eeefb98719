"""The explicit client: `Client()` talks to the embedded store or to a server, with the same calls.

client = loopml.Client()                                   # embedded, under ./loopml-data
client = loopml.Client("http://127.0.0.1:8080", token=...)  # a loopml server
client.runs.search("bike-demand", filter="metrics.rmse < 45", order_by=["metrics.rmse"])
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.client.audit import Audit
from loopml.client.deployments import Deployments
from loopml.client.experiments import Experiments
from loopml.client.features import Features
from loopml.client.feedback import FeedbackLabels
from loopml.client.metric_buffer import MetricBuffer
from loopml.client.models import Models
from loopml.client.monitors import Monitors
from loopml.client.retrain import Retrain
from loopml.client.runs import Runs
from loopml.client.tokens import Tokens

if TYPE_CHECKING:
    import httpx

    from loopml.client.backend import Backend
    from loopml.client.evaluations import Evaluations
    from loopml.client.gates import Gates
    from loopml.client.pipelines import Pipelines

__all__ = ["Client"]


def _backend_for(tracking_uri: str | None, token: str | None, home: str | Path | None) -> Backend:
    from loopml.settings import load_settings

    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = Path(home)
    settings = load_settings(**overrides)
    uri = tracking_uri if tracking_uri is not None else settings.tracking_uri
    if uri and uri.startswith(("http://", "https://")):
        from loopml.client.http_backend import HttpBackend

        return HttpBackend(uri, token if token is not None else settings.token)
    if uri:
        if uri.startswith("file://"):
            uri = uri[len("file://") :]
        settings = load_settings(home=Path(uri))
    from loopml.client.local_backend import LocalBackend

    return LocalBackend.from_settings(settings)


def _cache_dir(home: str | Path | None) -> Path:
    if home is not None:
        return Path(home) / "cache"
    from loopml.settings import load_settings

    return load_settings().home.resolve() / "cache"


class Client:
    """Runs, models, deployments, monitors, feedback, tokens and audit through one backend. `tracking_uri`:
    `http(s)://...` for a server, a directory (or unset: `LOOPML_TRACKING_URI`, else `LOOPML_HOME`, else
    ./loopml-data) for embedded. A metric batch that fails for a passing reason is retried for
    `metric_retry_seconds` (default `LOOPML_METRIC_RETRY_SECONDS`, 300) before its points are given up."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        token: str | None = None,
        home: str | Path | None = None,
        backend: Backend | None = None,
        http_client: httpx.Client | None = None,
        metric_batch_size: int = 10_000,
        metric_flush_seconds: float = 1.0,
        metric_retry_seconds: float | None = None,
    ) -> None:
        if backend is None and http_client is not None:
            from loopml.client.http_backend import HttpBackend

            backend = HttpBackend(tracking_uri or str(http_client.base_url), token, client=http_client)
        self.backend: Backend = backend or _backend_for(tracking_uri, token, home)
        self.cache_dir = _cache_dir(home)
        """Where downloaded model packages are kept, by content digest."""
        if metric_retry_seconds is None:
            from loopml.settings import load_settings

            metric_retry_seconds = load_settings().metric_retry_seconds
        self.metrics = MetricBuffer(
            self.backend.log_metrics, metric_batch_size, metric_flush_seconds, metric_retry_seconds
        )
        self.experiments = Experiments(self)
        self.runs = Runs(self)
        self.tokens = Tokens(self)
        self.audit = Audit(self)
        self.models = Models(self)
        self.deployments = Deployments(self)
        self.monitors = Monitors(self)
        self.feedback = FeedbackLabels(self)
        self.retrain = Retrain(self)
        self.features = Features(self)

    @cached_property
    def pipelines(self) -> Pipelines:
        """Run pipelines and read their runs, step logs and lineage."""
        from loopml.client.pipelines import Pipelines

        return Pipelines(self)

    @cached_property
    def evaluations(self) -> Evaluations:
        """Score model versions on labelled rows and keep the evaluations."""
        from loopml.client.evaluations import Evaluations

        return Evaluations(self)

    @cached_property
    def gates(self) -> Gates:
        """Judge versions against gate policies; aliases that require a passed gate."""
        from loopml.client.gates import Gates

        return Gates(self)

    def close(self) -> None:
        """Flush pending metric points (raising DeliveryFailed if any were not stored), then disconnect."""
        try:
            self.metrics.close()
        finally:
            self.backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

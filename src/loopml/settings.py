"""One typed settings object, read from `LOOPML_*` environment variables.

LOOPML_HOME            embedded data directory (default ./loopml-data)
LOOPML_TRACKING_URI    http(s)://host:port of a loopml server; unset = embedded store
LOOPML_TOKEN           API token sent to that server
LOOPML_DATABASE_URL    metadata store (default sqlite under LOOPML_HOME; postgresql+psycopg://...)
LOOPML_ARTIFACT_ROOT   artifact store root URL (default file:// under LOOPML_HOME; s3://bucket/prefix)
LOOPML_ADMIN_TOKEN     admin token the server accepts from its first start, 32+ characters (else one is printed)
LOOPML_REQUEST_LOG_DIR directory serving replicas write their request log to and the rollout controller reads
                       (default LOOPML_HOME/request-log; share it between replicas and the server)
LOOPML_METRICS_PUBLIC  1: the server's /metrics needs no token (default: any valid token; it shows model metrics)
LOOPML_METRIC_RETRY_SECONDS  how long the SDK retries a metric batch the server or store failed to take (outage,
                       reset, timeout) before giving its points up and reporting them (default 300)
LOOPML_ONLINE_STORE    the feature store's online store: sqlite (default, LOOPML_HOME/online.db), sqlite:///path.db,
                       or redis://host:6379/0
LOOPML_ROLLOUT_INTERVAL_SECONDS  how often the server's rollout controller looks at canaries (default 5)
LOOPML_MONITOR_INTERVAL_SECONDS  how often the server runs every monitor (default 60)
LOOPML_REQUEST_LOG_SEAL_SECONDS  how old a serving replica's open request-log segment gets before it is sealed and
                       published to monitors (default 10): the freshness of what monitors and canaries see
LOOPML_ROLLOUT_LEASE_SECONDS     how long a server replica holds the controller lease without renewing it, so
                       how soon another replica takes over from a dead one (default 30; above the interval)

A malformed value is refused with `InvalidInput` naming the variable (the CLI exits 2).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from loopml.errors import InvalidInput


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOOPML_", extra="ignore")

    home: Path = Path("loopml-data")
    tracking_uri: str | None = None
    token: str | None = None
    database_url: str | None = None
    artifact_root: str | None = None
    admin_token: str | None = None
    s3_endpoint_url: str | None = None
    """Endpoint of an S3-compatible service (MinIO, Ceph, a local test server)."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_request_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Largest request body the server reads (any route but artifact uploads); larger ones get a 413."""
    max_artifact_bytes: int = Field(default=16 * 1024**3, gt=0)
    """Largest artifact upload (streamed to the artifact store, never held in memory)."""

    metric_batch_size: int = Field(default=10_000, gt=0)
    metric_flush_seconds: float = Field(default=1.0, gt=0)
    metric_retry_seconds: float = Field(default=300.0, gt=0)
    """How long the SDK retries a metric batch that failed for a passing reason before giving it up."""
    default_project: str = "default"
    request_log_dir: Path | None = None
    metrics_public: bool = False
    """Serve the server's `/metrics` (model metrics and drift scores) without a token."""
    online_store: str | None = None
    """Where `lm.features` keeps online features: "sqlite" (embedded default), "sqlite:///path.db", "redis://..."."""
    features_source_dirs: str | None = None
    """Directories (separated by `os.pathsep`) whose files the server may read as feature sources; unset: none."""
    rollout_interval_seconds: float = Field(default=5.0, gt=0)
    rollout_lease_seconds: float = Field(default=30.0, gt=0)
    monitor_interval_seconds: float = Field(default=60.0, gt=0)
    """How often `loopml server` runs every monitor (the lease it holds meanwhile is 3x this, at least 180 s)."""
    request_log_seal_seconds: float = Field(default=10.0, gt=0)
    """How old a replica's open request-log segment gets before it is sealed and published."""
    schedule_interval_seconds: float = Field(default=5.0, gt=0)
    """How often `loopml server` looks for due pipeline schedules (cron ticks, new dataset versions)."""
    schedule_lease_seconds: float = Field(default=30.0, gt=0)
    schedule_stale_seconds: float = Field(default=60.0, gt=0)
    """A scheduled run whose server renewed nothing for this long is failed (its server died)."""
    retrain_interval_seconds: float = Field(default=5.0, gt=0)
    """How often `loopml server` evaluates retraining triggers and moves retraining loops."""
    retrain_lease_seconds: float = Field(default=30.0, gt=0)
    retrain_stale_seconds: float = Field(default=60.0, gt=0)
    """A training loop whose server renewed nothing for this long was cut off (its server died)."""
    pipeline_roots: str | None = None
    """Directories (separated by `:`) under which the server runs `path.py:function` pipelines submitted or
    scheduled through its API; unset: the server's working directory."""
    pipeline_modules: str = ""
    """Module prefixes (comma-separated, e.g. `mycompany.pipelines,examples`) whose `module:function` pipelines the
    server runs; empty: none (only files under the pipeline roots)."""
    pipeline_workers: int = Field(default=2, gt=0, le=256)
    """Most pipeline runs the server runs at once, each in a child process of its own; more are refused (503)."""
    pipeline_heartbeat_seconds: float = Field(default=5.0, gt=0)
    """How often the process of a submitted run says it is alive."""
    pipeline_stale_seconds: float = Field(default=60.0, gt=0)
    """A submitted run whose process sent no heartbeat for this long is marked FAILED by the server's sweep."""

    @model_validator(mode="after")
    def _lease_outlives_interval(self) -> Settings:
        if self.rollout_lease_seconds <= self.rollout_interval_seconds:
            raise ValueError(
                f"LOOPML_ROLLOUT_LEASE_SECONDS ({self.rollout_lease_seconds}) must be longer than "
                f"LOOPML_ROLLOUT_INTERVAL_SECONDS ({self.rollout_interval_seconds}): "
                "the holder renews it once per interval"
            )
        if min(self.schedule_lease_seconds, self.schedule_stale_seconds) <= self.schedule_interval_seconds:
            raise ValueError(
                "LOOPML_SCHEDULE_LEASE_SECONDS and LOOPML_SCHEDULE_STALE_SECONDS must be longer than "
                f"LOOPML_SCHEDULE_INTERVAL_SECONDS ({self.schedule_interval_seconds}): both are renewed once per "
                "interval"
            )
        if min(self.retrain_lease_seconds, self.retrain_stale_seconds) <= self.retrain_interval_seconds:
            raise ValueError(
                "LOOPML_RETRAIN_LEASE_SECONDS and LOOPML_RETRAIN_STALE_SECONDS must be longer than "
                f"LOOPML_RETRAIN_INTERVAL_SECONDS ({self.retrain_interval_seconds}): both are renewed once per "
                "interval"
            )
        if self.pipeline_stale_seconds <= 2 * self.pipeline_heartbeat_seconds:
            raise ValueError(
                f"LOOPML_PIPELINE_STALE_SECONDS ({self.pipeline_stale_seconds}) must be longer than twice "
                f"LOOPML_PIPELINE_HEARTBEAT_SECONDS ({self.pipeline_heartbeat_seconds}): a run is judged dead only "
                "after missing heartbeats"
            )
        return self

    def resolved_pipeline_roots(self) -> list[Path]:
        if self.pipeline_roots is None:
            return [Path.cwd()]
        return [Path(p).expanduser() for p in self.pipeline_roots.split(":") if p.strip()]

    def resolved_pipeline_modules(self) -> list[str]:
        return [m.strip() for m in self.pipeline_modules.split(",") if m.strip()]

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'loopml.db').resolve()}"

    def resolved_artifact_root(self) -> str:
        if self.artifact_root:
            return self.artifact_root
        return (self.home / "artifacts").resolve().as_uri()

    def resolved_request_log_dir(self) -> Path:
        return (self.request_log_dir or self.home / "request-log").resolve()

    def feature_source_dirs(self) -> tuple[Path, ...]:
        """The directories a server reads feature sources from (`LOOPML_FEATURES_SOURCE_DIRS`)."""
        import os

        value = self.features_source_dirs or ""
        return tuple(Path(part).resolve() for part in value.split(os.pathsep) if part.strip())


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit keyword overrides on top; `InvalidInput` naming the
    variable when one is malformed."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            if field:
                problems.append(f"LOOPML_{field.upper()}: {error['msg']} (got {error['input']!r})")
            else:  # a check across settings, whose message names them
                problems.append(str(error["msg"]).removeprefix("Value error, "))
        raise InvalidInput("invalid setting: " + "; ".join(problems)) from None

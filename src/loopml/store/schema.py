"""The metadata schema as SQLAlchemy Core tables. Alembic migrations under `store/migrations` create it.

Times are BIGINT milliseconds since the epoch. Latest metric values: SQLite stores NaN as NULL, so a NaN is
kept as value NULL plus `is_nan` true on both backends; +/-inf are stored as they are.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

KEY = 250
"""Longest key of a param, metric or tag, and longest name (as in MLflow)."""
VALUE = 8000
"""Longest param or tag value; longer values are rejected, never silently truncated."""

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("name", String(KEY), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger, nullable=True),  # migration 0010
    Column("updated_at", BigInteger, nullable=True),  # migration 0010: last rename, tag or lifecycle change
    UniqueConstraint("project_id", "name"),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column("experiment_id", Integer, ForeignKey("experiments.id"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)
"""Tags of experiments (migration 0010; MLflow's experiment tags)."""

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(KEY), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("parent_run_id", String(32), ForeignKey("runs.id"), nullable=True),
    Column("deleted_at", BigInteger, nullable=True),  # migration 0010; a deleted run is left out of searches
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_params_key_run", "key", "run_id"),
    # On SQLite, migration 0001 adds covering (key, value, run_id) indexes on params and tags (see there).
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=False),
    Column("key", String(KEY), nullable=False),
    Column("count", Integer, nullable=False),
    Column("min_step", BigInteger, nullable=False),
    Column("max_step", BigInteger, nullable=False),
    Column("steps", LargeBinary, nullable=False),
    Column("timestamps", LargeBinary, nullable=False),
    Column("values", LargeBinary, nullable=False),
    Index("ix_metric_chunks_run_key", "run_id", "key"),
)
"""Metric history in chunks: one row per key per logged batch, holding that batch's points as packed
little-endian arrays (int64 steps, int64 timestamps, float64 values; NaN and inf kept as they are).
A batch of 100,000 points of one key is one row, so ingest costs a few inserts, not 100,000."""

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Float, nullable=True),
    Column("is_nan", Boolean, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value", "run_id"),
)

metric_batches = Table(
    "metric_batches",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("batch_key", String(64), primary_key=True),
    Column("points", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
"""The idempotency keys of the metric batches applied to each run, written in the transaction that stores
the points: a batch sent again after a commit its sender did not see is recognised and stored only once."""

datasets = Table(
    "datasets",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("name", String(KEY), nullable=False),
    Column("schema", Text, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

run_datasets = Table(
    "run_datasets",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("digest", String(64), ForeignKey("datasets.digest"), primary_key=True),
    Column("role", String(32), primary_key=True),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(KEY), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("project", String(KEY), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("time", BigInteger, nullable=False),
    Column("actor", String(KEY), nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity_type", String(64), nullable=False),
    Column("entity_id", String(KEY), nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("project", String(KEY), nullable=True),  # migration 0008; not hashed
    Index("ix_audit_log_action_entity", "action", "entity_id"),
    Index("ix_audit_log_project_seq", "project", "seq"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
"""One row: the last sequence number and hash. Locked by every writer, so the chain never forks, and
deleting the newest audit rows is detected."""

# -- model registry (migration 0002) ------------------------------------------------------------------

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("name", String(KEY), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("owner", String(KEY), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
"""Names are unique across projects, so `models:/name@alias` needs no project. A model's row is locked by
every change to the model, its versions or its aliases: version numbers and alias moves are serialised."""

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=False),
    Column("artifact_path", String(1024), nullable=False),
    Column("manifest_digest", String(64), nullable=False),
    Column("flavor", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("description", Text, nullable=False),
    Column("signature", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(KEY), nullable=False),
    Index("ix_model_versions_run_id", "run_id"),
)

_VERSION_KEY = ("model_id", "version")
_VERSION_REF = ("model_versions.model_id", "model_versions.version")

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(_VERSION_KEY, _VERSION_REF),
)

model_version_metrics = Table(
    "model_version_metrics",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("key", String(KEY), primary_key=True),
    Column("value", Float, nullable=True),
    Column("is_nan", Boolean, nullable=False),
    ForeignKeyConstraint(_VERSION_KEY, _VERSION_REF),
    Index("ix_model_version_metrics_key_value", "key", "value"),
)
"""The run's latest metric values when the version was registered (NaN as value NULL + is_nan, as in
`latest_metrics`)."""

model_version_datasets = Table(
    "model_version_datasets",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("digest", String(64), ForeignKey("datasets.digest"), primary_key=True),
    Column("role", String(32), primary_key=True),
    ForeignKeyConstraint(_VERSION_KEY, _VERSION_REF),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    ForeignKeyConstraint(_VERSION_KEY, _VERSION_REF),
)
"""One row per alias: the primary key makes an alias point at exactly one version, the foreign key at an
existing one."""

# -- deployments (migration 0003) ---------------------------------------------------------------------

deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("name", String(KEY), nullable=False, unique=True),
    Column("strategy", String(16), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("spec", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
"""The current revision of each deployment; `spec` is its JSON (versions, weights, steps, thresholds). The
row is locked by every change, so revisions of one deployment are serialised."""

deployment_revisions = Table(
    "deployment_revisions",
    metadata,
    Column("deployment_id", Integer, ForeignKey("deployments.id"), primary_key=True),
    Column("revision", Integer, primary_key=True, autoincrement=False),
    Column("spec", Text, nullable=False),
    Column("actor", String(KEY), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
"""Every revision a deployment ever had (its history), including the current one."""

rollout_decisions = Table(
    "rollout_decisions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("deployment_id", Integer, ForeignKey("deployments.id"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("step", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("metrics", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("time", BigInteger, nullable=False),
    Index("ix_rollout_decisions_deployment_time", "deployment_id", "time"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(KEY), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
"""One row per background controller: the server replica that runs it until `expires_at` (ms)."""

# -- monitoring (migration 0004) ----------------------------------------------------------------------

reference_profiles = Table(
    "reference_profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(KEY), nullable=False),
    Column("version", Integer, nullable=False),
    Column("profile", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(KEY), nullable=False),
    UniqueConstraint("model", "version"),
)
"""The reference profile (`loopml.data.Profile` as JSON) of a model version: monitoring bins against it and
never re-reads the training data."""

request_log_segments = Table(
    "request_log_segments",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("name", String(1024), nullable=False),
    Column("deployments", Text, nullable=False),
    Column("min_time", BigInteger, nullable=False),
    Column("max_time", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_request_log_segments_max_time", "max_time"),
)
"""Sealed request-log segments published to the artifact store (blob = sha256). `deployments` is a JSON array;
a segment rarely holds more than one, so monitors filter on it after the time-range query."""

monitors = Table(
    "monitors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY), nullable=False, unique=True),
    Column("deployment", String(KEY), nullable=False),
    Column("model", String(KEY), nullable=True),
    Column("version", Integer, nullable=True),
    Column("window_seconds", BigInteger, nullable=True),
    Column("window_rows", BigInteger, nullable=True),
    Column("label_delay_seconds", BigInteger, nullable=False),
    Column("consecutive", Integer, nullable=False),
    Column("thresholds", Text, nullable=False),
    Column("alerts", Text, nullable=False),
    Column("options", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(KEY), nullable=False),
    Column("last_run_at", BigInteger, nullable=True),
)
"""A monitor of one deployment: tumbling windows by time (`window_seconds`) or by count (`window_rows`),
`thresholds` and alert rules (`alerts`: webhook URL and kinds) as JSON, `options` (task, key column, ...)."""

monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column("monitor_id", Integer, ForeignKey("monitors.id"), primary_key=True),
    Column("start_time", BigInteger, primary_key=True, autoincrement=False),
    Column("end_time", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("labelled_rows", BigInteger, nullable=False),
    Column("model", String(KEY), nullable=True),
    Column("version", Integer, nullable=True),
    Column("drift", Text, nullable=True),
    Column("performance", Text, nullable=True),
    Column("breaches", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
"""One row per computed window; `performance` stays NULL until the label delay after the window has passed."""

feedback = Table(
    "feedback",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("request_id", String(KEY), nullable=True),
    Column("business_key", String(KEY), nullable=True),
    Column("label", Text, nullable=False),
    Column("label_time", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("project", String(KEY), nullable=False, server_default=""),  # migration 0008
    UniqueConstraint("project", "request_id"),
    UniqueConstraint("project", "business_key"),
    Index("ix_feedback_received_at", "received_at"),
)
"""Ground truth that arrived after the prediction, by request id or by a business key (a column of the
inputs named by the monitor). A label sent again for the same id replaces the earlier one. `project` is the
project of the token that sent it ("" for a global token): a monitor joins its own project's labels and the
global ones, never another project's."""

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor_id", Integer, ForeignKey("monitors.id"), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("dedupe_key", String(512), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("first_window", BigInteger, nullable=False),
    Column("last_window", BigInteger, nullable=False),
    Column("details", Text, nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger, nullable=True),
    Column("delivered", Boolean, nullable=False),
    Column("delivered_state", String(16), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Index("ix_alerts_monitor_state", "monitor_id", "state"),
)
"""An alert per breach streak of one kind: opened after k consecutive breaching windows, resolved by the first
window that does not breach. `delivered_state` is the last state the webhook acknowledged (so each state is
POSTed once)."""

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("pipeline", String(KEY), nullable=False),
    Column("ref", Text, nullable=False),
    Column("executor", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("retry_of", String(32), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("holder", String(KEY), nullable=True),
    Column("heartbeat_at", BigInteger, nullable=True),
    Index("ix_pipeline_runs_pipeline_created", "pipeline", "created_at"),
    Index("ux_pipeline_runs_retry_of", "retry_of", unique=True),
    Index("ix_pipeline_runs_heartbeat", "heartbeat_at"),
)
"""A pipeline run is a tracking run (status, times, params, tags); this row adds what to run it again from:
the pipeline's name and reference, the executor, the parameters as JSON and what triggered it. A run submitted
to a server (migration 0017_pipeops) also has the process running it (`holder`, host:pid) and its heartbeat;
a run is retried at most once (`retry_of` is unique: retry the retry)."""

step_runs = Table(
    "step_runs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("pipeline_run_id", String(32), ForeignKey("runs.id"), nullable=False),
    Column("step", String(KEY), nullable=False),
    Column("state", String(16), nullable=False),
    Column("cache_key", String(64), nullable=True),
    Column("decision", Text, nullable=False),
    Column("components", Text, nullable=False),
    Column("inputs", Text, nullable=False),
    Column("outputs", Text, nullable=False),
    Column("upstream", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("traceback", Text, nullable=True),
    Column("log_digest", String(64), nullable=True),
    Column("cached_from", String(32), nullable=True),
    Column("started_at", BigInteger, nullable=True),
    Column("ended_at", BigInteger, nullable=True),
    Index("ix_step_runs_pipeline_run", "pipeline_run_id"),
    Index("ix_step_runs_cache_key", "cache_key"),
)
"""Each step run is a nested tracking run; this row holds its state, cache key and the decision taken on
it, and its inputs and outputs (artifact references as JSON)."""

lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("source_kind", String(16), nullable=False),
    Column("source_id", String(KEY), nullable=False),
    Column("target_kind", String(16), nullable=False),
    Column("target_id", String(KEY), nullable=False),
    Column("pipeline_run_id", String(32), ForeignKey("runs.id"), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("source_kind", "source_id", "target_kind", "target_id"),
    Index("ix_lineage_edges_target", "target_kind", "target_id"),
)
"""Lineage: dataset -> step run -> artifact or model -> registered model version. Walked backwards from a
model version, it answers which data and code produced it."""

feature_definitions = Table(
    "feature_definitions",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("name", String(KEY), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("digest", String(64), nullable=False),
    Column("spec", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(KEY), nullable=False),
    Column("deleted_at", BigInteger, nullable=True),
)
"""Every version of every feature-store definition; the current one of a name is its highest version, unless
that version was deleted (`deleted_at`). Versions are never rewritten: a training set names one."""

feature_training_sets = Table(
    "feature_training_sets",
    metadata,
    Column("digest", String(64), ForeignKey("datasets.digest"), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True),
    Column("view", String(KEY), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
)
"""Lineage: the feature view versions a training set (a logged dataset) was joined from."""

feature_materializations = Table(
    "feature_materializations",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True),
    Column("view", String(KEY), primary_key=True),
    Column("store", String(KEY), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("buckets", Integer, nullable=False),
    Column("done_buckets", Integer, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("watermark_ms", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
)
"""The materialization job of a view into one online store: its progress (so a killed job resumes at the
first bucket not written) and the watermark an incremental run starts from (end of the last finished job)."""

feature_pushes = Table(
    "feature_pushes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("view", String(KEY), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("min_ts", BigInteger, nullable=False),
    Column("max_ts", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_feature_pushes_project_view", "project_id", "view"),
)
"""Rows pushed to a view (a Parquet blob in the artifact store each), read with its source offline."""

# -- pipeline schedules (migration 0011_pipeext) -----------------------------------------------------

pipeline_schedules = Table(
    "pipeline_schedules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY), nullable=False, unique=True),
    Column("project", String(KEY), nullable=False),
    Column("pipeline", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("executor", String(64), nullable=False),
    Column("cron", String(KEY), nullable=True),
    Column("dataset", String(KEY), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(KEY), nullable=False),
    Column("last_tick", BigInteger, nullable=True),
)
"""What starts a pipeline on its own: a cron expression (UTC) and/or new versions of a dataset. `last_tick`
is the last cron tick handled (ms), moved in the transaction that claims the tick's firing."""

pipeline_firings = Table(
    "pipeline_firings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("schedule_id", Integer, ForeignKey("pipeline_schedules.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(512), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("context", Text, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("holder", String(KEY), nullable=True),
    Column("fired_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=True),
    UniqueConstraint("schedule_id", "key"),
    Index("ix_pipeline_firings_state", "state"),
)
"""Each start of a scheduled pipeline. The unique (schedule, key) is what makes a cron tick or a dataset
version fire once across server replicas; `holder` is the server running it, which renews `heartbeat_at`
while it does, so a firing whose server died is found and its run failed instead of staying RUNNING."""


# -- MLflow 3 logged models (migration 0014_mlflowreg) ---------------------------------------------------

logged_models = Table(
    "logged_models",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=False),
    Column("name", String(KEY), nullable=False),
    Column("model_type", String(KEY), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_message", Text, nullable=False),
    Column("manifest_digest", String(64), nullable=True),
    Column("flavor", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_logged_models_experiment_created", "experiment_id", "created_at"),
    Index("ix_logged_models_run_id", "run_id"),
)
"""A model logged through MLflow 3's API: its MLflow files are the run's artifacts under `mlflow-models/<id>/`;
once finalized READY, `manifest_digest` names the loopml package made from them (`models/<id>/`)."""

logged_model_tags = Table(
    "logged_model_tags",
    metadata,
    Column("model_id", String(64), ForeignKey("logged_models.id"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

logged_model_params = Table(
    "logged_model_params",
    metadata,
    Column("model_id", String(64), ForeignKey("logged_models.id"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)


# -- retraining policies and loops (migration 0016_retrain) ----------------------------------------------

retrain_policies = Table(
    "retrain_policies",
    metadata,
    Column("name", String(KEY), primary_key=True),
    Column("project", String(KEY), nullable=False),
    Column("spec", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_tick", BigInteger, nullable=True),
)
"""A retraining policy: `spec` is its JSON (model, monitor, pipeline, triggers, gate YAML, rollout, guards);
`last_tick` the last cron tick handled, moved in the transaction that claims that tick's loop."""

retrain_loops = Table(
    "retrain_loops",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("policy", String(KEY), nullable=False),
    Column("project", String(KEY), nullable=False),
    Column("state", String(32), nullable=False),
    Column("active_policy", String(KEY), nullable=True, unique=True),
    Column("trigger_key", String(512), nullable=False),
    Column("reason", Text, nullable=False),
    Column("context", Text, nullable=False),
    Column("pipeline_run_id", String(32), nullable=True),
    Column("version", Integer, nullable=True),
    Column("gate", Text, nullable=True),
    Column("rollout", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("holder", String(KEY), nullable=True),
    Column("heartbeat_at", BigInteger, nullable=True),
    Column("events", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("policy", "trigger_key"),
    Index("ix_retrain_loops_policy_created", "policy", "created_at"),
)
"""One retraining loop. `active_policy` is the policy's name while the loop runs and NULL once it ended: its
unique constraint is what lets one loop at a time run per policy, whichever server claims; (policy,
trigger_key) makes one trigger start at most one loop."""
# -- evaluations and gates (migration 0015_evalgate) ---------------------------------------------------

evaluations = Table(
    "evaluations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_id", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("manifest_digest", String(64), nullable=False),
    Column("project", String(KEY), nullable=False),
    Column("task", String(16), nullable=False),
    Column("label", String(KEY), nullable=False),
    Column("dataset_digest", String(64), nullable=False),
    Column("dataset_source", Text, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("baseline_version", Integer, nullable=True),
    Column("body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(KEY), nullable=False),
    Index("ix_evaluations_model_id_version_created_at", "model_id", "version", "created_at"),
)
"""A version scored on a dataset; `body` holds the metrics, slices and baseline comparison as JSON. Rows name
the version by model id, number and package digest (no foreign key: deleting a version keeps its history, and a
later version that reuses the number has another digest, so it never inherits an evaluation)."""

gate_results = Table(
    "gate_results",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_id", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("manifest_digest", String(64), nullable=False),
    Column("project", String(KEY), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("policy_digest", String(64), nullable=False),
    Column("policy", Text, nullable=False),
    Column("evaluation_id", String(32), nullable=True),
    Column("checks", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(KEY), nullable=False),
    Index("ix_gate_results_model_id_version_created_at", "model_id", "version", "created_at"),
)
"""A version judged against a gate policy; the newest row of a version is its gate status."""

alias_gate_requirements = Table(
    "alias_gate_requirements",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(KEY), nullable=False),
)
"""Aliases of a model that may only point at a version whose newest gate result passed."""

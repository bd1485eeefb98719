"""The SQL metadata store: one repository per aggregate, all sharing one transaction per unit of work.

Owns the schema, migrations and every SQL statement. Imports `loopml.domain` and `loopml.errors` only
(never a service, the server or the SDK).

    store = MetadataStore.open("sqlite:///loopml-data/loopml.db")
    with store.write(actor="ann") as unit:        # one transaction; audit rows go in it
        run = unit.runs.get(run_id)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from loopml.errors import StoreUnavailable
from loopml.store.artifact_records import ArtifactRecordRepository
from loopml.store.audit import AuditFilter, AuditLog, read_events, verify_chain
from loopml.store.datasets import DatasetRepository
from loopml.store.deployments import DeploymentRepository
from loopml.store.engine import WRITE, create_store_engine
from loopml.store.evaluations import EvaluationRepository
from loopml.store.experiments import ExperimentRepository, ProjectRepository
from loopml.store.features import FeatureRepository
from loopml.store.leases import LeaseRepository
from loopml.store.logged_models import LoggedModelRepository
from loopml.store.metrics import MetricRepository
from loopml.store.migrations import upgrade_to_head
from loopml.store.model_versions import ModelVersionRepository
from loopml.store.monitoring import MonitoringDataRepository, MonitorRepository
from loopml.store.notifications import DeploymentListener
from loopml.store.pipelines import PipelineRepository
from loopml.store.registered_models import RegisteredModelRepository
from loopml.store.retrain import RetrainRepository
from loopml.store.runs import RunRepository
from loopml.store.schedules import ScheduleRepository
from loopml.store.tokens import TokenRepository

__all__ = ["AuditFilter", "DeploymentListener", "MetadataStore", "Unit", "read_events", "verify_chain"]


class Unit:
    """The repositories of one transaction. Every mutation they make is audited as `actor`."""

    def __init__(self, conn: Connection, actor: str) -> None:
        self.connection = conn
        self.audit = AuditLog(conn, actor)

    @cached_property
    def projects(self) -> ProjectRepository:
        return ProjectRepository(self.connection, self.audit)

    @cached_property
    def experiments(self) -> ExperimentRepository:
        return ExperimentRepository(self.connection, self.audit)

    @cached_property
    def runs(self) -> RunRepository:
        return RunRepository(self.connection, self.audit)

    @cached_property
    def metrics(self) -> MetricRepository:
        return MetricRepository(self.connection, self.audit)

    @cached_property
    def datasets(self) -> DatasetRepository:
        return DatasetRepository(self.connection, self.audit)

    @cached_property
    def artifacts(self) -> ArtifactRecordRepository:
        return ArtifactRecordRepository(self.connection, self.audit)

    @cached_property
    def tokens(self) -> TokenRepository:
        return TokenRepository(self.connection, self.audit)

    @cached_property
    def models(self) -> RegisteredModelRepository:
        return RegisteredModelRepository(self.connection, self.audit)

    @cached_property
    def model_versions(self) -> ModelVersionRepository:
        return ModelVersionRepository(self.connection, self.audit)

    @cached_property
    def logged_models(self) -> LoggedModelRepository:
        return LoggedModelRepository(self.connection, self.audit)

    @cached_property
    def monitoring(self) -> MonitoringDataRepository:
        return MonitoringDataRepository(self.connection, self.audit)

    @cached_property
    def monitors(self) -> MonitorRepository:
        return MonitorRepository(self.connection, self.audit)

    @cached_property
    def deployments(self) -> DeploymentRepository:
        return DeploymentRepository(self.connection, self.audit)

    @cached_property
    def pipelines(self) -> PipelineRepository:
        return PipelineRepository(self.connection, self.audit)

    @cached_property
    def features(self) -> FeatureRepository:
        return FeatureRepository(self.connection, self.audit)

    @cached_property
    def schedules(self) -> ScheduleRepository:
        return ScheduleRepository(self.connection, self.audit)

    @cached_property
    def retrain(self) -> RetrainRepository:
        return RetrainRepository(self.connection, self.audit)

    @cached_property
    def evaluations(self) -> EvaluationRepository:
        return EvaluationRepository(self.connection, self.audit)

    @cached_property
    def leases(self) -> LeaseRepository:
        return LeaseRepository(self.connection)


class MetadataStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, upgrade: bool = True) -> MetadataStore:
        """Connect to the database at `url`, bringing its schema to the current version first."""
        engine = create_store_engine(url)
        if upgrade:
            try:
                upgrade_to_head(engine)
            except OperationalError as error:  # no such database or host, refused, no permission...
                engine.dispose()
                where = engine.url.render_as_string(hide_password=True)
                reason = " ".join(str(error.orig or error).split())
                raise StoreUnavailable(
                    f"cannot open the metadata store {where}: {reason}; check LOOPML_DATABASE_URL (or LOOPML_HOME)"
                ) from None
        if engine.dialect.name == "sqlite":
            # Fresh planner statistics (sampled, so bounded in time): with them SQLite picks the covering
            # indexes for search filters. PostgreSQL keeps its own statistics with autovacuum.
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA analysis_limit=1000")
                conn.exec_driver_sql("ANALYZE")
        return cls(engine)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def write(self, actor: str) -> Iterator[Unit]:
        """A read-write transaction: committed when the block ends, rolled back if it raises."""
        with self.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            yield Unit(conn, actor)

    @contextmanager
    def read(self) -> Iterator[Unit]:
        with self.engine.connect() as conn, conn.begin():
            yield Unit(conn, actor="reader")

    def deployment_listener(self) -> DeploymentListener | None:
        """A listener for deployment changes (PostgreSQL), or None where the database has none (SQLite)."""
        return DeploymentListener(self.engine) if self.engine.dialect.name == "postgresql" else None

    def close(self) -> None:
        self.engine.dispose()

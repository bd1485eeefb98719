"""The FastAPI application: `build_app` wires given services, `create_app` opens them from settings,
`run_server` bootstraps the admin token and serves with uvicorn."""

from __future__ import annotations

import importlib.metadata
import threading

import uvicorn
from fastapi import APIRouter, FastAPI

from loopml.artifacts import open_artifact_store
from loopml.deploy import DeployService, RolloutController
from loopml.errors import InvalidInput
from loopml.evaluation import EvaluationService
from loopml.features import FeatureStore, open_online_store
from loopml.gates import GateService
from loopml.governance import GovernanceService
from loopml.monitoring import MonitoringService, MonitorScheduler
from loopml.pipelines import (
    PipelineLauncher,
    PipelineScheduler,
    PipelineService,
    RefPolicy,
    RunLauncher,
    RunSweeper,
    ScheduleService,
)
from loopml.registry import LoggedModelService, RegistryService, forbid_pickle_in_this_process
from loopml.retraining import RetrainController, RetrainService
from loopml.server import mlflow
from loopml.server.admission import Admission
from loopml.server.auth import PrincipalCache
from loopml.server.errors import ERROR_RESPONSES, document_errors, install_error_handlers
from loopml.server.responses import OrjsonResponse
from loopml.server.routers import artifacts, health, metrics, scrape, tokens
from loopml.server.routes import operation_router
from loopml.settings import Settings, load_settings
from loopml.store import MetadataStore
from loopml.tracking import TrackingService

__all__ = ["API_PREFIX", "build_app", "create_app", "run_server"]

API_PREFIX = "/api/v1"
MIN_ADMIN_TOKEN_CHARS = 32
"""A `LOOPML_ADMIN_TOKEN` shorter than this is refused at start (minted tokens have 50 characters)."""
NO_PICKLE = "the loopml API server never loads pickled models (load them in `loopml serve` or your own process)"


def _version() -> str:
    try:
        return importlib.metadata.version("loopml")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def server_feature_store(tracking: TrackingService, settings: Settings) -> FeatureStore:
    """The feature store of the REST API: reads sources only under `LOOPML_FEATURES_SOURCE_DIRS` and runs no
    on-demand view (user code); the online store is the one `LOOPML_ONLINE_STORE` names."""
    home = settings.home
    return FeatureStore(
        tracking.store,
        tracking.artifacts,
        lambda: open_online_store(settings.online_store, home),
        (home / "cache" / "features").resolve(),
        tracking.default_project,
        source_dirs=settings.feature_source_dirs(),
        run_user_code=False,
    )


def build_app(
    tracking: TrackingService,
    governance: GovernanceService,
    settings: Settings,
    registry: RegistryService | None = None,
    deploy: DeployService | None = None,
    monitoring: MonitoringService | None = None,
    features: FeatureStore | None = None,
) -> FastAPI:
    """The REST API over the given services (tests build it in-process with their own store). Without
    `registry` or `deploy`, they are built on the tracking service's store (`deploy` reads the request log
    under `settings.resolved_request_log_dir()`)."""
    app = FastAPI(
        title="loopml",
        version=_version(),
        default_response_class=OrjsonResponse,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.tracking = tracking
    app.state.governance = governance
    app.state.registry = registry or RegistryService(tracking.store, default_project=tracking.default_project)
    app.state.deploy = deploy or DeployService(
        tracking.store, app.state.registry, request_log=settings.resolved_request_log_dir()
    )
    app.state.monitoring = monitoring or MonitoringService(
        tracking.store, tracking.artifacts, app.state.registry, request_log=settings.resolved_request_log_dir()
    )
    app.state.evaluations = EvaluationService(tracking.store, app.state.registry)
    app.state.gates = GateService(tracking.store, app.state.evaluations)
    app.state.logged_models = LoggedModelService(tracking.store, tracking.artifacts)
    app.state.retrain = RetrainService(tracking.store, app.state.registry, tracking.default_project)
    # Pipelines: remote callers name code by reference, so the server runs only what its roots and modules allow.
    refs = RefPolicy(settings.resolved_pipeline_roots(), settings.resolved_pipeline_modules())
    app.state.pipelines = PipelineService(tracking.store, tracking.artifacts, tracking.default_project)
    app.state.schedules = ScheduleService(tracking.store, tracking.default_project, refs=refs)
    app.state.launcher = RunLauncher(
        app.state.pipelines,
        refs,
        workers=settings.pipeline_workers,
        heartbeat_seconds=settings.pipeline_heartbeat_seconds,
    )
    app.state.features = features or server_feature_store(tracking, settings)
    app.state.settings = settings
    app.state.principal_cache = PrincipalCache(governance)
    install_error_handlers(app, foreign=[(mlflow.is_mlflow_path, mlflow.render_exception)])
    document_errors(app)
    api = APIRouter(prefix=API_PREFIX)
    operations = operation_router(artifacts.ENDPOINTS | metrics.ENDPOINTS | tokens.ENDPOINTS)
    api.include_router(health.router)  # the one route that needs no token
    api.include_router(operations)  # every operation of the table; each declares the errors it may answer
    app.include_router(api)
    app.include_router(scrape.router, responses={401: ERROR_RESPONSES[401]})
    # MLflow's protocol: an adapter over the same services, out of loopml's OpenAPI document (it is MLflow's).
    for prefix, router in mlflow.ROUTERS:
        app.include_router(router, prefix=prefix, include_in_schema=False)
    app.add_middleware(
        Admission,
        routers=[(API_PREFIX, health.router), (API_PREFIX, operations), ("", scrape.router), *mlflow.ROUTERS],
        principals=app.state.principal_cache,
        max_request_bytes=settings.max_request_bytes,
        route_limits={
            artifacts.upload_artifact: settings.max_artifact_bytes,
            mlflow.upload_artifact: settings.max_artifact_bytes,
        },
        error_renderers={prefix: mlflow.admission_error for prefix, _ in mlflow.ROUTERS},
    )
    return app


def _services(settings: Settings) -> tuple[TrackingService, GovernanceService]:
    store = MetadataStore.open(settings.resolved_database_url())
    blobs = open_artifact_store(settings.resolved_artifact_root(), settings.s3_endpoint_url)
    blobs.sweep_temp()  # uploads cut off by a crash of the previous server
    return TrackingService(store, blobs, default_project=settings.default_project), GovernanceService(store)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The REST API over the metadata and artifact stores named by `settings` (the environment by default)."""
    settings = settings or load_settings()
    forbid_pickle_in_this_process(NO_PICKLE)
    tracking, governance = _services(settings)
    return build_app(tracking, governance, settings)


def _with_ui(app: FastAPI) -> FastAPI:
    from loopml.ui import install_ui  # the UI imports the server's error mapping: mounted after the API is built

    return install_ui(app)


def run_server(settings: Settings | None = None, host: str | None = None, port: int | None = None) -> None:
    """Serve the API until interrupted; on a store with no token, mint an admin token and print it once."""
    settings = settings or load_settings()
    if settings.admin_token is not None and len(settings.admin_token) < MIN_ADMIN_TOKEN_CHARS:
        raise InvalidInput(
            f"LOOPML_ADMIN_TOKEN is {len(settings.admin_token)} characters long; use a random secret of at "
            f'least {MIN_ADMIN_TOKEN_CHARS} characters (e.g. `python -c "import secrets; '
            'print(secrets.token_urlsafe(32))"`), or unset it to have the server mint one'
        )
    forbid_pickle_in_this_process(NO_PICKLE)
    if not settings.database_url or not settings.artifact_root:
        settings.home.mkdir(parents=True, exist_ok=True)  # the embedded defaults live under LOOPML_HOME
    tracking, governance = _services(settings)
    minted = governance.bootstrap_admin(settings.admin_token)
    if minted is not None:
        print(f"loopml: first start; admin token (shown once, store it now): {minted}", flush=True)
    app = _with_ui(build_app(tracking, governance, settings))  # the web UI at /, on the same services
    # The rollout controller runs here, not in build_app: tests build apps without background threads. With
    # several server replicas on one database, a lease row lets exactly one of them act at a time.
    controller = RolloutController(
        app.state.deploy,
        interval_seconds=settings.rollout_interval_seconds,
        lease_seconds=settings.rollout_lease_seconds,
    )
    controller.start()
    scheduler = MonitorScheduler(  # runs every monitor each LOOPML_MONITOR_INTERVAL_SECONDS, on one replica
        app.state.monitoring,
        interval_seconds=settings.monitor_interval_seconds,
        lease_seconds=max(180.0, 3 * settings.monitor_interval_seconds),
    )
    scheduler.start()
    # Pipeline schedules fire here, on one replica; a scheduled run executes in this process's threads (its
    # steps in the executor's workers), so a server killed mid-run leaves a firing the next pass fails.
    pipelines = PipelineScheduler(
        app.state.schedules,
        PipelineLauncher(app.state.pipelines),
        interval_seconds=settings.schedule_interval_seconds,
        lease_seconds=settings.schedule_lease_seconds,
        stale_seconds=settings.schedule_stale_seconds,
    )
    pipelines.start()
    # Retraining loops move here, on one replica (lease `retrain-controller`); their pipelines train in this
    # process's threads, so a server killed mid-training leaves a loop the next pass resumes or fails.
    retrain = RetrainController(
        app.state.retrain,
        PipelineService(tracking.store, tracking.artifacts, settings.default_project),
        app.state.deploy,
        interval_seconds=settings.retrain_interval_seconds,
        lease_seconds=settings.retrain_lease_seconds,
        stale_seconds=settings.retrain_stale_seconds,
    )
    retrain.start()
    # Submitted runs run in child processes that heartbeat; this fails the runs whose process died.
    sweeper = RunSweeper(
        app.state.pipelines, settings.pipeline_heartbeat_seconds, stale_seconds=settings.pipeline_stale_seconds
    )
    sweeper.start()
    warm_up = threading.Thread(target=app.state.logged_models.warm_up, name="loopml-warm-up", daemon=True)
    warm_up.start()
    try:
        uvicorn.run(app, host=host or settings.host, port=port or settings.port, log_level="warning")
    finally:
        retrain.stop()
        sweeper.stop()
        pipelines.stop()
        scheduler.stop()
        controller.stop()

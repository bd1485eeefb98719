"""`loopml serve`: an inference replica for a model package directory or a deployments file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve(
    model_dir: Annotated[
        Path | None,
        typer.Option(help="A model package directory (from loopml.registry.save_model) to serve.", show_default=False),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Deployment name for --model-dir (default: the directory's name).", show_default=False),
    ] = None,
    deployments_file: Annotated[
        Path | None,
        typer.Option(help="A deployments.json to serve and poll for changes (hot reload).", show_default=False),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 9000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each a full replica).")] = 1,
    max_batch_size: Annotated[int, typer.Option(min=1, help="Most rows per micro-batch.")] = 32,
    max_wait_ms: Annotated[float, typer.Option(min=0, max=1000, help="Longest wait for a micro-batch to fill.")] = 2.0,
    no_batching: Annotated[bool, typer.Option("--no-batching", help="Predict each request on its own.")] = False,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest request body accepted (413 above).")] = 1_048_576,
    poll_seconds: Annotated[float, typer.Option(min=0.05, help="How often the deployments file is re-read.")] = 2.0,
    deployments: Annotated[
        str | None,
        typer.Option(
            help="Deployments to serve from the metadata store (NAME[,NAME]; LOOPML_DATABASE_URL, "
            "LOOPML_ARTIFACT_ROOT), reloaded when they change; answers are logged to LOOPML_REQUEST_LOG_DIR.",
            show_default=False,
        ),
    ] = None,
    request_log: Annotated[
        Path | None,
        typer.Option(
            help="Log every answer to this directory (durable segments, sealed to DIR/sealed/*.parquet). "
            "Default: off, except with --deployments, which log to LOOPML_REQUEST_LOG_DIR.",
            show_default=False,
        ),
    ] = None,
    seal_seconds: Annotated[
        float | None,
        typer.Option(
            min=0.05,
            help="Seal and publish the request log's open segment once it is this old (default "
            "LOOPML_REQUEST_LOG_SEAL_SECONDS, 10): how soon monitors and canary analysis see an answer.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve predictions (loopml JSON, Open Inference Protocol v2, MLflow /invocations) with /metrics."""
    from loopml.serving import ServeConfig
    from loopml.serving import serve as run

    config = ServeConfig(
        model_dir=None if model_dir is None else str(model_dir),
        name=name,
        deployments_file=None if deployments_file is None else str(deployments_file),
        poll_seconds=poll_seconds,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        batching=not no_batching,
        max_body_bytes=max_body_bytes,
        deployments=deployments,
        request_log_dir=_request_log_dir(request_log, deployments),
        seal_seconds=_seal_seconds(seal_seconds),
    )
    run(config, host=host, port=port, workers=workers)


def _request_log_dir(request_log: Path | None, deployments: str | None) -> str | None:
    from loopml.settings import load_settings

    if request_log is not None:
        return str(request_log)
    if deployments is not None:
        return str(load_settings().resolved_request_log_dir())
    return None


def _seal_seconds(seal_seconds: float | None) -> float:
    from loopml.settings import load_settings

    return seal_seconds if seal_seconds is not None else load_settings().request_log_seal_seconds

"""`GET /api/3.0/mlflow/server-info`: what MLflow 3 clients ask before they log (no token needed, as in MLflow)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from loopml.server.mlflow.protocol import MlflowResponse, MlflowRoute

router = APIRouter(route_class=MlflowRoute, default_response_class=MlflowResponse)


@router.get("/server-info")
async def server_info() -> Any:
    # No secrets here: MLflow serves this without login too. Multipart and presigned uploads are off, so
    # clients send each artifact as one streamed PUT through the artifact proxy.
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    }

"""Datasets of a run: log one (by fingerprint: digest, schema, rows) and list them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from loopml.domain import DatasetInput
from loopml.domain.wire import dataset_to_json
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import Tracking
from loopml.server.fields import INT64, Integer, Name, Text

router = APIRouter(tags=["datasets"])


class LogDataset(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    name: Name
    digest: Annotated[str, Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")]
    columns: Annotated[list[tuple[Name, Name]], Field(alias="schema", max_length=10_000)]
    rows: Annotated[Integer, Field(ge=0, le=INT64)]
    source: Annotated[Text, Field(max_length=4096)] = ""
    role: Literal["training", "validation", "test", "reference"] = "training"


@router.post("/runs/{run_id}/datasets")
def log_dataset(run_id: str, body: LogDataset, principal: CurrentPrincipal, tracking: Tracking) -> dict[str, Any]:
    data = DatasetInput(
        name=body.name,
        digest=body.digest,
        schema=tuple(body.columns),
        rows=body.rows,
        source=body.source,
        role=body.role,
    )
    return {"dataset": dataset_to_json(tracking.log_dataset(principal, run_id, data))}


@router.get("/runs/{run_id}/datasets")
def run_datasets(run_id: str, principal: CurrentPrincipal, tracking: Tracking) -> dict[str, Any]:
    return {"datasets": [dataset_to_json(d) for d in tracking.run_datasets(principal, run_id)]}

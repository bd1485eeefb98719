"""A replica warms each version up on its input example before routing any request to it, so a canary's
first requests do not pay for the model's first predictions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from loopml.registry import save_model
from loopml.serving import ModelHost, ServingVersion, StaticSpecSource

from .support import deployment


class RecordingModel:
    """A user model (pyfunc flavor) that keeps the rows it was asked to predict."""

    calls: ClassVar[list[list[dict[str, Any]]]] = []

    def predict(self, frame: pd.DataFrame) -> list[float]:
        rows: list[dict[str, Any]] = frame.to_dict(orient="records")
        RecordingModel.calls.append(rows)
        return [float(r["temp"]) * 100 for r in rows]


def test_a_loaded_version_is_warmed_up_on_its_input_example_before_it_gets_traffic(tmp_path: Path) -> None:
    example = pd.DataFrame({"hr": [17, 3], "temp": [0.62, 0.2]})
    save_model(RecordingModel(), tmp_path / "v1", flavor="pyfunc", input_example=example)
    RecordingModel.calls.clear()
    host = ModelHost(StaticSpecSource([deployment(ServingVersion("bike", 1, tmp_path / "v1"))]), trust_pickle=True)

    async def load() -> None:
        await host.start()
        await host.stop()

    asyncio.run(load())
    assert RecordingModel.calls == [[{"hr": 17, "temp": 0.62}]] * 3  # before the routing table named it

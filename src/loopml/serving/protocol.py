"""What every wire protocol (native, OIP v2, MLflow `/invocations`) implements for the serving app.

A protocol parses its body (`parse`), finds the sticky key's value in it (`sticky_value`), turns it into the
canonical `ModelInput` for one signature (`to_input`), and writes the answer and error bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from loopml.serving.inputs import ModelInput

__all__ = ["Answer", "WireProtocol"]


@dataclass(frozen=True)
class Answer:
    """A computed prediction, for the protocol to format."""

    request_id: str
    deployment: str
    model: str
    version: int
    outputs: list[Any]
    output_dtype: str | None  # the signature's output dtype ("float64", "int64", "string"...), when known
    probabilities: list[list[float]] | None = None  # one list per row, when the request asked for them
    classes: list[Any] | None = None  # the order of each row's probabilities


class WireProtocol(Protocol):
    name: str
    content_types: tuple[str, ...]  # accepted media types; "" accepts a request without a Content-Type

    def parse(self, body: bytes, content_type: str) -> Any: ...

    def sticky_value(self, parsed: Any, field: str) -> object: ...

    def method(self, parsed: Any) -> str:
        """What the request asks the model for: "predict", or "predict_proba" (class probabilities, whose
        answer also carries the predictions' labels where the protocol has room for them)."""
        ...

    def to_input(self, parsed: Any, names: tuple[str, ...], ignore: str | None) -> ModelInput: ...

    def answer(self, parsed: Any, answer: Answer) -> bytes: ...

    def error(self, code: str, message: str) -> bytes: ...

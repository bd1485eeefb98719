"""The loopml native JSON protocol: `POST /v1/deployments/{name}/predict`.

Request: `{"records": [{"temp": 0.3, ...}, ...]}` or `{"columns": {"temp": [0.3, ...], ...}}`.
Answer: `{"id", "deployment", "model", "version", "predictions": [...]}`. With `"output": "probabilities"` a
classifier's answer adds `"classes"` (its labels) and `"probabilities"` (one list per row, in that order).
Error: `{"error": {"code": "...", "message": "..."}}`, as the loopml server answers.
Unknown fields are refused (a typo'd column must not silently become a missing feature); the deployment's
sticky-key field is the one field allowed besides the model's inputs.
"""

from __future__ import annotations

from typing import Any

import orjson

from loopml.errors import InvalidInput
from loopml.serving.inputs import ModelInput, from_columns, from_records, load_json
from loopml.serving.protocol import Answer

__all__ = ["OUTPUTS", "NativeProtocol"]

OUTPUTS = ("predictions", "probabilities")


class NativeProtocol:
    name = "native"
    content_types: tuple[str, ...] = ("application/json", "")

    def parse(self, body: bytes, content_type: str) -> dict[str, Any]:
        del content_type
        data = load_json(body)
        if not isinstance(data, dict):
            raise InvalidInput('the body must be a JSON object with "records" or "columns"')
        if ("records" in data) == ("columns" in data):
            raise InvalidInput('the body must hold exactly one of "records" (a list of rows) or "columns"')
        unknown = [key for key in data if key not in ("records", "columns", "output")]
        if unknown:
            raise InvalidInput(f'unknown field {unknown[0]!r}: the body holds "records" or "columns", and "output"')
        if data.get("output", "predictions") not in OUTPUTS:
            raise InvalidInput(f'"output" must be one of {", ".join(map(repr, OUTPUTS))}, got {data["output"]!r}')
        return data

    def method(self, parsed: dict[str, Any]) -> str:
        return "predict_proba" if parsed.get("output") == "probabilities" else "predict"

    def sticky_value(self, parsed: dict[str, Any], field: str) -> object:
        records = parsed.get("records")
        if isinstance(records, list) and records and isinstance(records[0], dict):
            return records[0].get(field)
        columns = parsed.get("columns")
        if isinstance(columns, dict):
            values = columns.get(field)
            if isinstance(values, list) and values:
                return values[0]
        return None

    def to_input(self, parsed: dict[str, Any], names: tuple[str, ...], ignore: str | None) -> ModelInput:
        if "records" in parsed:
            return from_records(parsed["records"], names, where="records", ignore=ignore)
        return from_columns(parsed["columns"], names, where="columns", ignore=ignore)

    def answer(self, parsed: dict[str, Any], answer: Answer) -> bytes:
        del parsed
        body: dict[str, Any] = {
            "id": answer.request_id,
            "deployment": answer.deployment,
            "model": answer.model,
            "version": answer.version,
            "predictions": answer.outputs,
        }
        if answer.probabilities is not None:
            body["classes"] = answer.classes
            body["probabilities"] = answer.probabilities
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)

    def error(self, code: str, message: str) -> bytes:
        return orjson.dumps({"error": {"code": code, "message": message}})

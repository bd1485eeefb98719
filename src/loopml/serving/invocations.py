"""MLflow's scoring protocol: `POST /invocations`, so MLflow clients switch to loopml without a change.

JSON bodies hold exactly one of `dataframe_split` (`{"columns", "data"}`), `dataframe_records` (a list of
rows as objects), `instances` or `inputs` (rows as objects, rows as lists in signature order, or an object
of columns); `text/csv` bodies have a header row. `"params": {"predict_method": "predict_proba"}` asks a
classifier for class probabilities, as MLflow's scikit-learn flavor takes it. The answer is
`{"predictions": [...]}` (with predict_proba, one list of probabilities per row, in the model's class order); errors are
`{"error_code": "BAD_REQUEST", "message": "..."}`, as MLflow's. Extra columns are dropped, as MLflow does.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
from typing import Any

import orjson

from loopml.errors import InvalidInput
from loopml.serving.inputs import ModelInput, from_columns, from_records, from_rows, load_json
from loopml.serving.protocol import Answer

__all__ = ["FORMATS", "PREDICT_METHODS", "InvocationsProtocol"]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PREDICT_METHODS = ("predict", "predict_proba")
_ERROR_CODES = {
    "not_found": "RESOURCE_DOES_NOT_EXIST",
    "internal_error": "INTERNAL_ERROR",
    "model_error": "INTERNAL_ERROR",
}


class InvocationsProtocol:
    name = "invocations"
    content_types: tuple[str, ...] = ("application/json", "text/csv")

    def parse(self, body: bytes, content_type: str) -> tuple[str, Any, str]:
        if content_type == "text/csv":
            return "csv", _parse_csv(body), "predict"
        data = load_json(body)
        if not isinstance(data, dict):
            raise InvalidInput(f"the body must be a JSON object with one of {', '.join(FORMATS)}")
        found = [key for key in FORMATS if key in data]
        if len(found) != 1:
            raise InvalidInput(
                f"the body must hold exactly one of {', '.join(FORMATS)}"
                + (f"; it holds {', '.join(found)}" if found else "")
            )
        unknown = sorted(data.keys() - {*FORMATS, "params"})
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r}; the body holds one of {', '.join(FORMATS)} and params")
        return found[0], data[found[0]], _predict_method(data.get("params"))

    def sticky_value(self, parsed: tuple[str, Any, str], field: str) -> object:
        kind, data, _ = parsed
        if kind == "csv":
            header, rows = data
            return rows[0][header.index(field)] if field in header and rows and len(rows[0]) == len(header) else None
        if kind == "dataframe_split" and isinstance(data, dict):
            columns, rows = data.get("columns"), data.get("data")
            if isinstance(columns, list) and field in columns and isinstance(rows, list) and rows:
                row = rows[0]
                position = columns.index(field)
                return row[position] if isinstance(row, list) and position < len(row) else None
            return None
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return data[0].get(field)
        if isinstance(data, dict):
            values = data.get(field)
            return values[0] if isinstance(values, list) and values else None
        return None

    def method(self, parsed: tuple[str, Any, str]) -> str:
        return parsed[2]

    def to_input(self, parsed: tuple[str, Any, str], names: tuple[str, ...], ignore: str | None) -> ModelInput:
        del ignore  # extra columns are dropped here anyway
        kind, data, _ = parsed
        if kind == "csv":
            header, rows = data
            return from_rows(rows, names, where="csv rows", header=header, drop_unknown=True)
        if kind == "dataframe_split":
            if not isinstance(data, dict):
                raise InvalidInput('dataframe_split must be an object with "columns" and "data"')
            unknown = sorted(data.keys() - {"columns", "data", "index"})
            if unknown:
                raise InvalidInput(f"dataframe_split: unknown field {unknown[0]!r}")
            header = data.get("columns")
            if header is not None and not isinstance(header, list):
                raise InvalidInput("dataframe_split.columns must be a list of column names")
            if "data" not in data:
                raise InvalidInput("dataframe_split: missing field 'data'")
            return from_rows(data["data"], names, where="dataframe_split.data", header=header, drop_unknown=True)
        if kind == "dataframe_records":
            return from_records(data, names, where="dataframe_records", drop_unknown=True)
        # instances / inputs: rows as objects, rows as lists, or an object of columns
        if isinstance(data, dict):
            return from_columns(data, names, where=kind, drop_unknown=True)
        if isinstance(data, list) and data and isinstance(data[0], list):
            return from_rows(data, names, where=kind)
        if isinstance(data, list) and data and len(names) == 1 and not isinstance(data[0], dict):
            return from_rows([[value] for value in data], names, where=kind)
        return from_records(data, names, where=kind, drop_unknown=True)

    def answer(self, parsed: tuple[str, Any, str], answer: Answer) -> bytes:
        if parsed[2] == "predict_proba":  # as MLflow's scikit-learn flavor: the probabilities are the predictions
            return orjson.dumps({"predictions": answer.probabilities}, option=orjson.OPT_SERIALIZE_NUMPY)
        return orjson.dumps({"predictions": answer.outputs})

    def error(self, code: str, message: str) -> bytes:
        return orjson.dumps({"error_code": _ERROR_CODES.get(code, "BAD_REQUEST"), "message": message})


def _predict_method(params: object) -> str:
    """MLflow's `params={"predict_method": ...}` (its scikit-learn flavor's convention): predict or predict_proba."""
    if params is None:
        return "predict"
    if not isinstance(params, dict):
        raise InvalidInput('params must be an object, e.g. {"predict_method": "predict_proba"}')
    unknown = sorted(params.keys() - {"predict_method"})
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r} in params: this model server takes only predict_method")
    method = params.get("predict_method", "predict")
    if method not in PREDICT_METHODS:
        raise InvalidInput(f"predict_method must be one of {', '.join(PREDICT_METHODS)}, got {method!r}")
    return str(method)


def _parse_csv(body: bytes) -> tuple[list[str], list[list[Any]]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the CSV body is not UTF-8 text") from None
    try:
        table = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise InvalidInput(f"the CSV body does not parse: {exc}") from None
    table = [row for row in table if row]
    if not table:
        raise InvalidInput("the CSV body is empty: send a header row and at least one row")
    header, rows = table[0], table[1:]
    if not rows:
        raise InvalidInput("the CSV body has a header but no rows")
    return [name.strip() for name in header], [[_csv_value(cell) for cell in row] for row in rows]


def _csv_value(cell: str) -> Any:
    text = cell.strip()
    if not text:
        return None
    with contextlib.suppress(ValueError):  # not an integer: try a float next
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return cell
    return None if math.isnan(number) else number

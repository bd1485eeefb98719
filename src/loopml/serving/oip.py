"""The Open Inference Protocol v2 (KServe, Triton) over REST/JSON: `POST /v2/models/{name}[/versions/{v}]/infer`.

Inputs are either one tensor per column (named as the column, shape `[n]` or `[n, 1]`) or one 2-D tensor
`[n, columns]` in signature order (any name). `data` is row-major, flat or nested. The answer holds the output
tensors the request names in `outputs` (default `predict`; a classifier also has `probabilities`, spelled
`predict_proba` as MLServer does: FP64 `[rows, classes]`, the class labels in its `parameters.classes`; request
`parameters.predict_method: "predict_proba"` asks for it too) and echoes the request's `id`. Errors are
`{"error": "..."}` with a 4xx, as the spec says.
Only JSON tensors: Triton's binary tensor extension is refused with a 400 that says to pass `binary_data=False`.
"""

from __future__ import annotations

from typing import Any

import orjson

from loopml.errors import InvalidInput
from loopml.serving.inputs import ModelInput, load_json
from loopml.serving.protocol import Answer

__all__ = ["DATATYPES", "OUTPUT_NAME", "PROBABILITIES", "OipProtocol", "datatype_of"]

OUTPUT_NAME = "predict"
PROBABILITIES = "probabilities"
OUTPUT_NAMES = frozenset({OUTPUT_NAME, PROBABILITIES, "predict_proba"})
_INTS = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
_FLOATS = ("FP16", "FP32", "FP64")
DATATYPES = ("BOOL", *_INTS, *_FLOATS, "BYTES")
_ELEMENT_TYPES: dict[str, frozenset[type]] = {
    "BOOL": frozenset({bool}),
    "BYTES": frozenset({str}),
    **dict.fromkeys(_INTS, frozenset({int})),
    **dict.fromkeys(_FLOATS, frozenset({int, float})),
}
_RANGES: dict[str, tuple[int | float, int | float]] = {
    **{f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)},
    "FP16": (-65504.0, 65504.0),
    "FP32": (-3.4028234663852886e38, 3.4028234663852886e38),
    "FP64": (-1.7976931348623157e308, 1.7976931348623157e308),
}
"""The values each numeric datatype holds: every element is checked against them (a value out of range would
wrap around or become infinity in the tensor the client meant to send)."""
_DTYPE_TO_DATATYPE = {
    "bool": "BOOL",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "string": "BYTES",
    **{name.lower(): name for name in _INTS},
}
_REQUEST_FIELDS = frozenset({"id", "parameters", "inputs", "outputs"})
_TENSOR_FIELDS = frozenset({"name", "shape", "datatype", "data", "parameters"})
_TENSOR_REQUIRED = frozenset({"name", "shape", "datatype", "data"})


def datatype_of(dtype: str) -> str:
    """The OIP datatype of a signature dtype ("float64" -> "FP64"); BYTES for anything not numeric."""
    return _DTYPE_TO_DATATYPE.get(dtype, "BYTES")


class OipProtocol:
    name = "oip"
    content_types: tuple[str, ...] = ("application/json", "")

    def parse(self, body: bytes, content_type: str) -> dict[str, Any]:
        del content_type
        data = load_json(body)
        if not isinstance(data, dict):
            raise InvalidInput("an inference request must be a JSON object")
        if not data.keys() <= _REQUEST_FIELDS:
            unknown = sorted(data.keys() - _REQUEST_FIELDS)
            raise InvalidInput(f"unknown field {unknown[0]!r} in the inference request")
        if "id" in data and not isinstance(data["id"], str):
            raise InvalidInput("id must be a string")
        if not isinstance(data.get("parameters", {}), dict):
            raise InvalidInput("parameters must be an object")
        inputs = data.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise InvalidInput("inputs must be a non-empty list of tensors")
        tensors = {}
        for i, tensor in enumerate(inputs):
            name, values = _tensor(tensor, f"inputs[{i}]")
            if name in tensors:
                raise InvalidInput(f"input {name!r} is given twice")
            tensors[name] = (tensor["shape"], values)
        outputs = data.get("outputs") or []
        if not isinstance(outputs, list):
            raise InvalidInput("outputs must be a list of objects with a name")
        wanted: list[str] = []
        for i, output in enumerate(outputs):
            if not isinstance(output, dict) or not isinstance(output.get("name"), str):
                raise InvalidInput(f"outputs[{i}] must be an object with a name")
            if output["name"] not in OUTPUT_NAMES:
                raise InvalidInput(
                    f"unknown output {output['name']!r}: the outputs are {OUTPUT_NAME!r} and, for a classifier, "
                    f"{PROBABILITIES!r} (or MLServer's {'predict_proba'!r})"
                )
            wanted.append(output["name"])
        method = (data.get("parameters") or {}).get("predict_method", "predict")
        if method not in ("predict", "predict_proba"):
            raise InvalidInput(f"parameters.predict_method must be 'predict' or 'predict_proba', got {method!r}")
        if not wanted:
            wanted = [PROBABILITIES if method == "predict_proba" else OUTPUT_NAME]
        data["tensors"] = tensors
        data["wanted"] = wanted
        return data

    def method(self, parsed: dict[str, Any]) -> str:
        return "predict" if parsed["wanted"] == [OUTPUT_NAME] else "predict_proba"

    def sticky_value(self, parsed: dict[str, Any], field: str) -> object:
        parameters = parsed.get("parameters") or {}
        if field in parameters:
            return parameters[field]
        tensor = parsed["tensors"].get(field)
        return tensor[1][0] if tensor is not None and tensor[1] else None

    def to_input(self, parsed: dict[str, Any], names: tuple[str, ...], ignore: str | None) -> ModelInput:
        tensors: dict[str, tuple[list[int], list[Any]]] = parsed["tensors"]
        wanted = set(names)
        others = [name for name in tensors if name not in wanted and name != ignore]
        if not others:
            return _by_column(tensors, names)
        if len(others) == 1 and not any(name in wanted for name in tensors):
            shape, values = tensors[others[0]]
            if len(shape) == 2 and shape[1] == len(names):
                rows = shape[0]
                if rows == 0:
                    raise InvalidInput(f"input {others[0]!r} has no rows: send at least one")
                width = len(names)
                columns = {name: values[j::width] for j, name in enumerate(names)}
                return ModelInput(columns, rows)
            raise InvalidInput(
                f"input {others[0]!r}: a single tensor must have shape [rows, {len(names)}] (the model's columns "
                f"{', '.join(names)} in that order), got {shape}"
            )
        raise InvalidInput(
            f"unknown input {others[0]!r}: send one tensor per column (named {', '.join(names)}) "
            f"or a single [rows, {len(names)}] tensor"
        )

    def answer(self, parsed: dict[str, Any], answer: Answer) -> bytes:
        outputs = answer.outputs
        if outputs and isinstance(outputs[0], list):
            shape = [len(outputs), len(outputs[0])]
            data = [value for row in outputs for value in row]
        else:
            shape, data = [len(outputs)], outputs
        datatype = datatype_of(answer.output_dtype) if answer.output_dtype else _infer_datatype(data)
        tensors: list[dict[str, Any]] = []
        for name in parsed.get("wanted", (OUTPUT_NAME,)):
            if name == OUTPUT_NAME:
                tensors.append({"name": OUTPUT_NAME, "datatype": datatype, "shape": shape, "data": data})
                continue
            probabilities = answer.probabilities or []
            width = len(answer.classes or ())
            tensors.append(
                {
                    "name": name,
                    "datatype": "FP64",
                    "shape": [len(probabilities), width],
                    "data": [p for row in probabilities for p in row],
                    "parameters": {"classes": answer.classes},
                }
            )
        return orjson.dumps(
            {
                "model_name": answer.deployment,
                "model_version": str(answer.version),
                "id": parsed.get("id", answer.request_id),
                "outputs": tensors,
            }
        )

    def error(self, code: str, message: str) -> bytes:
        del code
        return orjson.dumps({"error": message})


def _tensor(tensor: object, where: str) -> tuple[str, list[Any]]:
    """A checked tensor's name and flat values. The common, well-formed case runs with no string work."""
    if type(tensor) is not dict:
        raise InvalidInput(f"{where} must be a tensor object (name, shape, datatype, data)")
    keys = tensor.keys()
    if not (keys >= _TENSOR_REQUIRED and keys <= _TENSOR_FIELDS):
        _fields_error(tensor, where)
    name, shape, datatype, data = tensor["name"], tensor["shape"], tensor["datatype"], tensor["data"]
    if type(name) is not str or not name:
        raise InvalidInput(f"{where}: name must be a non-empty string")
    params = tensor.get("parameters")
    if params is not None:
        if type(params) is not dict:
            raise InvalidInput(f"input {name!r}: parameters must be an object")
        if params.get("binary_data_size") is not None:
            raise InvalidInput(f"input {name!r}: binary tensor data is not supported; send JSON (binary_data=False)")
    size = 1
    if type(shape) is not list or not shape:
        raise InvalidInput(f"input {name!r}: shape must be a non-empty list of non-negative integers, got {shape!r}")
    for n in shape:
        if type(n) is not int or n < 0:
            raise InvalidInput(f"input {name!r}: shape must be a list of non-negative integers, got {shape!r}")
        size *= n
    allowed = _ELEMENT_TYPES.get(datatype) if type(datatype) is str else None
    if allowed is None:
        raise InvalidInput(f"input {name!r}: unknown datatype {datatype!r}; use one of {', '.join(DATATYPES)}")
    if type(data) is not list:
        raise InvalidInput(f"input {name!r}: data must be a list")
    values = _flatten(data) if data and type(data[0]) is list else data
    if len(values) != size:
        raise InvalidInput(f"input {name!r}: shape {shape} needs {size} values, data has {len(values)}")
    if not set(map(type, values)) <= allowed:
        bad = next(v for v in values if type(v) not in allowed)
        raise InvalidInput(f"input {name!r}: datatype {datatype} cannot hold {type(bad).__name__} {bad!r}")
    limits = _RANGES.get(datatype)
    if limits is not None and values:
        low, high = limits
        if min(values) < low:
            _range_error(name, datatype, next(v for v in values if v < low))
        if max(values) > high:
            _range_error(name, datatype, next(v for v in values if v > high))
    return name, values


def _range_error(name: str, datatype: str, value: object) -> None:
    low, high = _RANGES[datatype]
    span = f"[-{high:g}, {high:g}]" if datatype in _FLOATS else f"[{low}, {high}]"
    raise InvalidInput(f"input {name!r}: {value!r} is out of the range of {datatype} {span}; send a wider datatype")


def _fields_error(tensor: dict[str, Any], where: str) -> None:
    name = tensor.get("name")
    if isinstance(name, str) and name:
        where = f"input {name!r}"
    missing = sorted(_TENSOR_REQUIRED - tensor.keys())
    if missing:
        raise InvalidInput(f"{where}: missing field {missing[0]!r}")
    unknown = sorted(tensor.keys() - _TENSOR_FIELDS)
    raise InvalidInput(f"{where}: unknown field {unknown[0]!r}")


def _flatten(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if type(item) is list:
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _by_column(tensors: dict[str, tuple[list[int], list[Any]]], names: tuple[str, ...]) -> ModelInput:
    columns: dict[str, list[Any]] = {}
    rows = -1
    for name in names:
        tensor = tensors.get(name)
        if tensor is None:
            raise InvalidInput(f"missing input {name!r} (send one tensor per column: {', '.join(names)})")
        shape, values = tensor
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise InvalidInput(f"input {name!r}: a column tensor has shape [rows] or [rows, 1], got {shape}")
        if rows == -1:
            rows = shape[0]
        elif shape[0] != rows:
            raise InvalidInput(f"input {name!r} has {shape[0]} rows but {names[0]!r} has {rows}")
        columns[name] = values
    if rows == 0:
        raise InvalidInput("the inputs have no rows: send at least one")
    return ModelInput(columns, rows)


def _infer_datatype(values: list[Any]) -> str:
    kinds = set(map(type, values))
    if kinds <= {bool}:
        return "BOOL"
    if kinds <= {int}:
        return "INT64"
    if kinds <= {int, float}:
        return "FP64"
    return "BYTES"

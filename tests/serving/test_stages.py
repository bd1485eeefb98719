"""Each stage of the prediction path, called alone on an `Exchange` over a real host with real packages."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import orjson
import pandas as pd
import pytest

from loopml.errors import InvalidInput, NotFound, PayloadTooLarge
from loopml.registry import save_model
from loopml.serving import ModelHost, ServingVersion, StaticSpecSource
from loopml.serving.app import PROTOCOLS
from loopml.serving.batching import Backlog
from loopml.serving.exchange import Disconnected, Exchange, HttpError, classify
from loopml.serving.specs import DeploymentSpec
from loopml.serving.stages import decode, encode, predict, resolve_route, resolve_version, validate

from .support import DATA, FEATURES, Packages, deployment, version
from .test_contracts_inline import bike_contract

T = TypeVar("T")


@asynccontextmanager
async def started(*specs: DeploymentSpec) -> AsyncIterator[ModelHost]:
    host = ModelHost(StaticSpecSource(specs))
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


def run(specs: tuple[DeploymentSpec, ...], body: Callable[[ModelHost], Awaitable[T]]) -> T:
    async def main() -> T:
        async with started(*specs) as host:
            return await body(host)

    return asyncio.run(main())


def exchange(
    protocol: str = "native",
    deployment_name: str | None = "bike",
    *,
    headers: dict[bytes, bytes] | None = None,
    version_number: int | None = None,
    parsed: Any = None,
) -> Exchange:
    made = Exchange(
        PROTOCOLS[protocol],
        "req-1",
        {b"content-type": b"application/json", **(headers or {})},
        deployment_name,
        version_number,
        generated_id=b"x-request-id" not in (headers or {}),
        started=time.perf_counter(),
        time_ms=time.time_ns() // 1_000_000,
    )
    made.parsed = parsed
    return made


def receiver(*chunks: bytes, disconnect: bool = False) -> Callable[[], Awaitable[dict[str, Any]]]:
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]
    if disconnect:
        messages = [{"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return receive


# --- resolve_route ------------------------------------------------------------------------------------------


def test_resolve_route_names_the_deployment_and_refuses_unknown_and_failed_ones(
    packages: Packages, tmp_path: Path
) -> None:
    specs = (deployment(version(packages, 1)), deployment(ServingVersion("bike", 9, tmp_path / "nowhere"), name="gone"))

    async def body(host: ModelHost) -> None:
        found = exchange()
        route = resolve_route(found, host)
        assert (found.deployment, found.route) == ("bike", route)
        with pytest.raises(NotFound, match="'nope'"):
            resolve_route(exchange(deployment_name="nope"), host)
        with pytest.raises(HttpError) as failed:
            resolve_route(exchange(deployment_name="gone"), host)
        assert (failed.value.status, failed.value.code) == (503, "deployment_unavailable")
        with pytest.raises(InvalidInput, match=r"hosts 2 deployments \(bike, gone\)"):
            resolve_route(exchange("invocations", None), host)  # /invocations needs exactly one

    run(specs, body)


def test_resolve_route_for_invocations_takes_the_only_deployment(packages: Packages) -> None:
    async def body(host: ModelHost) -> None:
        found = exchange("invocations", None)
        resolve_route(found, host)
        assert found.deployment == "bike"

    run((deployment(version(packages, 1)),), body)


# --- decode ---------------------------------------------------------------------------------------------------


def test_decode_parses_the_body_read_in_chunks() -> None:
    found = exchange()
    asyncio.run(decode(found, receiver(b'{"records": [{"hr"', b": 1}]}"), 1000))
    assert found.parsed == {"records": [{"hr": 1}]}
    assert found.content_type == "application/json"


@pytest.mark.parametrize(
    ("headers", "chunks", "error", "match"),
    [
        ({b"content-type": b"text/plain"}, [b"{}"], HttpError, "unsupported Content-Type 'text/plain'"),
        ({b"content-length": b"5000"}, [b"{}"], PayloadTooLarge, "5000 bytes"),
        ({}, [b"x" * 600, b"x" * 600], PayloadTooLarge, "over 1000 bytes"),
        ({}, [b'{"records": [1'], InvalidInput, "not valid JSON"),
        ({}, [b'{"records": [], "colums": {}}'], InvalidInput, "unknown field 'colums'"),
    ],
)
def test_decode_refuses_what_it_cannot_read(
    headers: dict[bytes, bytes], chunks: list[bytes], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        asyncio.run(decode(exchange(headers=headers), receiver(*chunks), 1000))


def test_decode_notices_a_client_that_went_away() -> None:
    with pytest.raises(Disconnected):
        asyncio.run(decode(exchange(), receiver(disconnect=True), 1000))


def test_decode_takes_the_oip_id_only_when_the_client_sent_no_request_id() -> None:
    body = orjson.dumps({"id": "oip-7", "inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]})
    ours = exchange("oip")
    asyncio.run(decode(ours, receiver(body), 10_000))
    assert ours.request_id == "oip-7"
    theirs = exchange("oip", headers={b"x-request-id": b"req-1"})
    asyncio.run(decode(theirs, receiver(body), 10_000))
    assert theirs.request_id == "req-1"
    hostile = exchange("oip")
    asyncio.run(decode(hostile, receiver(body.replace(b"oip-7", b"a b\\r\\nX: y")), 10_000))
    assert hostile.request_id == "req-1"  # not a well-formed id: kept out of logs and headers


def test_decode_refuses_triton_binary_tensors() -> None:
    binary = exchange("oip", headers={b"inference-header-content-length": b"10"})
    with pytest.raises(InvalidInput, match="binary_data=False"):
        asyncio.run(decode(binary, receiver(b"{}"), 1000))


# --- resolve_version ------------------------------------------------------------------------------------------


def test_resolve_version_by_sticky_key_by_path_and_unknown(packages: Packages) -> None:
    split = deployment(version(packages, 1, weight=50), version(packages, 2, weight=50, role="canary"))

    async def body(host: ModelHost) -> None:
        chosen = set()
        for key in (f"user-{i}" for i in range(40)):
            first = exchange(headers={b"x-loopml-key": key.encode()}, parsed={"records": [{}]})
            again = exchange(headers={b"x-loopml-key": key.encode()}, parsed={"records": [{}]})
            resolve_route(first, host)
            resolve_route(again, host)
            number = resolve_version(first, host).version.version
            assert resolve_version(again, host).version.version == number  # one key, one version
            assert first.sticky_key == key
            chosen.add(number)
        assert chosen == {1, 2}
        named = exchange("oip", version_number=2)
        resolve_route(named, host)
        assert resolve_version(named, host).version.version == 2
        with pytest.raises(NotFound, match="no version 3"):
            missing = exchange("oip", version_number=3)
            resolve_route(missing, host)
            resolve_version(missing, host)

    run((split,), body)


def test_resolve_version_reads_the_sticky_field_of_the_body(packages: Packages) -> None:
    spec = dataclasses.replace(
        deployment(version(packages, 1, weight=50), version(packages, 2, weight=50, role="canary")),
        sticky_key="user",
    )

    async def body(host: ModelHost) -> None:
        found = exchange(parsed={"records": [{"user": 1234}]})
        resolve_route(found, host)
        resolve_version(found, host)
        assert found.sticky_key == "1234"
        header = exchange(headers={b"x-loopml-key": b"abc"}, parsed={"records": [{"user": 1234}]})
        resolve_route(header, host)
        resolve_version(header, host)
        assert header.sticky_key == "abc"  # the header wins over the body's field

    run((spec,), body)


# --- validate ----------------------------------------------------------------------------------------------------


def chosen(host: ModelHost, parsed: Any, protocol: str = "native") -> Exchange:
    found = exchange(protocol, parsed=parsed)
    resolve_route(found, host)
    resolve_version(found, host)
    return found


def test_validate_builds_the_matrix_in_signature_order(packages: Packages) -> None:
    records = packages.records(3)

    async def body(host: ModelHost) -> None:
        found = chosen(host, {"records": list(reversed(records))})
        validate(found)
        assert found.matrix.shape == (3, len(FEATURES))
        assert found.matrix[2].tolist() == [float(records[0][name]) for name in FEATURES]
        assert found.data is not None and found.data.rows == 3
        assert not found.wants_probabilities

    run((deployment(version(packages, 1)),), body)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda row: row.pop("hr"), r"records\[0\]: missing field 'hr'"),
        (lambda row: row.update(hr="noon"), "field 'hr': expected int64, got a string 'noon'"),
        (lambda row: row.update(temp=None), "field 'temp': null"),
        (lambda row: row.update(hr=2**70), "outside the 64-bit range"),
        (lambda row: row.update(hour=3), "unknown field 'hour'"),
    ],
)
def test_validate_refuses_input_the_signature_does_not_take(
    packages: Packages, change: Callable[[dict[str, Any]], object], match: str
) -> None:
    row = packages.records(1)[0]
    change(row)

    async def body(host: ModelHost) -> None:
        with pytest.raises(InvalidInput, match=match):
            validate(chosen(host, {"records": [row]}))

    run((deployment(version(packages, 1)),), body)


def test_validate_refuses_probabilities_from_a_regressor(packages: Packages) -> None:
    async def body(host: ModelHost) -> None:
        with pytest.raises(InvalidInput, match="has no predict_proba"):
            validate(chosen(host, {"records": packages.records(1), "output": "probabilities"}))

    run((deployment(version(packages, 1)),), body)


@pytest.fixture(scope="module")
def contracted(packages: Packages, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("stages-contract") / "package"
    extra = {"contract.yaml": bike_contract().to_yaml().encode()}
    save_model(packages.models[1], target, input_example=pd.read_csv(DATA).iloc[:5][FEATURES], extra_files=extra)
    return target


def test_validate_keeps_warnings_and_refuses_a_blocking_check(packages: Packages, contracted: Path) -> None:
    good, humid, hot = (packages.records(1)[0] for _ in range(3))
    humid["hum"] = 1.5  # warn: answered, counted
    hot["temp"] = 3.0  # block

    async def body(host: ModelHost) -> None:
        fine = chosen(host, {"records": [good]})
        validate(fine)
        assert list(fine.violations) == []
        warned = chosen(host, {"records": [humid]})
        validate(warned)
        assert [(row, v.column, v.severity) for row, v in warned.violations] == [(0, "hum", "warn")]
        refused = chosen(host, {"records": [good, hot]})
        with pytest.raises(HttpError) as error:
            validate(refused)
        assert (error.value.status, error.value.code) == (422, "contract_violation")
        assert error.value.message.startswith("row 1: column 'temp' fails the contract's range check")
        assert [v.column for _, v in refused.violations] == ["temp"]  # kept for the metrics

    run((deployment(ServingVersion("bike", 1, contracted)),), body)


# --- predict and encode ----------------------------------------------------------------------------------------


def test_predict_answers_the_models_predictions_and_leaves_the_backlog(packages: Packages) -> None:
    records = packages.records(4)

    async def body(host: ModelHost) -> Exchange:
        found = chosen(host, {"records": records})
        validate(found)
        backlog = Backlog()
        backlog.count = 1
        found.in_backlog = True
        await predict(found, backlog, host.executor)
        assert (backlog.count, found.in_backlog) == (0, False)
        await predict(found, backlog, host.executor)  # already left: counted once
        assert backlog.count == 0
        return found

    found = run((deployment(version(packages, 1)),), body)
    assert found.outputs == packages.expected(1, records)
    assert found.probabilities is None


def test_predict_turns_the_models_refusal_into_a_422(packages: Packages) -> None:
    async def body(host: ModelHost) -> None:
        found = chosen(host, {"records": packages.records(1)})
        validate(found)
        found.matrix = np.array([["a"] * len(FEATURES)], dtype=object)  # what no model can compare with numbers
        with pytest.raises(HttpError) as error:
            await predict(found, Backlog(), host.executor)
        assert (error.value.status, error.value.code) == (422, "model_refused_input")

    run((deployment(version(packages, 1)),), body)


def test_encode_writes_the_answer_in_the_requests_protocol(packages: Packages) -> None:
    records = packages.records(2)
    oip_body = {
        "id": "abc",
        "inputs": [
            {"name": "x", "shape": [2, len(FEATURES)], "datatype": "FP64", "data": [list(r.values()) for r in records]}
        ],
    }

    async def body(host: ModelHost) -> tuple[bytes, bytes]:
        answers = []
        oip_parsed = PROTOCOLS["oip"].parse(orjson.dumps(oip_body), "application/json")
        for protocol, parsed in (("native", {"records": records}), ("oip", oip_parsed)):
            found = chosen(host, parsed, protocol)
            validate(found)
            await predict(found, Backlog(), host.executor)
            answers.append(encode(found))
        return answers[0], answers[1]

    native, oip = run((deployment(version(packages, 1)),), body)
    expected = packages.expected(1, records)
    answer = {"id": "req-1", "deployment": "bike", "model": "bike", "version": 1, "predictions": expected}
    assert orjson.loads(native) == answer
    outputs = orjson.loads(oip)
    assert outputs["id"] == "abc"
    assert outputs["outputs"][0]["data"] == expected


def test_classify_maps_errors_to_statuses() -> None:
    assert classify(HttpError(415, "unsupported_media_type", "m")) == (415, "unsupported_media_type", "m")
    assert classify(PayloadTooLarge("big"))[0] == 413
    assert classify(NotFound("gone"))[:2] == (404, "not_found")
    assert classify(InvalidInput("bad"))[0] == 400
    assert classify(RuntimeError("bug"))[:2] == (500, "internal_error")

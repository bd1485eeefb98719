"""Steps, pipelines and the DAG built by calling steps inside a pipeline function.

Inside an `@lm.pipeline` function a step call records a node and returns a `StepOutput` handle; passing a
handle to another step is an edge that carries data, `after=` an edge that carries none. `step.map(...)`
fans out (one node per item) and a list of handles passed to one step fans in.
"""

from __future__ import annotations

import contextvars
import inspect
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar, overload

from loopml.errors import InvalidPipeline
from loopml.pipelines.executor import FunctionRef, _loaded_files
from loopml.pipelines.serializers import serializer_names

__all__ = [
    "Graph",
    "Node",
    "Pipeline",
    "Step",
    "StepOutput",
    "function_ref",
    "pipeline",
    "set_default_runner",
    "step",
]

P = ParamSpec("P")
R = TypeVar("R")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS.update({"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40})
_runner: list[Callable[..., Any]] = []
"""The function `Pipeline.run` hands itself to: installed by the SDK (`loopml.client.pipelines`), which
knows the default client; a service cannot reach the client itself."""
_building: contextvars.ContextVar[Graph | None] = contextvars.ContextVar("loopml_pipeline_graph", default=None)


def set_default_runner(runner: Callable[..., Any]) -> None:
    """`Pipeline.run()` without a client calls `runner(pipeline, params, executor=, cache=, executor_options=)`."""
    _runner[:] = [runner]


def _memory_bytes(memory: str | int | None) -> int | None:
    if memory is None or (isinstance(memory, int) and not isinstance(memory, bool) and memory > 0):
        return memory
    match = _MEMORY.match(memory) if isinstance(memory, str) else None
    if match is None:
        raise InvalidPipeline(f"memory must be a number of bytes or a size such as '4GB' or '512MiB', got {memory!r}")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


def function_ref(function: Callable[..., Any]) -> FunctionRef:
    """How a worker process finds `function`: by module and qualified name, with the file when the module
    was loaded from a path or is the `__main__` script."""
    module_name = function.__module__
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if module_name == "__main__":
        return FunctionRef("__loopml_main__", function.__qualname__, file)
    loaded_by_path = file is not None and any(m is module for m in _loaded_files.values())
    return FunctionRef(module_name, function.__qualname__, file if loaded_by_path else None)


@dataclass(frozen=True)
class StepOutput:
    """What a step call inside a pipeline returns: a handle on the output it will have."""

    node: str

    def __repr__(self) -> str:
        return f"<output of step {self.node!r}>"

    def __bool__(self) -> bool:
        raise InvalidPipeline(
            f"the output of step {self.node!r} is not known while the pipeline is built: a pipeline function "
            "wires steps together; branch inside a step instead"
        )


@dataclass
class Node:
    name: str
    step: Step[..., Any]
    params: dict[str, Any]
    inputs: dict[str, StepOutput | tuple[StepOutput, ...]]
    after: tuple[str, ...]

    @property
    def upstream(self) -> list[str]:
        found: list[str] = []
        for value in self.inputs.values():
            found.extend(h.node for h in (value if isinstance(value, tuple) else (value,)))
        found.extend(self.after)
        return list(dict.fromkeys(found))


@dataclass
class Graph:
    pipeline: str
    nodes: dict[str, Node] = field(default_factory=dict)
    result: Any = None

    def add(self, node: Node) -> None:
        self.nodes[node.name] = node

    def unique_name(self, base: str) -> str:
        if base not in self.nodes:
            return base
        n = 2
        while f"{base}_{n}" in self.nodes:
            n += 1
        return f"{base}_{n}"

    def order(self) -> list[str]:
        """The node names in an order where every node follows its upstream nodes; a cycle is an error."""
        for node in self.nodes.values():
            for name in node.upstream:
                if name not in self.nodes:
                    raise InvalidPipeline(
                        f"step {node.name!r} runs after {name!r}, which is not a step of this pipeline"
                    )
        state: dict[str, int] = {}
        ordered: list[str] = []
        for start in self.nodes:
            stack: list[tuple[str, int]] = [(start, 0)]
            path: list[str] = []
            while stack:
                name, index = stack.pop()
                if index == 0:
                    if state.get(name) == 2:
                        continue
                    if state.get(name) == 1:
                        cycle = [*path[path.index(name) :], name]
                        raise InvalidPipeline(f"the pipeline has a cycle: {' -> '.join(cycle)}")
                    state[name] = 1
                    path.append(name)
                upstream = self.nodes[name].upstream
                if index < len(upstream):
                    stack.append((name, index + 1))
                    stack.append((upstream[index], 0))
                else:
                    state[name] = 2
                    path.pop()
                    ordered.append(name)
        return ordered

    def downstream(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {name: [] for name in self.nodes}
        for node in self.nodes.values():
            for name in node.upstream:
                found[name].append(node.name)
        return found


def _is_output(value: Any) -> bool:
    return isinstance(value, StepOutput)


class Step(Generic[P, R]):
    """A function that runs as one step of a pipeline (see `step`)."""

    def __init__(
        self,
        func: Callable[P, R],
        *,
        name: str | None = None,
        retries: int = 0,
        retry_delay: float = 1.0,
        timeout: float | None = None,
        cache: bool = True,
        pickle: bool = False,
        serializer: str | None = None,
        cpus: float | None = None,
        gpus: float | None = None,
        memory: str | int | None = None,
    ) -> None:
        if not callable(func) or not hasattr(func, "__code__"):
            raise InvalidPipeline(f"@lm.step decorates a function, not {func!r}")
        self.func = func
        self.name = name or func.__name__
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidPipeline(f"retries of step {self.name!r} must be an integer >= 0, got {retries!r}")
        for what, value in (("retry_delay", retry_delay), ("timeout", timeout), ("cpus", cpus), ("gpus", gpus)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise InvalidPipeline(f"{what} of step {self.name!r} must be a number >= 0, got {value!r}")
        if timeout is not None and timeout <= 0:
            raise InvalidPipeline(f"timeout of step {self.name!r} must be a positive number of seconds")
        if serializer is not None and serializer not in serializer_names():
            raise InvalidPipeline(f"unknown serializer {serializer!r}: use one of {', '.join(serializer_names())}")
        self.retries, self.retry_delay, self.timeout = retries, float(retry_delay), timeout
        self.cache, self.pickle, self.serializer = cache, pickle, serializer
        self.resources = {
            k: v for k, v in (("cpus", cpus), ("gpus", gpus), ("memory", _memory_bytes(memory))) if v is not None
        }
        self.signature = inspect.signature(func)
        for parameter in self.signature.parameters.values():
            if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                raise InvalidPipeline(f"step {self.name!r} takes *{parameter.name}: name every input of a step")
            if parameter.name == "after":
                raise InvalidPipeline(f"step {self.name!r} has a parameter named 'after', which step calls reserve")
        self.__doc__ = func.__doc__
        self.__wrapped__ = func

    def __call__(self, *args: Any, after: Iterable[StepOutput | str] | StepOutput | str = (), **kwargs: Any) -> Any:
        graph = _building.get()
        if graph is None:
            raise InvalidPipeline(
                f"step {self.name!r} was called outside a pipeline: call it inside an @lm.pipeline function "
                f"(which builds the DAG), or call {self.name}.func(...) to run the plain function"
            )
        return self._add(graph, self.name, args, kwargs, after)

    def _add(self, graph: Graph, base: str, args: Sequence[Any], kwargs: Mapping[str, Any], after: Any) -> StepOutput:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise InvalidPipeline(f"step {self.name!r} called with the wrong arguments: {error}") from None
        bound.apply_defaults()
        arguments: dict[str, Any] = {}
        for key, value in bound.arguments.items():
            if self.signature.parameters[key].kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(value)
            else:
                arguments[key] = value
        params: dict[str, Any] = {}
        inputs: dict[str, StepOutput | tuple[StepOutput, ...]] = {}
        for key, value in arguments.items():
            if _is_output(value):
                inputs[key] = value
            elif isinstance(value, list | tuple) and value and all(_is_output(v) for v in value):
                inputs[key] = tuple(value)
            elif isinstance(value, list | tuple | dict) and any(
                _is_output(v) for v in (value.values() if isinstance(value, dict) else value)
            ):
                raise InvalidPipeline(
                    f"argument {key!r} of step {self.name!r} mixes step outputs with other values: pass a list "
                    "of step outputs only (fan-in), or plain values only"
                )
            else:
                from loopml.pipelines.serializers import _is_json

                if not _is_json(value):
                    raise InvalidPipeline(
                        f"argument {key!r} of step {self.name!r} is a {type(value).__name__}: a parameter must be "
                        "JSON-able (numbers, strings, lists, dicts); pass data as the output of another step"
                    )
                params[key] = value
        ordering = (after,) if isinstance(after, StepOutput | str) else tuple(after)
        names = []
        for item in ordering:
            if not isinstance(item, StepOutput | str):
                raise InvalidPipeline(f"after= of step {self.name!r} takes step outputs or step names, not {item!r}")
            names.append(item.node if isinstance(item, StepOutput) else item)
        name = graph.unique_name(base)
        graph.add(Node(name, self, params, inputs, tuple(names)))
        return StepOutput(name)

    def map(self, items: Iterable[Mapping[str, Any]], **shared: Any) -> list[StepOutput]:
        """Fan out inside a pipeline: one step per item of `items` (each a mapping of arguments), all with
        the `shared` arguments too; returns the list of outputs (pass it to one step to fan in)."""
        graph = _building.get()
        if graph is None:
            raise InvalidPipeline(f"{self.name}.map(...) was called outside a pipeline: call it inside an @lm.pipeline")
        outputs = []
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise InvalidPipeline(
                    f"{self.name}.map takes mappings of arguments (such as {{'max_depth': 3}}), got {item!r}"
                )
            outputs.append(self._add(graph, f"{self.name}[{index}]", (), {**shared, **item}, ()))
        return outputs

    def __repr__(self) -> str:
        return f"<step {self.name}>"


class Pipeline(Generic[P]):
    """A function whose step calls make a DAG; `run(**params)` runs it (see `pipeline`)."""

    def __init__(self, func: Callable[P, Any], *, name: str | None = None, schedule: str | None = None) -> None:
        self.func = func
        self.name = name or func.__name__
        self.schedule = schedule
        self.signature = inspect.signature(func)
        self.__doc__ = func.__doc__
        self.__wrapped__ = func

    @property
    def ref(self) -> str:
        ref = function_ref(self.func)
        return f"{ref.file}:{ref.qualname}" if ref.file else str(ref)

    def resolve_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        try:
            bound = self.signature.bind(**params)
        except TypeError as error:
            raise InvalidPipeline(f"pipeline {self.name!r}: {error}") from None
        bound.apply_defaults()
        from loopml.pipelines.serializers import _is_json

        for key, value in bound.arguments.items():
            if not _is_json(value):
                raise InvalidPipeline(f"pipeline parameter {key!r} must be JSON-able, got a {type(value).__name__}")
        return dict(bound.arguments)

    def build(self, **params: Any) -> Graph:
        """The DAG of this pipeline for `params`, without running anything."""
        resolved = self.resolve_params(params)
        graph = Graph(self.name)
        token = _building.set(graph)
        try:
            graph.result = self.func(**resolved)  # type: ignore[call-arg]
        finally:
            _building.reset(token)
        if not graph.nodes:
            raise InvalidPipeline(f"pipeline {self.name!r} calls no step")
        graph.order()
        return graph

    def run(
        self,
        *,
        executor: str = "process",
        cache: bool = True,
        client: Any = None,
        executor_options: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> Any:
        """Run the pipeline with `params` and wait for it; returns the finished (or failed) `PipelineRun`.

        `executor`: "process" (default: a local process pool), "inline" (this process, for debugging) or
        "ray". `cache=False` reruns every step. `client`: a `loopml.Client` (default: `lm.get_client()`).
        """
        if client is not None:
            return client.pipelines.run(self, params, executor=executor, cache=cache, executor_options=executor_options)
        if not _runner:
            raise InvalidPipeline("no client to run the pipeline with: pass client=loopml.Client(...)")
        return _runner[0](self, params, executor=executor, cache=cache, executor_options=executor_options)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:  # noqa: ARG002 (refused whatever is passed)
        raise InvalidPipeline(f"a pipeline is run with {self.name}.run(**params), not called")

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


@overload
def step(func: Callable[P, R], /) -> Step[P, R]: ...


@overload
def step(
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 1.0,
    timeout: float | None = None,
    cache: bool = True,
    pickle: bool = False,
    serializer: str | None = None,
    cpus: float | None = None,
    gpus: float | None = None,
    memory: str | int | None = None,
) -> Callable[[Callable[P, R]], Step[P, R]]: ...


def step(func: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Make a function a pipeline step: `@lm.step` or `@lm.step(retries=2, timeout=600)`.

    `retries` with exponential backoff from `retry_delay` seconds; `timeout` per attempt; `cache=False`
    always reruns it; `pickle=True` lets an output no serializer takes be stored with cloudpickle (recorded
    on the step run); `cpus`, `gpus`, `memory` ("4GB") are what the Ray executor reserves.
    """
    if func is not None:
        return Step(func, **options)
    return lambda f: Step(f, **options)


def pipeline(func: Callable[P, Any] | None = None, /, *, name: str | None = None, schedule: str | None = None) -> Any:
    """Make a function a pipeline: calling steps in it builds the DAG; `.run(**params)` runs it.
    `schedule` (a cron expression) is what `loopml pipeline schedule` uses when given no --cron."""
    if func is not None:
        return Pipeline(func, name=name, schedule=schedule)
    return lambda f: Pipeline(f, name=name, schedule=schedule)

"""The seam between the runner and the engines that run step attempts.

The runner (in the calling process) turns each ready step into a `StepTask`: everything one attempt needs,
with no access to the metadata store. An `Executor` runs the task somewhere (this process, a worker
process, a Ray task) with `execute_task`, which reads the inputs from the artifact store, calls the
function, writes the output content-addressed (never half-visible) and answers a `StepResult`. The
runner records the result; executors never touch the store.

Executors are found by name (`executor_for("process")`); another engine registers itself with
`register_executor`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Literal, Protocol, cast, runtime_checkable

from loopml.errors import InvalidPipeline

__all__ = [
    "ArtifactRef",
    "Executor",
    "FunctionRef",
    "InlineExecutor",
    "ProcessExecutor",
    "StepResult",
    "StepTask",
    "execute_task",
    "executor_for",
    "executor_names",
    "register_executor",
    "register_in_process",
]

Status = Literal["finished", "failed", "timed_out", "killed"]
MAX_LOG_CHARS = 1 << 20
"""The captured output kept per attempt: the last MiB (a step printing gigabytes must not fill the store)."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """Where a worker finds a step's function: `module:qualname`, and the file when the module was loaded
    from a path (`loopml pipeline run path.py:nightly`)."""

    module: str
    qualname: str
    file: str | None = None

    def __str__(self) -> str:
        return f"{self.module}:{self.qualname}"


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A value stored between steps: its serializer, the sha256 of its main blob and its size. `meta`
    holds what the serializer needs besides (the files of a model package, a dataset's fingerprint)."""

    serializer: str
    digest: str
    size: int
    type_name: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "serializer": self.serializer,
            "digest": self.digest,
            "size": self.size,
            "type": self.type_name,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArtifactRef:
        return cls(str(data["serializer"]), str(data["digest"]), int(data["size"]), str(data["type"]), data["meta"])


InputValue = ArtifactRef | tuple[ArtifactRef, ...]


@dataclass(frozen=True, slots=True)
class StepTask:
    """One attempt of one step, self-contained: a worker runs it with the artifact store only."""

    step: str
    function: FunctionRef
    params: Mapping[str, Any]
    inputs: Mapping[str, InputValue]
    artifact_root: str
    s3_endpoint_url: str | None = None
    output_serializer: str | None = None
    """The serializer the step asked for; None picks one by the type of the returned value."""
    allow_pickle: bool = False
    pickled_function: bytes | None = None
    """The cloudpickled function, only for a step that opted in (`@lm.step(pickle=True)`)."""
    attempt: int = 1
    timeout: float | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)
    """What the step asked for (`cpus`, `gpus`, `memory` in bytes); executors that can place work use it."""


@dataclass(frozen=True, slots=True)
class StepResult:
    status: Status
    outputs: tuple[ArtifactRef, ...] = ()
    log: str = ""
    traceback: str | None = None
    error: str | None = None
    """One line saying why the attempt did not finish (the exception, the timeout, the signal)."""
    started_at: int = 0
    ended_at: int = 0


class _Capture(io.TextIOBase):
    """A text stream keeping the last MAX_LOG_CHARS characters written to it."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.parts.append(text)
        self.size += len(text)
        if self.size > 2 * MAX_LOG_CHARS:
            joined = "".join(self.parts)[-MAX_LOG_CHARS:]
            self.parts, self.size = [joined], len(joined)
        return len(text)

    def text(self) -> str:
        return "".join(self.parts)[-MAX_LOG_CHARS:]


_loaded_files: dict[str, Any] = {}


def load_module(module: str, file: str | None) -> Any:
    """The module `module`, imported by name, or loaded from `file` when given (and cached by path)."""
    if file is None:
        return importlib.import_module(module)
    path = str(Path(file).resolve())
    found = _loaded_files.get(path) or sys.modules.get(module)
    found_file = getattr(found, "__file__", None)
    if found is not None and found_file is not None and str(Path(found_file).resolve()) == path:
        return found
    directory = str(Path(path).parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)  # as when the file runs as a script: its sibling modules import
    spec = importlib.util.spec_from_file_location(module, path)
    if spec is None or spec.loader is None:
        raise InvalidPipeline(f"cannot load Python file {file!r}: it is not a module file")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[module] = loaded  # dataclasses and pickling look their module up by name
    try:
        spec.loader.exec_module(loaded)
    except BaseException:
        sys.modules.pop(module, None)
        raise
    _loaded_files[path] = loaded
    return loaded


_in_process: dict[FunctionRef, Callable[..., Any]] = {}


def register_in_process(ref: FunctionRef, function: Callable[..., Any]) -> None:
    """Let attempts run in this process (the inline executor) call `function` itself for `ref`, so a step
    defined in a notebook cell or a test body runs inline without being importable."""
    _in_process[ref] = function


def resolve_function(task: StepTask) -> Callable[..., Any]:
    local = _in_process.get(task.function)
    if local is not None and task.pickled_function is None:
        return local
    if task.pickled_function is not None:
        import cloudpickle

        function: Any = cloudpickle.loads(task.pickled_function)
    else:
        function = load_module(task.function.module, task.function.file)
        for part in task.function.qualname.split("."):
            function = getattr(function, part)
    return cast("Callable[..., Any]", getattr(function, "func", function))  # a Step: the function it wraps


_stores: dict[tuple[str, str | None], Any] = {}


def _store(task: StepTask) -> Any:
    from loopml.artifacts import open_artifact_store

    key = (task.artifact_root, task.s3_endpoint_url)
    if key not in _stores:
        _stores[key] = open_artifact_store(task.artifact_root, task.s3_endpoint_url)
    return _stores[key]


def execute_task(task: StepTask) -> StepResult:
    """Run one attempt: read the inputs, call the function, store its output. Never raises for an error
    of the step: that is a `failed` result with the traceback."""
    from loopml.pipelines.serializers import dump_value, load_value

    started = now_ms()
    capture = _Capture()
    try:
        with contextlib.redirect_stdout(capture), contextlib.redirect_stderr(capture):
            store = _store(task)
            function = resolve_function(task)
            arguments = dict(task.params)
            for name, ref in task.inputs.items():
                if isinstance(ref, tuple):
                    arguments[name] = [load_value(one, store) for one in ref]
                else:
                    arguments[name] = load_value(ref, store)
            value = function(**arguments)
            output = dump_value(value, store, task.output_serializer, task.allow_pickle, task.step)
    except Exception as error:  # the step's own bug, or an output without a serializer
        return StepResult(
            status="failed",
            log=capture.text(),
            traceback=traceback.format_exc(),
            error=f"{type(error).__name__}: {error}"[:2000],
            started_at=started,
            ended_at=now_ms(),
        )
    ended = now_ms()
    if task.timeout is not None and (ended - started) / 1000 > task.timeout:
        # Only the inline executor gets here: it cannot interrupt the function, but keeps the semantics.
        return StepResult(
            status="timed_out",
            log=capture.text(),
            error=f"the step ran {(ended - started) / 1000:.1f} s, over its timeout of {task.timeout:g} s",
            started_at=started,
            ended_at=ended,
        )
    return StepResult("finished", (output,), capture.text(), started_at=started, ended_at=ended)


@runtime_checkable
class Executor(Protocol):
    """Runs step attempts. `submit` may be called from one thread at a time; futures resolve to a
    `StepResult` (an executor reports a lost worker as `killed`, never as an exception)."""

    name: str
    max_parallel: int

    def submit(self, task: StepTask) -> Future[StepResult]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Runs each attempt in the calling thread, one at a time: for debugging (breakpoints work). A timeout
    cannot interrupt the function here; an attempt over its timeout is still reported `timed_out`."""

    name = "inline"
    max_parallel = 1

    def submit(self, task: StepTask) -> Future[StepResult]:
        future: Future[StepResult] = Future()
        future.set_result(execute_task(task))
        return future

    def close(self) -> None:
        return None


_in_worker = [False]
"""True in a worker process: a pipeline started there (by importing a script that runs one at import) is refused."""


def in_worker() -> bool:
    return _in_worker[0]


def _worker_main(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle
    _in_worker[0] = True
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(execute_task(task))


def _signal_name(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by signal {signal.Signals(-exitcode).name}"
    return f"exited with code {exitcode}"


_start_lock = threading.Lock()


@contextlib.contextmanager
def _main_hidden() -> Any:
    """Start a worker without multiprocessing re-running the calling script in it (it does so for the
    spawn and forkserver methods, so a script calling `pipeline.run()` unguarded would run again, in every
    worker). A step defined in the script is loaded by its file under another name when a task needs it."""
    import types

    with _start_lock:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


class _Worker:
    def __init__(self, context: Any) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child,), daemon=True, name="loopml-step-worker")
        with _main_hidden():
            self.process.start()
        child.close()

    def stop(self, kill: bool = False) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        if kill and self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def usable_cores() -> int:
    """The cores this process may run on (its affinity, which a container's CPU set limits), not the machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


class ProcessExecutor:
    """A pool of worker processes, one attempt per worker at a time, `max_parallel` at once (default: the
    cores). A worker that dies (SIGKILL, out of memory) makes its attempt `killed`; an attempt over its
    timeout is stopped with SIGKILL and reported `timed_out`. Either way the worker is replaced.

    Workers are forked from a fork server that has loopml imported, so starting one costs milliseconds."""

    name = "process"

    def __init__(self, max_parallel: int | None = None) -> None:
        count = max_parallel if max_parallel is not None else usable_cores()
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidPipeline(f"max_parallel must be a positive integer, got {max_parallel!r}")
        self.max_parallel = count
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["loopml.pipelines.executor", "loopml.pipelines.serializers"])
        self._queue: queue.Queue[tuple[StepTask, Future[StepResult]] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        """Started on demand, one per attempt submitted up to max_parallel: a fully cached run starts none."""
        self._closed = False
        self._busy: dict[int, _Worker] = {}
        """The workers running an attempt now, by dispatcher thread: `close` stops them."""

    def submit(self, task: StepTask) -> Future[StepResult]:
        if self._closed:
            raise InvalidPipeline("the process executor was closed; create a new one")
        future: Future[StepResult] = Future()
        self._queue.put((task, future))
        if len(self._threads) < self.max_parallel:
            thread = threading.Thread(
                target=self._dispatch, name=f"loopml-step-dispatch-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return future

    def _dispatch(self) -> None:
        worker: _Worker | None = None
        try:
            while (item := self._queue.get()) is not None:
                task, future = item
                try:
                    if worker is None:
                        worker = _Worker(self._context)
                    self._busy[threading.get_ident()] = worker  # before the attempt counts as running
                    if self._closed or not future.set_running_or_notify_cancel():
                        self._busy.pop(threading.get_ident(), None)
                        future.cancel()
                        continue
                    try:
                        result, worker = self._run(worker, task)
                    finally:
                        self._busy.pop(threading.get_ident(), None)
                except BaseException as error:  # the pool itself failed: answer, never leave a future hanging
                    with contextlib.suppress(InvalidStateError):
                        future.set_result(
                            StepResult("killed", error=f"the worker process could not run the step: {error}")
                        )
                    if worker is not None:
                        worker.stop(kill=True)
                    worker = None
                    continue
                with contextlib.suppress(InvalidStateError):  # the runner gave up on it
                    future.set_result(result)
        finally:
            if worker is not None:
                worker.stop()

    @staticmethod
    def _run(worker: _Worker, task: StepTask) -> tuple[StepResult, _Worker | None]:
        started = now_ms()
        worker.conn.send(task)
        ready = wait([worker.conn, worker.process.sentinel], timeout=task.timeout)
        if worker.conn in ready:
            with contextlib.suppress(EOFError, OSError):
                return worker.conn.recv(), worker
        if not ready:
            worker.stop(kill=True)
            return StepResult(
                "timed_out",
                error=f"the step did not finish within its timeout of {task.timeout:g} s and was stopped",
                started_at=started,
                ended_at=now_ms(),
            ), None
        worker.process.join(timeout=5)
        why = _signal_name(worker.process.exitcode)
        worker.stop(kill=True)
        return StepResult(
            "killed",
            error=f"the worker process running the step {why}",
            started_at=started,
            ended_at=now_ms(),
        ), None

    def close(self) -> None:
        """Stop the pool: queued attempts are dropped, attempts still running are killed (after an
        interrupted run), idle workers exit."""
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].cancel()
        for _ in self._threads:
            self._queue.put(None)
        for worker in list(self._busy.values()):
            with contextlib.suppress(OSError):
                worker.process.kill()
        for thread in self._threads:
            thread.join()


_EXECUTORS: dict[str, Callable[..., Executor]] = {
    "inline": lambda **options: InlineExecutor(**options),
    "process": lambda **options: ProcessExecutor(**options),
}


def register_executor(name: str, factory: Callable[..., Executor]) -> None:
    """Make `executor_for(name, **options)` build executors with `factory(**options)`."""
    _EXECUTORS[name] = factory


def executor_names() -> list[str]:
    _load_optional()
    return sorted(_EXECUTORS)


def _load_optional() -> None:
    # The Ray executor registers itself when its module is imported; Ray itself is imported only when used.
    with contextlib.suppress(ImportError):
        importlib.import_module("loopml.pipelines.ray_executor")


def executor_for(name: str, **options: Any) -> Executor:
    """The executor called `name` ("inline", "process", "ray"), built with `options`."""
    if name not in _EXECUTORS:
        _load_optional()
    factory = _EXECUTORS.get(name)
    if factory is None:
        raise InvalidPipeline(f"unknown executor {name!r}: use one of {', '.join(executor_names())}")
    try:
        return factory(**options)
    except TypeError as error:
        raise InvalidPipeline(f"invalid options for the {name!r} executor: {error}") from None

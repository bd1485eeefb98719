"""The Ray executor: each step attempt is one Ray task, placed by the resources the step asked for.

Ray is an optional extra (`pip install 'loopml[ray]'`); this module registers the `ray` executor when it is
imported and imports Ray itself only when an executor is built. A task runs the same `execute_task` as the
other executors, so the cache, retries, outputs and logs mean the same on Ray as on one machine: the worker
reads its inputs from the artifact store and writes its output there, and only the small `StepResult` comes
back. That is why the artifact store must be one every node reaches: a `file://` store is refused with a
remote cluster (unless the path is declared shared).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import threading
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlsplit

from loopml.errors import ExecutorUnavailable, InvalidPipeline
from loopml.pipelines.executor import StepResult, StepTask, execute_task, now_ms, register_executor

__all__ = ["RayExecutor"]

GRACE_SECONDS = 10.0
"""How long after its timeout a step that ignores the alarm keeps its worker before the worker exits."""

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}


class _StepTimeout(BaseException):
    """Raised in the step by the worker's alarm: a BaseException, so the step's own `except Exception` and
    `execute_task` let it through."""


def _alarm(signum: int, frame: Any) -> None:  # noqa: ARG001 - a signal handler's shape
    raise _StepTimeout


def _run_attempt(task: StepTask) -> StepResult:
    """Runs on a Ray worker. The timeout is kept here, so it counts the time the step runs, not the time the
    task waited in Ray's queue: an alarm interrupts the step; a step deaf to signals (stuck in C code) is
    stopped with its worker process GRACE_SECONDS later, which Ray reports as a lost task."""
    if task.timeout is None:
        return execute_task(task)
    # An alarm that lands inside an import leaves a half-initialized module behind (pandas, cold, takes seconds
    # in a fresh environment): what loopml itself imports to read and write values is imported before the
    # alarm is armed, and a worker that ran under an alarm is not reused (`max_calls=1`).
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import loopml.pipelines.serializers  # noqa: F401

    try:
        previous = signal.signal(signal.SIGALRM, _alarm)
    except ValueError:  # not the worker's main thread: nothing can interrupt the step here
        return execute_task(task)
    started = now_ms()
    watchdog = threading.Timer(task.timeout + GRACE_SECONDS, os._exit, args=(1,))
    watchdog.daemon = True
    watchdog.start()
    signal.setitimer(signal.ITIMER_REAL, task.timeout)
    try:
        return execute_task(task)
    except _StepTimeout:
        return StepResult(
            "timed_out",
            error=f"the step did not finish within its timeout of {task.timeout:g} s and was stopped",
            started_at=started,
            ended_at=now_ms(),
        )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        watchdog.cancel()


def _is_loopback(host: str) -> bool:
    if host in _LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _address_host(address: str) -> str:
    # "ray://host:10001", "host:6379" or "auto"
    if "://" in address:
        return urlsplit(address).hostname or ""
    return address.rsplit(":", 1)[0] if ":" in address else address


def _unreachable(address: str, why: str) -> ExecutorUnavailable:
    return ExecutorUnavailable(
        f"could not reach a Ray cluster at {address!r}: {why}. Start one with `ray start --head` (then use "
        "address 'auto', HOST:6379 or ray://HOST:10001), or leave the address out to start Ray on this machine"
    )


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds when nothing listens at `address`: Ray itself retries a dead address for minutes."""
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise _unreachable(address, "the port is not a number") from None
    if not host or port is None:
        raise _unreachable(address, "give it as HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        raise _unreachable(address, f"nothing answers at {host}:{port} ({error.strerror or error})") from None


class RayExecutor:
    """Runs step attempts as Ray tasks.

    `address`: None starts (or joins) a Ray on this machine (`ray.init()`); `"auto"` joins the cluster this
    machine belongs to; `"ray://host:10001"` connects to a remote cluster through Ray Client.
    `shared_filesystem`: declare that a `file://` artifact root is a path every node mounts (NFS...).
    `max_parallel`: how many attempts the runner keeps in flight; by default 32 per CPU of the cluster, at
    least 128. Ray queues and places them by their resources; with only a few in flight per core, the workers
    wait for the runner's bookkeeping between two trivial steps (a 300-step fan-out took 5x longer with 2 per
    core than with 128 in flight). A step's timeout counts only its own running time, so queueing is free."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        max_parallel: int | None = None,
        shared_filesystem: bool = False,
        artifact_root: str | None = None,
        namespace: str = "loopml",
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ExecutorUnavailable(
                "the ray executor needs Ray, which is not installed: pip install 'loopml[ray]'"
            ) from None
        self._ray = ray
        self.address = address
        self.shared_filesystem = shared_filesystem
        self._checked_roots: set[str] = set()
        # What the address alone says is checked before connecting: a remote cluster is refused a local
        # artifact store at once, not after a connection attempt.
        self.remote = address not in (None, "auto", "local") and not _is_loopback(_address_host(str(address)))
        if artifact_root is not None:
            self.check_artifact_root(artifact_root)
        if not ray.is_initialized():
            if address not in (None, "auto", "local"):
                _check_reachable(str(address))
            try:
                ray.init(address=address, namespace=namespace, log_to_driver=False, configure_logging=False)
            except Exception as error:  # ConnectionError, TimeoutError, RuntimeError... all mean "no cluster"
                if address in (None, "local"):
                    raise ExecutorUnavailable(
                        f"could not start Ray on this machine: {type(error).__name__}: {error}".splitlines()[0]
                    ) from None
                raise _unreachable(str(address), f"{type(error).__name__}: {error}") from None
        self.remote = self._cluster_is_remote()
        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
        self.cluster_resources: dict[str, float] = {str(k): float(v) for k, v in resources.items()}
        cpus = max(1, int(self.cluster_resources.get("CPU", 1)))
        if max_parallel is not None and (isinstance(max_parallel, bool) or max_parallel < 1):
            raise InvalidPipeline(f"max_parallel must be a positive integer, got {max_parallel!r}")
        self.max_parallel = max_parallel if max_parallel is not None else max(128, 32 * cpus)
        self._function = ray.remote(max_retries=0)(_run_attempt)
        # A step with a timeout runs in a worker used once: its alarm may have cut an import short there.
        self._timed_function = ray.remote(max_retries=0, max_calls=1)(_run_attempt)
        self._checked_roots.clear()
        if artifact_root is not None:
            self.check_artifact_root(artifact_root)
        self._lock = threading.Lock()
        self._closed = False

    def _cluster_is_remote(self) -> bool:
        """Whether some worker may run on another machine: a non-loopback address, or a node besides ours."""
        if self.remote:
            return True
        here = self._ray.get_runtime_context().get_node_id()
        return any(node.get("Alive") and node.get("NodeID") != here for node in self._ray.nodes())  # type: ignore[no-untyped-call]

    def check_artifact_root(self, root: str) -> None:
        """Refuse an artifact store the cluster's workers cannot reach: a local path with a remote cluster."""
        if root in self._checked_roots:
            return
        scheme = urlsplit(root).scheme
        if self.remote and scheme in ("", "file") and not self.shared_filesystem:
            raise InvalidPipeline(
                f"the artifact store {root} is a path on this machine, which the workers of the remote Ray "
                f"cluster{'' if self.address is None else ' at ' + str(self.address)} cannot read or write. "
                "Use an artifact store every node reaches (LOOPML_ARTIFACT_ROOT=s3://bucket/prefix), or, if "
                "every node mounts that path, say so with shared_filesystem=True"
            )
        self._checked_roots.add(root)

    def _options(self, task: StepTask) -> dict[str, Any]:
        options: dict[str, Any] = {}
        asked = {"cpus": ("num_cpus", "CPU"), "gpus": ("num_gpus", "GPU"), "memory": ("memory", "memory")}
        for key, (option, resource) in asked.items():
            value = task.resources.get(key)
            if value is None:
                continue
            have = self.cluster_resources.get(resource, 0.0)
            if float(value) > have:
                raise InvalidPipeline(
                    f"step {task.step!r} asks for {key}={value:g} but the whole Ray cluster has {have:g}: "
                    "Ray would wait for it forever; lower the request or add nodes that have it"
                )
            options[option] = int(value) if key == "memory" else value
        return options

    def submit(self, task: StepTask) -> Future[StepResult]:
        if self._closed:
            raise InvalidPipeline("the ray executor was closed; create a new one")
        self.check_artifact_root(task.artifact_root)
        options = self._options(task)
        started = now_ms()
        function = self._function if task.timeout is None else self._timed_function
        ref = function.options(**options).remote(task) if options else function.remote(task)
        answer: Future[StepResult] = Future()

        def done(ray_future: Future[Any]) -> None:
            try:
                answer.set_result(ray_future.result())
            except BaseException as error:  # the task did not return: its worker died, the node was lost...
                lines = [line for line in f"{type(error).__name__}: {error}".splitlines() if line.strip()]
                why = (lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}")[:2000]
                lost = f"the Ray task running the step was lost ({why})"
                answer.set_result(StepResult("killed", error=lost, started_at=started, ended_at=now_ms()))

        ref.future().add_done_callback(done)
        return answer

    def close(self) -> None:
        # Ray stays up for the rest of the process (it shuts down at exit): starting it costs seconds, and
        # the next pipeline run in this process reuses it.
        with self._lock:
            self._closed = True


register_executor("ray", lambda **options: RayExecutor(**options))

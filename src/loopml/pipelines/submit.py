"""Runs submitted by reference: `path.py:function` or `module:function`, resolved under allowed roots and run to
its end in a child process of the caller's server (or embedded client), one process per run, a bounded number
at once.

The child (`python -m loopml.pipelines.child`) loads the pipeline, checks its parameters, opens the run and
answers on a pipe before it drives a single step: a bad reference or bad parameters come back to the caller as
the same 4xx the embedded runner raises, and a good one as the RUNNING run. From then on the child heartbeats
(`pipeline_runs.heartbeat_at`); `RunSweeper` (and the launcher itself, when it reaps a child) fails a run whose
process died, so no run stays RUNNING forever.
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loopml.domain import PipelineRunRecord, Principal, Role
from loopml.domain.pipelines import pipeline_run_from_json
from loopml.errors import InvalidInput, InvalidPipeline, LoopmlError, ServerBusy, error_for_code
from loopml.pipelines.service import PipelineService
from loopml.store.leases import LeasedLoop

__all__ = ["RUNNER_ACTOR", "SWEEP_LEASE", "RefPolicy", "RunLauncher", "RunSweeper"]

logger = logging.getLogger("loopml.pipelines")
RUNNER_ACTOR = "loopml:pipeline-runner"
SWEEP_LEASE = "pipeline-run-sweeper"
_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_FUNCTION = re.compile(r"^[A-Za-z_]\w*$")
MAX_REF = 4096


def _split(reference: object) -> tuple[str, str]:
    text = reference.strip() if isinstance(reference, str) else ""
    where, _, function = text.rpartition(":")
    if not where or not _FUNCTION.match(function) or len(text) > MAX_REF or "\x00" in text:
        raise InvalidPipeline(
            f"pipeline {reference!r} is not `module:function` or `path/to/file.py:function` "
            "(e.g. examples/bike/pipeline.py:nightly)"
        )
    return where, function


class RefPolicy:
    """Which pipelines a remote caller may have the server run: files under `roots`, modules under `modules`."""

    def __init__(self, roots: Sequence[Path], modules: Sequence[str] = ()) -> None:
        self.roots = [Path(r).resolve() for r in roots]
        self.modules = [m for m in modules if m]

    def resolve(self, reference: str) -> str:
        """The reference the server runs (a file reference made absolute), or InvalidPipeline saying why not."""
        where, function = _split(reference)
        if where.endswith(".py"):
            given = Path(where)
            candidates = [given] if given.is_absolute() else [root / given for root in self.roots]
            outside = []
            for candidate in candidates:
                resolved = candidate.resolve()
                if not any(resolved.is_relative_to(root) for root in self.roots):
                    outside.append(str(resolved))
                    continue
                if resolved.is_file():
                    return f"{resolved}:{function}"
            roots = ", ".join(str(r) for r in self.roots) or "none"
            if outside and len(outside) == len(candidates):
                raise InvalidPipeline(
                    f"pipeline file {where!r} is outside the server's pipeline roots ({roots}); the server runs "
                    "only files under LOOPML_PIPELINE_ROOTS"
                )
            raise InvalidPipeline(f"pipeline file {where!r} does not exist under the server's pipeline roots ({roots})")
        if not _MODULE.match(where):
            raise InvalidPipeline(f"{where!r} is neither a module name nor a path to a .py file")
        if not any(where == prefix or where.startswith(prefix + ".") for prefix in self.modules):
            allowed = ", ".join(self.modules) or "none"
            raise InvalidPipeline(
                f"module {where!r} is not among the server's pipeline modules ({allowed}); the server imports only "
                "modules under LOOPML_PIPELINE_MODULES"
            )
        return f"{where}:{function}"


class RunLauncher:
    """Starts submitted runs and retries in child processes (at most `workers` at once) and reaps them."""

    def __init__(
        self,
        service: PipelineService,
        refs: RefPolicy | None = None,
        *,
        workers: int = 2,
        heartbeat_seconds: float = 5.0,
        start_timeout: float = 300.0,
        database_url: str | None = None,
        executor_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.service = service
        self.refs = refs
        self.workers = workers
        self.heartbeat_seconds = heartbeat_seconds
        self.start_timeout = start_timeout
        self.database_url = database_url or service.store.engine.url.render_as_string(hide_password=False)
        self.executor_options = {k: dict(v) for k, v in (executor_options or {}).items()}
        self._slots = threading.BoundedSemaphore(workers)
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._sweeper = Principal(actor=RUNNER_ACTOR, role=Role.ADMIN, project=None)
        self._closed = threading.Event()

    def close(self) -> None:
        """Stop judging children as they exit (the store is closing); the runs go on, heartbeating."""
        self._closed.set()

    # -- the operations --------------------------------------------------------------------------

    def submit(
        self,
        principal: Principal,
        pipeline: str,
        params: Mapping[str, Any] | None = None,
        executor: str = "process",
        cache: bool = True,
        project: str | None = None,
    ) -> PipelineRunRecord:
        """Run `pipeline` (`path.py:function` under the pipeline roots, or `module:function` of an allowed
        module) in a process of its own; answer the RUNNING run as soon as it exists."""
        principal.require(Role.EDITOR)
        if params is not None and not isinstance(params, Mapping):
            raise InvalidInput("params must be an object of parameter names to values")
        from loopml.pipelines.executor import executor_names

        if executor not in executor_names():
            raise InvalidInput(f"unknown executor {executor!r}: use one of {', '.join(executor_names())}")
        if self.refs is not None:
            ref = self.refs.resolve(pipeline)
        else:
            _split(pipeline)
            ref = pipeline.strip()
        if project is not None:
            self.service._project_for(principal, project)
        return self._launch(principal, ref, dict(params or {}), executor, cache, project, None)

    def retry(self, principal: Principal, run_id: str, executor: str | None = None) -> PipelineRunRecord:
        """Run failed run `run_id` again as a new run (in a process of its own): every step that finished there
        with an unchanged cache key reuses its outputs. A run is retried once: concurrent retries, one wins."""
        principal.require(Role.EDITOR)
        earlier = self.service.get_run(principal, run_id)
        if earlier.status == "RUNNING":
            raise InvalidInput(
                f"pipeline run {run_id} is still RUNNING: retry it once it ended (a run whose process died is "
                "marked FAILED by the server's sweep)"
            )
        with self.service.store.read() as unit:
            later = unit.pipelines.retried_by(run_id)
        if later is not None:
            raise_already(run_id, later)
        if executor is not None:
            from loopml.pipelines.executor import executor_names

            if executor not in executor_names():
                raise InvalidInput(f"unknown executor {executor!r}: use one of {', '.join(executor_names())}")
        ref = self.refs.resolve(earlier.ref) if self.refs is not None else earlier.ref
        with self.service.store.read() as unit:
            project = unit.pipelines.scope(run_id)[0]
        return self._launch(principal, ref, earlier.params, executor or earlier.executor, True, project, run_id)

    # -- the child processes ---------------------------------------------------------------------

    def _launch(
        self,
        principal: Principal,
        ref: str,
        params: dict[str, Any],
        executor: str,
        cache: bool,
        project: str | None,
        retry_of: str | None,
    ) -> PipelineRunRecord:
        if not self._slots.acquire(blocking=False):
            raise ServerBusy(
                f"this server already runs {self.workers} pipeline runs, its most at once (LOOPML_PIPELINE_WORKERS): "
                "try again when one has ended"
            )
        released = False
        try:
            root, endpoint = _artifact_location(self.service.artifacts)
            spec = {
                "database_url": self.database_url,
                "artifact_root": root,
                "s3_endpoint_url": endpoint,
                "default_project": self.service.default_project,
                "principal": {"actor": principal.actor, "role": principal.role.value, "project": principal.project},
                "ref": ref,
                "params": params,
                "executor": executor,
                "executor_options": self.executor_options.get(executor),
                "cache": cache,
                "project": project,
                "retry_of": retry_of,
                "heartbeat_seconds": self.heartbeat_seconds,
            }
            try:
                encoded = json.dumps(spec).encode()
            except (TypeError, ValueError) as error:
                raise InvalidInput(f"params must be JSON values: {error}") from None
            read_end, write_end = os.pipe()
            try:
                child = subprocess.Popen(
                    [sys.executable, "-m", "loopml.pipelines.child", str(write_end)],
                    stdin=subprocess.PIPE,
                    pass_fds=(write_end,),
                    start_new_session=True,  # a ^C to the server does not kill the runs it started
                )
            finally:
                os.close(write_end)
            assert child.stdin is not None
            try:
                child.stdin.write(encoded)
                child.stdin.close()
            except BrokenPipeError:
                pass
            with self._lock:
                self._children[child.pid] = child
            reaper = threading.Thread(target=self._reap, args=(child,), name=f"loopml-run-{child.pid}", daemon=True)
            reaper.start()
            released = True  # the reaper gives the slot back when the child exits
            return self._answer(child, read_end)
        finally:
            if not released:
                self._slots.release()

    def _answer(self, child: subprocess.Popen[bytes], read_end: int) -> PipelineRunRecord:
        """The child's first word: the run it opened, or the error that stopped it before."""
        data = b""
        deadline = time.monotonic() + self.start_timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    child.kill()
                    raise InvalidPipeline(
                        f"the pipeline did not start within {self.start_timeout:g} s (importing it or building its "
                        "graph took too long); its process was stopped"
                    )
                ready, _, _ = select.select([read_end], [], [], min(left, 1.0))
                if not ready:
                    continue
                chunk = os.read(read_end, 1 << 16)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(read_end)
        if not data:
            code = child.wait()
            raise InvalidPipeline(
                f"the pipeline's process exited (code {code}) before the run started: its module may call "
                "sys.exit or crash at import"
            )
        answer = json.loads(data)
        if "error" in answer:
            error = answer["error"]
            raise error_for_code(str(error["code"]))(str(error["message"]))
        return pipeline_run_from_json(answer["run"])

    def _reap(self, child: subprocess.Popen[bytes]) -> None:
        try:
            code = child.wait()
            if code != 0:
                logger.warning("the process of a pipeline run (pid %s) exited with code %s", child.pid, code)
            try:
                if not self._closed.is_set():
                    self.service.sweep(self._sweeper, stale_seconds=1e9)  # the run of a dead child fails at once
            except Exception:  # the store is down: the periodic sweep judges the run later
                logger.exception("could not check the run of pipeline process %s", child.pid)
        finally:
            with self._lock:
                self._children.pop(child.pid, None)
            self._slots.release()

    def running(self) -> int:
        with self._lock:
            return len(self._children)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for the children started here to exit; True if none is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                children = list(self._children.values())
            if not children:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            try:
                children[0].wait(timeout=left)
            except subprocess.TimeoutExpired:
                return False
            time.sleep(0.01)  # let the reaper thread drop it


def raise_already(run_id: str, later: str) -> None:
    from loopml.errors import AlreadyExists

    raise AlreadyExists(f"pipeline run {run_id} was already retried as run {later}: retry {later} instead")


def _artifact_location(store: Any) -> tuple[str, str | None]:
    from loopml.pipelines.runner import artifact_location

    return artifact_location(store)


class RunSweeper(LeasedLoop):
    """Inside `loopml server`: every `interval_seconds`, fail the submitted runs whose process died (no
    heartbeat for `stale_seconds`, or a holder process on this host that is gone)."""

    def __init__(self, service: PipelineService, interval_seconds: float, stale_seconds: float) -> None:
        super().__init__(service.store, SWEEP_LEASE, interval_seconds, max(stale_seconds, interval_seconds * 2), None)
        self.service = service
        self.stale_seconds = stale_seconds
        self.principal = Principal(actor=RUNNER_ACTOR, role=Role.ADMIN, project=None)

    def background_tick(self) -> None:
        # Every replica sweeps (no lease needed): a run is failed by one conditional update, once, whoever sees it
        # first; a dead pid is seen on its own host, stopped heartbeats from anywhere.
        try:
            self.service.sweep(self.principal, self.stale_seconds)
        except LoopmlError:
            logger.exception("the pipeline run sweep failed")

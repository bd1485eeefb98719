"""`ModelHost`: the model versions a replica has loaded, and the routing table that sends requests to them.

`apply(specs)` loads every version the new specs name and the host lacks (in a worker thread, verified by
`loopml.registry.load_model`), and only then swaps the routing table, in one assignment: a request sees the
old table or the new one, never a half-built one, and never a version that is still loading. Versions no
longer named are unloaded once their in-flight requests finish. A poller calls `source.load()` every
`poll_seconds`, or as soon as the source hears of a change (a store on PostgreSQL notifies), and applies what
changed (hot reload); a spec that fails to load leaves that deployment on what it served before.

A deployment fails alone: a package that does not verify (or load) makes only its own deployment unavailable
(at start: the app answers 503 with the reason; on a hot reload: it keeps serving the versions it had loaded and
verified before), while the other deployments of the replica serve and update as usual. The reason is in
`load_errors`, logged once per new reason; the poller retries on every poll.

Routing: each request goes to one live version, by weight. With a sticky key, `crc32(key) % total_weight`
against the cumulative weights picks the version, so one key always meets one version while the weights hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import random
import time
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import NotFound
from loopml.serving.batching import Backlog, BatchingConfig, MicroBatcher
from loopml.serving.inputs import from_records
from loopml.serving.metrics import ServingMetrics
from loopml.serving.predictors import ServingModel, load_serving_model
from loopml.serving.specs import DeploymentSpec, ServingVersion, SpecSource

__all__ = ["Choice", "ModelHost", "Route", "Served"]

WARM_UP_PREDICTIONS = 3
"""Predictions a replica makes on a version's input example when it loads it, before routing traffic to it."""
GC_YOUNG_THRESHOLD = 10_000
"""Net allocations of container objects between collections of the youngest generation in a replica."""

logger = logging.getLogger("loopml.serving")

_ServedKey = tuple[str, int, str]


@dataclass(eq=False)
class Served:
    """A loaded model version with its micro-batcher, and how many requests use it right now."""

    model: ServingModel
    batcher: MicroBatcher
    users: int = 0
    retired: bool = False


@dataclass(frozen=True)
class Choice:
    """The version a request goes to, as its deployment names it (weight, role) and as loaded; `header` is
    its `X-Loopml-Model-Version` value (built once here, not per request)."""

    version: ServingVersion
    served: Served
    header: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", self.version.label.encode())


@dataclass(frozen=True)
class Route:
    """A deployment's routing: live versions with cumulative weights, shadows, and every version by number."""

    spec: DeploymentSpec
    live: tuple[Choice, ...]
    cumulative: tuple[int, ...]
    total: int
    shadows: tuple[Choice, ...]
    by_version: dict[int, Choice] = field(repr=False)

    def choose(self, key: str | None = None) -> Choice:
        """A live version: by the sticky `key`'s hash when given, else at random, both by weight."""
        if len(self.live) == 1:
            return self.live[0]
        # random.randrange: traffic splitting, not cryptography
        point = random.randrange(self.total) if key is None else zlib.crc32(key.encode()) % self.total  # noqa: S311
        for choice, bound in zip(self.live, self.cumulative, strict=True):
            if point < bound:
                return choice
        return self.live[-1]


class ModelHost:
    """Hosts deployments read from `source`; `await start()` loads them and starts the poller.

    `predict_threads` threads run model predicts; each limits OpenMP/BLAS to `model_threads` threads (a 1-row
    HistGradientBoosting predict with 2 OpenMP threads on a busy 2-core machine took 100x longer than with 1).
    `model_threads=None` leaves the libraries' defaults.

    Its collaborators come in here and are public for the app that serves the host: `batching` configures each
    version's `MicroBatcher`; `metrics` (the replica's Prometheus series) is told each batch's size, the
    versions served and the deployments that fail to load; `backlog` counts the requests the app accepted and
    has not yet handed to a micro-batcher (a batch waits for more only while there are some).

    With `tune_gc` (what `loopml serve` sets: a replica process owns its heap), the host tunes the garbage
    collector for serving. Every change of the loaded versions ends with a full collection and `gc.freeze()`:
    the modules and models, most of the heap, move out of the collector's sight (the next change unfreezes
    first, so an unloaded version's cyclic garbage is collected then). And the youngest generation is collected
    after `GC_YOUNG_THRESHOLD` net allocations of container objects instead of Python's 700: a request's
    objects die before that, so with the request log off a loaded replica hardly ever collects. Measured on
    the Bike Sharing model at ~8,000 requests/s (BENCHMARKS.md): without this, the request log's records, which
    live for a flush interval and so reach the oldest generation, made full collections scan the whole heap of
    libraries and models over and over, about 9 µs of CPU per logged request, as much as the log itself.
    """

    def __init__(
        self,
        source: SpecSource,
        *,
        poll_seconds: float = 2.0,
        trust_pickle: bool = False,
        predict_threads: int = 1,
        model_threads: int | None = 1,
        tune_gc: bool = False,
        batching: BatchingConfig | None = None,
        metrics: ServingMetrics | None = None,
        backlog: Backlog | None = None,
    ) -> None:
        if poll_seconds <= 0:
            raise ValueError("poll_seconds must be positive")
        self.source = source
        self.poll_seconds = poll_seconds
        self.trust_pickle = trust_pickle
        self.tune_gc = tune_gc
        self.batching = batching or BatchingConfig()
        self.metrics = metrics if metrics is not None else ServingMetrics()
        self.backlog = backlog if backlog is not None else Backlog()
        self.load_errors: dict[str, str] = {}
        self._routes: dict[str, Route] = {}
        self._specs: dict[str, DeploymentSpec] = {}
        self._served: dict[_ServedKey, Served] = {}
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._started = False
        self._model_threads = model_threads
        self._predict_threads = predict_threads
        self._executor: ThreadPoolExecutor | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the source's deployments. A deployment that fails to load is left out (its reason in
        `load_errors`) and the others serve; only a source that cannot be read at all fails the start."""
        if self._started:
            return
        specs = await asyncio.to_thread(self.source.load)
        await self.apply(specs, failures=_source_failures(self.source))
        self._started = True
        self._poller = asyncio.get_running_loop().create_task(self._poll(), name="loopml-spec-poller")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        for served in list(self._served.values()):
            await served.batcher.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        self._served.clear()
        self._routes = {}
        self._started = False
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    @property
    def ready(self) -> bool:
        return self._started and bool(self._routes)

    # --- reading -----------------------------------------------------------------------------------------------

    @property
    def routes(self) -> dict[str, Route]:
        """The current routing table (replaced whole on every change; never mutated)."""
        return self._routes

    @property
    def specs(self) -> dict[str, DeploymentSpec]:
        return dict(self._specs)

    def route(self, deployment: str) -> Route:
        route = self._routes.get(deployment)
        if route is None:
            raise NotFound(f"no deployment named {deployment!r} is served here")
        return route

    def acquire(self, served: Served) -> None:
        served.users += 1

    def release(self, served: Served) -> None:
        served.users -= 1
        if served.retired and served.users == 0:
            self._close(served)

    # --- changing ----------------------------------------------------------------------------------------------

    async def apply(
        self, specs: dict[str, DeploymentSpec], *, strict: bool = False, failures: Mapping[str, str] | None = None
    ) -> None:
        """Load what `specs` need, then route to them. A deployment whose versions fail to load keeps its old
        routing (and its error is in `load_errors`), unless `strict`, where the error propagates. `failures`
        names deployments the source could not give a spec for (say, a package that fails verification), with
        the reason: they are treated as failed loads."""
        async with self._lock:
            loaded: dict[_ServedKey, Served] = {}
            applied: dict[str, DeploymentSpec] = {}
            errors: dict[str, str] = {}
            for name, reason in (failures or {}).items():
                self._report(name, reason)
                errors[name] = reason
                if name in self._specs:
                    applied[name] = self._specs[name]
            for name, spec in specs.items():
                try:
                    for version in spec.versions:
                        key = _key(version)
                        if key not in self._served and key not in loaded:
                            loaded[key] = await self._load(version)
                except Exception as error:
                    if strict:
                        raise
                    errors[name] = f"{type(error).__name__}: {error}"
                    self._report(name, errors[name], error)
                    if name in self._specs:
                        applied[name] = self._specs[name]
                    continue
                applied[name] = spec
            served = {**self._served, **loaded}
            routes = {name: _route(spec, served) for name, spec in applied.items()}
            in_use = {_key(v) for spec in applied.values() for v in spec.versions}
            self._routes = routes  # the swap: requests from here on see only the new table
            self._specs = applied
            self._served = {key: s for key, s in served.items() if key in in_use}
            self.load_errors = errors
            for key, old in served.items():
                if key not in in_use:
                    old.retired = True
                    if old.users == 0:
                        self._close(old)
            if self.tune_gc and (loaded or len(served) != len(self._served)):
                _tune_gc()
        self._show()

    def _show(self) -> None:
        """Make the metrics list the versions served and the deployments that failed to load, as of now."""
        self.metrics.set_load_failures({(name, reason.split(":", 1)[0]) for name, reason in self.load_errors.items()})
        self.metrics.set_models(
            {
                (name, c.version.model, str(c.version.version), c.version.role, c.served.model.flavor)
                for name, route in self._routes.items()
                for c in route.by_version.values()
            }
        )

    def _report(self, name: str, reason: str, error: Exception | None = None) -> None:
        """Log a deployment's load failure once per new reason (the poller retries it on every poll)."""
        if self.load_errors.get(name) == reason:
            return
        kept = "it keeps the versions it served" if name in self._specs else "it is unavailable"
        logger.error("deployment %r cannot load its model versions (%s); %s", name, reason, kept, exc_info=error)

    async def _load(self, version: ServingVersion) -> Served:
        started = time.perf_counter()
        model = await asyncio.to_thread(load_serving_model, version, trust_pickle=self.trust_pickle)
        logger.info(
            "loaded %s (%s flavor%s) in %.2f s",
            version.label,
            model.flavor,
            ", fast path" if model.fast_path else "",
            time.perf_counter() - started,
        )
        await self._warm_up(model)
        batcher = MicroBatcher(
            model.predict,
            self.executor,
            self.batching,
            observe=self.metrics.batch_observer(model.model, model.version),
            backlog=self.backlog,
        )
        return Served(model, batcher)

    async def _warm_up(self, model: ServingModel) -> None:
        """The model's own warm-up (`LoadedModel.warm_up`: compiled trees build their leaf masks), then a few
        predictions on one record of the version's input example (or of zeros and empty strings shaped by its
        signature), on the predict threads, before any request is routed to it: the first
        predictions of a freshly loaded model pay for lazy imports, allocations and thread-pool start-up
        (tens of ms on a busy machine), which would otherwise land on its first canary requests and their p99.
        A failing warm-up is logged and the version loads anyway: requests then meet the same error."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.executor, model.loaded.warm_up)
            example = model.loaded.input_example or [_example_record(model.converter.signature.inputs)]
            matrix = model.converter.to_matrix(from_records(example[:1], model.converter.names, where="warm-up"))
            for _ in range(WARM_UP_PREDICTIONS):
                await loop.run_in_executor(self.executor, model.predict, matrix)
        except Exception:
            logger.warning("%s: warm-up predictions failed", model.label, exc_info=True)
            return
        logger.info("warmed %s up in %.3f s", model.label, time.perf_counter() - started)

    def _close(self, served: Served) -> None:
        task = asyncio.get_running_loop().create_task(served.batcher.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _poll(self) -> None:
        while True:
            await self._wait_for_change()
            try:
                specs = await asyncio.to_thread(self.source.load)
            except Exception:
                logger.exception("cannot read the deployment specs; serving what is loaded")
                continue
            failures = _source_failures(self.source)
            if specs != self._specs or self.load_errors or failures:
                try:
                    await self.apply(specs, failures=failures)
                except Exception:
                    logger.exception("cannot apply the new deployment specs; serving what is loaded")

    async def _wait_for_change(self) -> None:
        """`poll_seconds`, or less when the source hears of a change (a store on PostgreSQL notifies)."""
        if not getattr(self.source, "notifies", False):
            await asyncio.sleep(self.poll_seconds)
            return
        wait_for_change = self.source.wait_for_change  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.poll_seconds
        # in short waits: a thread blocked in the wait holds up the process's exit until it returns
        while (left := deadline - loop.time()) > 0:
            if await asyncio.to_thread(wait_for_change, min(left, 0.5)):
                return

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The threads that run predicts (created on first use, shut down by `stop`)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self._predict_threads, thread_name_prefix="loopml-predict", initializer=self._init_thread
            )
        return self._executor

    def _init_thread(self) -> None:
        if self._model_threads is None:
            return
        try:
            threadpoolctl: Any = importlib.import_module("threadpoolctl")
        except ImportError:  # scikit-learn depends on it; without it the libraries keep their defaults
            return
        threadpoolctl.threadpool_limits(limits=self._model_threads)


def _source_failures(source: SpecSource) -> Mapping[str, str]:
    """The deployments the source's last `load` left out, with the reason (a source may not have any)."""
    failures: Mapping[str, str] = getattr(source, "failures", {})
    return failures


def _example_record(columns: Sequence[Any]) -> dict[str, Any]:
    """One record the signature's input `columns` accept: zeros, false, empty strings, the epoch."""
    values = {"bool": False, "string": "", "datetime": "1970-01-01T00:00:00"}
    return {c.name: values.get(c.dtype, 0.0 if c.dtype.startswith("float") else 0) for c in columns}


def _tune_gc() -> None:
    """Collect everything, freeze what is left, collect the young generation less often (see `ModelHost`)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, GC_YOUNG_THRESHOLD), middle, old)


def _key(version: ServingVersion) -> _ServedKey:
    return (version.model, version.version, str(version.package_dir))


def _route(spec: DeploymentSpec, served: dict[_ServedKey, Served]) -> Route:
    choices = {v.version: Choice(v, served[_key(v)]) for v in spec.versions}
    live = tuple(choices[v.version] for v in spec.live)
    cumulative, total = [], 0
    for choice in live:
        total += choice.version.weight
        cumulative.append(total)
    shadows = tuple(choices[v.version] for v in spec.shadows)
    return Route(spec, live, tuple(cumulative), total, shadows, choices)

"""The data plane: models by name and version, readiness, and the one call that owns an inference. No HTTP here.

    view = plane.view("mnist", "2")                # a served version, to describe or to parse a request for
    answer = await plane.infer("mnist", 2, images)  # probabilities, and the version that answered

Every protocol (TF Serving v1, the Open Inference Protocol over JSON, binary and
gRPC, the classify upload) parses its request into images, calls `infer`, and
formats the `Inference` it gets back: `infer` takes the version, checks the batch,
runs it and gives the version back, in one try/finally. Small batches run on the
event loop (~1 ms at most, less than a hop to a thread costs); larger ones, and
large request bodies' parsing, leave it (`off_loop`), under the timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from serve.errors import BadInput, ModelNotFound, NotReady, shown
from serve.plane.limits import DEFAULT_MAX_BATCH, INLINE_MAX_VALUES, INLINE_PARSE_BYTES, Limits
from serve.plane.repository import ModelRepository
from serve.plane.versions import RULE, parse_version
from serve.runtime.model import Model, ModelInfo

if TYPE_CHECKING:
    from serve.server.prometheus import Metrics

NO_LABELS = ("", "")  # the metrics' model and version for an answer that no served version gave


@dataclass(frozen=True, slots=True)
class ModelView:
    """A served version, as a request sees it (nothing held): to describe it, or to parse a request's images for."""

    name: str
    version: int
    model: Model

    @property
    def info(self) -> ModelInfo:
        """The model's metadata: classes, input shape, task."""
        return self.model.info

    @property
    def labels(self) -> tuple[str, str]:
        """The metrics' model and version labels of an answer about this version."""
        return self.name, str(self.version)


@dataclass(frozen=True, slots=True)
class Inference:
    """What `infer` answers: the probabilities [N, K], and the model version that computed them."""

    probabilities: np.ndarray
    name: str
    version: int

    @property
    def labels(self) -> tuple[str, str]:
        """The metrics' model and version labels of this answer."""
        return self.name, str(self.version)


def version_number(name: str, version: str | int | None) -> int | None:
    """A request's version as a number (None: the newest); ModelNotFound when the text is not a version."""
    if version is None or isinstance(version, int):
        return version
    number = parse_version(version)
    if number is None:
        cut = version if len(version) <= 40 else version[:40] + "..."
        raise ModelNotFound(f"model {shown(name)} has no version {cut!r}; {RULE}.")
    return number


class DataPlane:
    """Serves a repository's models; protocol modules translate to and from it."""

    def __init__(
        self,
        repository: ModelRepository,
        max_batch: int = DEFAULT_MAX_BATCH,
        limits: Limits | None = None,
        metrics: Metrics | None = None,
    ):
        self.repository = repository
        self.max_batch = max_batch
        self.limits = limits or Limits()
        self.metrics = metrics
        self.draining = False  # set when the server stops: ready turns false while requests finish
        self.parsed_large = False  # a large body was parsed since the server last gave freed memory back
        # Parsing large bodies: one thread, so at most one parse holds the GIL at a time and
        # the event loop gets it back between them (health probes answer during a flood).
        self._parser = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kerasreg-parse")

    def live(self) -> bool:
        """The process is up."""
        return True

    def ready(self) -> bool:
        """A model is served and the server is not stopping."""
        return self.repository.ready() and not self.draining

    def view(self, name: str, version: str | int | None = None) -> ModelView:
        """The version of `name` a request names (the newest when None), without holding it.

        Raises:
            ModelNotFound: no such model, or no such version (or text that is no version);
            NotReady: the model has no version that loads.
        """
        served = self.repository.find(name, version_number(name, version))
        return ModelView(served.name, served.version, served.model)

    def labels(self, name: str | None, version: str | None) -> tuple[str, str]:
        """The metrics' labels for an answer that no version gave (an error): the served model and the version that
        would have answered (the path's, or the newest), each only when served; else empty.

        Never text the server does not have: a client cannot grow the label set.
        """
        versions = self.repository.served.get(name or "")
        if not versions:
            return NO_LABELS
        number = max(versions) if version is None else parse_version(version)
        return name, str(number) if number in versions else ""

    def check_batch_size(self, count: int) -> None:
        """Refuse an empty request, or more images than this server takes (before any is decoded, where it can)."""
        if count == 0:
            raise BadInput("no images in the request.")
        if count > self.max_batch:
            raise BadInput(f"batch of {count} images exceeds this server's limit of {self.max_batch}; split it.")

    async def infer(self, name: str, version: str | int | None, images) -> Inference:
        """Run `images` (uint8 [N,H,W,C], or one [H,W,C]) on model `name` at `version` (None: the newest).

        Takes the version for the call and gives it back however the call ends, so a
        version taken out of the repository is dropped only after its last request.

        Raises:
            ModelNotFound, NotReady: as `view`; BadInput: images the model cannot take, or too many;
            NotReady: a large batch's inference timed out.
        """
        served = self.repository.acquire(name, version_number(name, version))
        try:
            if getattr(images, "ndim", 1) and len(images) == 0:
                raise BadInput("no images in the request.")
            batch = served.model.validate(images)
            self.check_batch_size(len(batch))
            if self.metrics is not None:
                self.metrics.images(served.name, served.version, len(batch))
            if batch.size <= INLINE_MAX_VALUES:
                probabilities = served.model.run(batch)
            else:
                # Told to stop on timeout where the runtime can be (onnxruntime's RunOptions.terminate;
                # LiteRT's cannot), so the thread does not run on after the 503.
                run, stop = served.model.session.stoppable()
                probabilities = await self.in_thread(lambda: run(batch), "inference", on_timeout=stop)
            return Inference(probabilities, served.name, served.version)
        finally:
            self.repository.release(served)

    async def off_loop(self, size: int, job: Callable, what: str):
        """`job()` at once when `size` bytes are small; else in the parsing thread, under the timeout."""
        if size <= INLINE_PARSE_BYTES:
            return job()
        self.parsed_large = True
        return await self.in_parser(job, what)

    async def in_parser(self, job: Callable, what: str):
        """`job()` in the parsing thread, under the timeout: one parse at a time holds the GIL."""
        return await self.in_thread(job, what, executor=self._parser)

    async def in_thread(self, job: Callable, what: str, on_timeout: Callable[[], None] | None = None, executor=None):
        """`job()` in a worker thread, or NotReady after the timeout (the event loop serves on meanwhile).

        `on_timeout` runs when the time is up: a way to tell the job to stop.
        """
        future = asyncio.get_running_loop().run_in_executor(executor, job)
        try:
            return await asyncio.wait_for(future, self.limits.timeout_seconds)
        except asyncio.TimeoutError:
            if on_timeout is not None:
                on_timeout()
            raise NotReady(f"{what} timed out after {self.limits.timeout_seconds:g} s; retry later.") from None

"""The data plane: models by name and version, readiness, batch checks and inference. No HTTP in here.

Protocol modules call `resolve` to pick the version a request names (the newest
when it names none), `batch` to check its images, and `infer` to run them; the app
calls `finish` once the answer is out, so a version taken out of the repository is
dropped only after its last request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from serve.errors import BadInput, ModelNotFound, NotReady
from serve.limits import DEFAULT_MAX_BATCH, INLINE_MAX_VALUES, Limits
from serve.model import Model
from serve.repository import ModelRepository, Served

if TYPE_CHECKING:
    from serve.metrics import Metrics


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

    def live(self) -> bool:
        """The process is up."""
        return True

    def ready(self) -> bool:
        """A model is served and the server is not stopping."""
        return self.repository.ready() and not self.draining

    def resolve(self, name: str, version: str | None = None) -> Served:
        """The version of model `name` to answer with, held until `finish`: `version`, or the newest.

        Raises:
            ModelNotFound: no such model or version; NotReady: the model has no version that loads.
        """
        number = None
        if version is not None:
            if not version.isdigit():
                raise ModelNotFound(f"model {name!r} has no version {version!r}; versions are whole numbers.")
            number = int(version)
        return self.repository.acquire(name, number)

    def finish(self, served: Served) -> None:
        """The request that resolved `served` has been answered."""
        self.repository.release(served)

    def model(self, name: str) -> Model:
        """The newest version's model of `name` (for metadata; nothing held)."""
        versions = self.repository.served.get(name)
        if not versions:
            self.repository.not_served(name)
        return versions[max(versions)].model

    def batch(self, model: Model, images) -> np.ndarray:
        """`images` validated for `model` as uint8 [N,H,W,C], within this server's batch cap."""
        if getattr(images, "ndim", 1) and len(images) == 0:
            raise BadInput("no images in the request.")
        batch = model.validate(images)
        if len(batch) > self.max_batch:
            raise BadInput(f"batch of {len(batch)} images exceeds this server's limit of {self.max_batch}; split it.")
        return batch

    def infer(self, served: Served, batch: np.ndarray, respond: Callable[[np.ndarray], object]):
        """`respond(probabilities)` for a validated batch: at once when small, else awaitable, from a thread.

        Small batches run on the event loop (see INLINE_MAX_VALUES); larger ones run in a
        thread under the timeout, and on timeout the run is told to stop where the runtime
        can be (onnxruntime's RunOptions.terminate; LiteRT's cannot), so the thread does
        not run on after the 503.
        """
        if self.metrics is not None:
            self.metrics.images(served.name, served.version, len(batch))
        if batch.size <= INLINE_MAX_VALUES:
            return respond(served.model.run(batch))
        return self._infer_in_thread(served.model, batch, respond)

    async def _infer_in_thread(self, model: Model, batch: np.ndarray, respond: Callable[[np.ndarray], object]):
        run, stop = model.session.stoppable()
        return respond(await self.in_thread(lambda: run(batch), "inference", on_timeout=stop))

    async def in_thread(self, job: Callable, what: str, on_timeout: Callable[[], None] | None = None):
        """`job()` in a worker thread, or NotReady after the timeout (the event loop serves on meanwhile).

        `on_timeout` runs when the time is up: a way to tell the job to stop.
        """
        future = asyncio.get_running_loop().run_in_executor(None, job)
        try:
            return await asyncio.wait_for(future, self.limits.timeout_seconds)
        except asyncio.TimeoutError:
            if on_timeout is not None:
                on_timeout()
            raise NotReady(f"{what} timed out after {self.limits.timeout_seconds:g} s; retry later.") from None


"""The data plane: models by name and version, readiness, metadata, and the one call that owns an inference.

    view = plane.describe("mnist", "2")                           # a served version, to describe (nothing held)
    answer = await plane.infer(InferenceRequest("mnist", None, parse, size))   # one trip

Every protocol (TF Serving v1, the Open Inference Protocol over JSON, binary and
gRPC, the image upload) turns its request into an `InferenceRequest`: the model and
version it names, and `parse`, which reads the client's bytes for the version that
answers. `infer` takes that version once, and everything happens on it: the parse
(on the event loop when `size` is small, else in the parsing thread), the decoding of
any images within their pixel budget (serve/plane/image_budget.py), the batch's
checks, the run (on the loop when small, else in a thread), all under `--timeout`;
then it gives the version back, however the call ended. So a version swapped out
mid-request (a reload) never answers 404 to a request that named none: the request
finishes on the version it started with. No HTTP here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from serve.errors import BadInput, ModelNotFound, NotReady, shown
from serve.limits import DEFAULT_MAX_BATCH, INLINE_MAX_VALUES, INLINE_PARSE_BYTES, Limits
from serve.plane.image_budget import Decoding
from serve.plane.repository import ModelRepository
from serve.plane.versions import RULE, parse_version
from serve.runtime.model import Model, ModelInfo


class Counter(Protocol):
    """What the plane tells the server's metrics (serve/server/prometheus.py): the images each version ran."""

    def images(self, model: str, version: int, count: int) -> None: ...


NO_LABELS = ("", "")  # the metrics' model and version for an answer that no served version gave
SERVER_NAME = "serve"  # what the v2 protocol's server metadata calls this server
EXTENSIONS = ("binary_tensor_data", "classification")  # the v2 protocol's extensions served (GET /v2, gRPC)


@dataclass(frozen=True, slots=True)
class ModelView:
    """A served version, as a request sees it: to describe it, or to parse a request's images for."""

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
class Parsed:
    """What a protocol's `parse` made of its request for the version that answers: the images (or those still to
    decode, within the pixel budget), and whatever the protocol needs back to format its answer."""

    images: Any  # np.ndarray (or nested lists numpy takes), or a Decoding
    context: Any = None


@dataclass(frozen=True, slots=True)
class InferenceRequest:
    """A request as the plane takes it: the model and version it names (None: the newest), how to read its images
    once that version is held, and how many bytes that reads (which decides where it runs)."""

    name: str
    version: str | int | None
    parse: Callable[[ModelView], Parsed]
    size: int
    off_loop: bool = False  # read off the event loop whatever its size (an upload: image headers are work)


@dataclass(frozen=True, slots=True)
class Inference:
    """What `infer` answers: the probabilities [N, K], the version that computed them, and the parse's context."""

    probabilities: np.ndarray
    view: ModelView
    context: Any = None

    @property
    def name(self) -> str:
        """The model that answered."""
        return self.view.name

    @property
    def version(self) -> int:
        """The version that answered."""
        return self.view.version

    @property
    def info(self) -> ModelInfo:
        """The answering model's metadata (its classes, to format the answer)."""
        return self.view.info

    @property
    def labels(self) -> tuple[str, str]:
        """The metrics' model and version labels of this answer."""
        return self.view.labels


def version_number(name: str, version: str | int | None) -> int | None:
    """A request's version as a number (None: the newest); ModelNotFound when the text is not a version."""
    if version is None or isinstance(version, int):
        return version
    number = parse_version(version)
    if number is None:
        cut = version if len(version) <= 40 else version[:40] + "..."
        raise ModelNotFound(f"model {shown(name)} has no version {cut!r}; {RULE}.")
    return number


@dataclass
class DataPlane:
    """Serves a repository's models; protocol modules translate to and from it."""

    repository: ModelRepository
    max_batch: int = DEFAULT_MAX_BATCH
    limits: Limits = field(default_factory=Limits)
    metrics: Counter | None = None
    draining: bool = False  # set when the server stops: ready turns false while requests finish
    parsed_large: bool = False  # a large body was parsed since the server last gave freed memory back

    def __post_init__(self):
        # Parsing large bodies: one thread, so at most one parse holds the GIL at a time and
        # the event loop gets it back between them (health probes answer during a flood).
        self._parser = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kerasreg-parse")

    def live(self) -> bool:
        """The process is up."""
        return True

    def ready(self) -> bool:
        """A model is served and the server is not stopping."""
        return self.repository.ready() and not self.draining

    def describe(self, name: str, version: str | int | None = None) -> ModelView:
        """The version of `name` a request names (the newest when None), to describe; nothing held.

        Raises:
            ModelNotFound: no such model, or no such version (or text that is no version);
            NotReady: the model has no version that loads.
        """
        served = self.repository.find(name, version_number(name, version))
        return ModelView(served.name, served.version, served.model)

    def server_metadata(self) -> dict:
        """The v2 protocol's server metadata: name, version and the extensions served."""
        from shared.extras import version

        return {"name": SERVER_NAME, "version": version(), "extensions": list(EXTENSIONS)}

    def model_metadata(self, name: str, version: str | None = None) -> tuple[dict, tuple[str, str]]:
        """The v2 model metadata of `name` (its newest version, or `version`), with every version's state, and its
        labels: what HTTP's GET /v2/models/NAME and gRPC's ModelMetadata both answer."""
        found = self.describe(name, version)
        info = found.info
        states = self.repository.states(name)
        metadata = {
            "name": name,
            "versions": [str(s["version"]) for s in states if s["state"] == "AVAILABLE"],
            "platform": found.model.session.platform,
            "inputs": [{"name": info.input_name, "datatype": "UINT8", "shape": [-1, *info.input_shape]}],
            "outputs": [{"name": info.output_name, "datatype": "FP32", "shape": [-1, len(info.classes)]}],
            "parameters": {
                "version": str(found.version),
                "version_states": [{**s, "version": str(s["version"])} for s in states],
                "classes": list(info.classes),
                "task": info.task,
                "dataset": info.dataset,
                **{key: info.meta(key) for key in CARD_PARAMETERS},
            },
        }
        return metadata, found.labels

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

    async def infer(self, request: InferenceRequest) -> Inference:
        """The request, answered by the version it names, taken once for the whole call (see the module docstring).

        Raises:
            ModelNotFound, NotReady: as `describe`; BadInput: what `parse` or the images' checks refuse;
            NotReady: the parse, the decoding or the inference timed out.
        """
        served = self.repository.acquire(request.name, version_number(request.name, request.version))
        try:
            view = ModelView(served.name, served.version, served.model)
            parsed = await self.off_loop(request.size, lambda: request.parse(view), "parsing", request.off_loop)
            images = parsed.images
            if isinstance(images, Decoding):
                decoding = images
                images = decoding.run() if decoding.small else await self.in_thread(
                    decoding.run, "decoding the images", on_timeout=decoding.cancel
                )  # fmt: skip
            return Inference(await self._run(view, images), view, parsed.context)
        finally:
            self.repository.release(served)

    async def _run(self, view: ModelView, images) -> np.ndarray:
        """The probabilities of `images` (uint8 [N,H,W,C], or one [H,W,C]) on `view`'s model, checked first."""
        if getattr(images, "ndim", 1) and len(images) == 0:
            raise BadInput("no images in the request.")
        batch = view.model.validate(images)
        self.check_batch_size(len(batch))
        if self.metrics is not None:
            self.metrics.images(view.name, view.version, len(batch))
        if batch.size <= INLINE_MAX_VALUES:
            return view.model.run(batch)
        # Told to stop on timeout where the runtime can be (onnxruntime's RunOptions.terminate; LiteRT's cannot),
        # so the thread does not run on after the 503.
        run, stop = view.model.session.stoppable()
        return await self.in_thread(lambda: run(batch), "inference", on_timeout=stop)

    async def off_loop(self, size: int, job: Callable, what: str, always: bool = False):
        """`job()`, which reads `size` bytes of a client's: at once when they are few (and not `always` off the
        loop), else in the parsing thread under the timeout (one parse at a time holds the GIL)."""
        if size <= INLINE_PARSE_BYTES and not always:
            return job()
        self.parsed_large |= size > INLINE_PARSE_BYTES
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


# The model card, from the file's kerasreg metadata: what the page shows beside its predictions.
CARD_PARAMETERS = ("metrics", "parity", "input", "templates")

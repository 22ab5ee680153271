"""The data plane: models by name, readiness and batch checks. No HTTP in here."""

from __future__ import annotations

import numpy as np

from serve.errors import BadInput, ModelNotFound
from serve.limits import DEFAULT_MAX_BATCH
from serve.model import Model


class DataPlane:
    """Serves the loaded models; protocol modules translate to and from it."""

    def __init__(self, models: dict[str, Model], max_batch: int = DEFAULT_MAX_BATCH):
        self.models = models
        self.max_batch = max_batch
        self.draining = False  # set when the server stops: ready turns false while requests finish

    def live(self) -> bool:
        """The process is up."""
        return True

    def ready(self) -> bool:
        """At least one model is loaded and the server is not stopping."""
        return bool(self.models) and not self.draining

    def model(self, name: str) -> Model:
        """The model called `name`, or ModelNotFound listing the names there are."""
        try:
            return self.models[name]
        except KeyError:
            raise ModelNotFound(
                f"model {name!r} not found; this server has: {', '.join(sorted(self.models))}."
            ) from None

    def batch(self, model: Model, images) -> np.ndarray:
        """`images` validated for `model` as uint8 [N,H,W,C], within this server's batch cap."""
        if len(images) == 0:
            raise BadInput("no images in the request.")
        batch = model.validate(images)
        if len(batch) > self.max_batch:
            raise BadInput(f"batch of {len(batch)} images exceeds this server's limit of {self.max_batch}; split it.")
        return batch

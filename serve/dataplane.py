"""The data plane: models by name, readiness, metadata and inference. No HTTP in here."""

from __future__ import annotations

import numpy as np

from serve.errors import BadInput, ModelNotFound
from serve.model import Model

DEFAULT_MAX_BATCH = 256


class DataPlane:
    """Serves the loaded models; protocol modules translate to and from it."""

    def __init__(self, models: dict[str, Model], max_batch: int = DEFAULT_MAX_BATCH):
        self.models = models
        self.max_batch = max_batch

    def live(self) -> bool:
        """The process is up."""
        return True

    def ready(self) -> bool:
        """Every model is loaded."""
        return bool(self.models)

    def model(self, name: str) -> Model:
        """The model called `name`, or ModelNotFound listing the names there are."""
        try:
            return self.models[name]
        except KeyError:
            raise ModelNotFound(
                f"model {name!r} not found; this server has: {', '.join(sorted(self.models))}."
            ) from None

    def infer(self, name: str, images) -> np.ndarray:
        """Probabilities [N, K] from `name` for a batch of images, within the batch cap."""
        model = self.model(name)
        batch = model.validate(images)
        if len(batch) > self.max_batch:
            raise BadInput(f"batch of {len(batch)} images exceeds this server's limit of {self.max_batch}; split it.")
        if len(batch) == 0:
            raise BadInput("no images in the request.")
        return model.run(batch)

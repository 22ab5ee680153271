"""The top classes of each image: the one ranking that `serve`'s library and routes and `kerasreg.Run` all give."""

from __future__ import annotations

import numpy as np

DEFAULT_TOP_K = 3  # classes shown per image where the caller does not say: the library, the CLI, the classify route


def top_classes(probabilities: np.ndarray, k: int) -> np.ndarray:
    """The indices of each row's `k` largest probabilities [N, min(k, K)], largest first; ties keep the lower index
    first (a stable sort), so every caller ranks equal probabilities alike."""
    return np.argsort(-probabilities, axis=1, kind="stable")[:, : min(k, probabilities.shape[1])]

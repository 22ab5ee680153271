"""The run directory's pictures, drawn from the trained model and its metrics."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kerasreg.datasets import BINARY, ImageDataset
from kerasreg.reports.figures import (
    plot_confusion_matrix,
    plot_l2_search,
    plot_learning_curves,
    plot_mistakes,
    plot_reliability,
    plot_weight_templates,
)
from kerasreg.run_directory import files

if TYPE_CHECKING:
    from kerasreg.l2_search.path import L2Search


def write_reports(
    run_dir: Path,
    model,
    data: ImageDataset,
    history: list[dict],
    metrics: dict,
    probabilities: np.ndarray,
    search: L2Search | None = None,
) -> None:
    """Learning curves, confusion matrix, weight templates, the worst mistakes, the reliability diagram and --l2
    auto's search under plots/.

    `probabilities` are the model's [N, K] answers on the test images, in the order of `data.test_images`;
    `search` is --l2 auto's search, when the run made one.
    """
    (run_dir / files.PLOTS).mkdir(parents=True, exist_ok=True)
    if history:
        plot_learning_curves(history, run_dir / files.LEARNING_CURVES)
    plot_confusion_matrix(metrics["confusion_matrix"], data.class_names, run_dir / files.CONFUSION_MATRIX)
    kernel = model.get_layer("classifier").get_weights()[0]
    names = [data.class_names[1]] if data.task == BINARY else list(data.class_names)
    plot_weight_templates(kernel, data.input_shape, names, run_dir / files.WEIGHTS)
    named = data.test_files if data.test_files is not None and len(data.test_files) == len(data.test_labels) else None
    plot_mistakes(data.test_images, data.test_labels, probabilities, data.class_names, run_dir / files.MISTAKES, named)
    plot_reliability(data.test_labels, probabilities, run_dir / files.RELIABILITY)
    if search is not None:
        plot_l2_search(search, run_dir / files.L2_SEARCH)

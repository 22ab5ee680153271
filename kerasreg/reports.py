"""The run directory's pictures, drawn from the trained model and its metrics."""

from __future__ import annotations

from pathlib import Path

from kerasreg import run_dir as files
from kerasreg.datasets import BINARY, ImageDataset
from kerasreg.plots import plot_confusion_matrix, plot_l2_search, plot_learning_curves, plot_weight_templates


def write_reports(run_dir: Path, model, data: ImageDataset, history: list[dict], metrics: dict) -> None:
    """Learning curves, confusion matrix, per-class weight templates and --l2 auto's search under plots/."""
    (run_dir / files.PLOTS).mkdir(parents=True, exist_ok=True)
    if history:
        plot_learning_curves(history, run_dir / files.LEARNING_CURVES)
    plot_confusion_matrix(metrics["confusion_matrix"], data.class_names, run_dir / files.CONFUSION_MATRIX)
    kernel = model.get_layer("classifier").get_weights()[0]
    names = [data.class_names[1]] if data.task == BINARY else list(data.class_names)
    plot_weight_templates(kernel, data.input_shape, names, run_dir / files.WEIGHTS)
    if "l2_search" in metrics:
        from kerasreg.l2_search import L2Search

        plot_l2_search(L2Search.from_dict(metrics["l2_search"]), run_dir / files.L2_SEARCH)

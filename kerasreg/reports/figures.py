"""Pictures for the run directory: learning curves, confusion matrix, weight templates, mistakes, the L2 search,
the reliability diagram.

Drawn with Pillow (kerasreg/reports/drawing.py says why not matplotlib).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasreg.reports.drawing import (
    COLORS,
    Series,
    heat_map,
    image_grid,
    line_chart,
    reliability_diagram,
    side_by_side,
)


def plot_learning_curves(history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch, training (solid) beside validation (dashed)."""
    epochs = [row["epoch"] + 1 for row in history]
    panels = []
    for key in ("loss", "accuracy"):
        series = [Series(f"train_{key}", epochs, [row.get(key) for row in history], COLORS[0])]
        validation = [row.get(f"val_{key}") for row in history]
        if any(v is not None for v in validation):
            series.append(Series(f"val_{key}", epochs, validation, COLORS[1], dashed=True))
        panels.append(line_chart(series, title=key, x_label="epoch"))
    side_by_side(panels).save(path)


def plot_confusion_matrix(matrix: list[list[int]], class_names: tuple[str, ...], path: Path) -> None:
    """The test confusion matrix with counts in each cell."""
    heat_map(
        np.asarray(matrix), list(class_names), title="test confusion matrix", x_label="predicted", y_label="true"
    ).save(path)


def template_images(kernel: np.ndarray, input_shape: tuple[int, int, int]) -> list[np.ndarray]:
    """Each output unit's weights as an RGB uint8 image of the input's size.

    One channel: red is positive evidence, blue negative, white none (scaled by
    the largest weight). Colour input: each template's weights scaled into RGB.
    """
    h, w, c = input_shape
    images = []
    for unit in range(kernel.shape[1]):
        template = kernel[:, unit].reshape(h, w, c).astype(np.float64)
        if c == 1:
            v = template[..., 0] / (np.abs(template).max() or 1.0)  # [-1, 1]
            rgb = np.stack([np.minimum(1.0, 1.0 + v), 1.0 - np.abs(v), np.minimum(1.0, 1.0 - v)], axis=-1)
        else:
            lo, hi = template.min(), template.max()
            rgb = (template - lo) / ((hi - lo) or 1.0)
        images.append(np.round(rgb * 255).astype(np.uint8))
    return images


def plot_weight_templates(kernel: np.ndarray, input_shape: tuple[int, int, int], names: list[str], path: Path) -> None:
    """Each output unit's weights drawn as an image of the input's shape (`kernel` is the Dense layer's [H*W*C, units]).

    Red is positive evidence, blue negative (for colour input each channel's weights are scaled into RGB).
    """
    tiles = template_images(kernel, input_shape)
    image_grid(tiles, list(names), title="learned weights per class: red for, blue against").save(path)


def plot_l2_search(search, path: Path) -> None:
    """Validation loss and accuracy along `--l2 auto`'s path (an `L2Search`, log l2), the chosen strength marked."""
    trained = sorted((p for p in search.points if p.val_loss is not None), key=lambda p: p.l2)
    l2 = [p.l2 for p in trained]
    chosen = (search.chosen_l2, f"chosen l2 {search.chosen_l2:g}")
    panels = []
    for key in ("loss", "accuracy"):
        train_label = "training objective (with the penalty)" if key == "loss" else "train_accuracy"
        series = [
            Series(train_label, l2, [getattr(p, key) for p in trained], COLORS[0]),
            Series(f"val_{key}", l2, [getattr(p, "val_" + key) for p in trained], COLORS[1], dashed=True),
        ]
        panels.append(line_chart(series, title=key, x_label="l2 (stronger to the right)", log_x=True, vline=chosen))
    title = f"--l2 auto: refitted on all training data at l2 {search.refit_l2:.3g} (C {search.C:.3g})"
    side_by_side(panels, title).save(path)


MISTAKES_SHOWN = 10  # two rows of five: enough to see a pattern, small enough to read


def worst_mistakes(labels: np.ndarray, probabilities: np.ndarray, n: int = MISTAKES_SHOWN) -> np.ndarray:
    """Indices of the wrongly classified images, most confident first (by the probability of the wrong answer)."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:n]]


def plot_mistakes(
    images: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: tuple[str, ...],
    path: Path,
    files: tuple[str, ...] | None = None,
) -> None:
    """The test images the model got most confidently wrong: true class, answer and its probability over each,
    and (for a folder's images) the file's name, so a user can find it.

    Each image is drawn as the model took it: its own pixels at its own size, scaled up without smoothing.
    """
    shown = worst_mistakes(labels, probabilities)
    tiles = [images[i][..., 0] if images.shape[3] == 1 else images[i] for i in shown]
    captions = []
    for i in shown:
        said = int(probabilities[i].argmax())
        truth = class_names[int(labels[i])]
        named = "" if files is None else f"{Path(files[i]).name[:24]}\n"
        captions.append(f"{named}true: {truth}\nsaid: {class_names[said]} ({probabilities[i, said]:.2f})")
    wrong = int((probabilities.argmax(axis=1) != labels).sum())
    title = f"most confident mistakes ({wrong} of {len(labels)} test images wrong)"
    image_grid(tiles, captions, title=title).save(path)


def plot_reliability(labels: np.ndarray, probabilities: np.ndarray, path: Path) -> None:
    """The reliability diagram of the test probabilities: per confidence bin, the share right and the count."""
    from kerasreg.reports.calibration import ECE_BINS, reliability_bins

    bins = reliability_bins(labels, probabilities)
    title = f"reliability on the test images ({ECE_BINS} bins), ECE {bins.ece:.3f}"
    reliability_diagram(bins.edges, bins.accuracy, bins.counts, title=title).save(path)

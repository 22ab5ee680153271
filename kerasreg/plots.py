"""Pictures for the run directory: learning curves, confusion matrix, weight templates, the L2 search."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works with no display
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch, training beside validation."""
    plt = _pyplot()
    epochs = [row["epoch"] + 1 for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = [row.get(prefix + key) for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, marker="o", label=(prefix or "train_") + key)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion_matrix(matrix: list[list[int]], class_names: tuple[str, ...], path: Path) -> None:
    """The test confusion matrix with counts in each cell."""
    plt = _pyplot()
    cm = np.asarray(matrix)
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 1.0 + 0.6 * k))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = cm.max() / 2 if cm.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > threshold else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
    """Each output unit's weights drawn as an image of the input's shape.

    `kernel` is the Dense layer's [H*W*C, units]; red is positive evidence, blue
    negative (for colour input each channel's weights are scaled into RGB).
    """
    plt = _pyplot()
    units = kernel.shape[1]
    cols = min(units, 5)
    rows = -(-units // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    h, w, c = input_shape
    for u, ax in enumerate(axes.flat):
        ax.axis("off")
        if u >= units:
            continue
        template = kernel[:, u].reshape(h, w, c)
        if c == 1:
            limit = np.abs(template).max() or 1.0
            ax.imshow(template[:, :, 0], cmap="bwr", vmin=-limit, vmax=limit)
        else:
            lo, hi = template.min(), template.max()
            ax.imshow((template - lo) / ((hi - lo) or 1.0))
        ax.set_title(names[u], fontsize=9)
    fig.suptitle("learned weights per class")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_l2_search(search, path: Path) -> None:
    """Validation loss and accuracy along `--l2 auto`'s path (an `L2Search`, log l2), the chosen strength marked."""
    plt = _pyplot()
    trained = [p for p in search.points if p.val_loss is not None]
    l2 = [p.l2 for p in trained]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        train_label = "training objective (with the penalty)" if key == "loss" else "train_accuracy"
        ax.plot(l2, [getattr(p, key) for p in trained], "-", marker="o", label=train_label)
        ax.plot(l2, [getattr(p, "val_" + key) for p in trained], "--", marker="o", label=f"val_{key}")
        ax.axvline(search.chosen_l2, color="grey", linestyle=":", label=f"chosen l2 {search.chosen_l2:g}")
        ax.set_xscale("log")
        ax.set_xlabel("l2 (stronger to the right)")
        ax.set_title(key)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"--l2 auto: refitted on all training data at l2 {search.refit_l2:.3g} (C {search.C:.3g})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


MISTAKES_SHOWN = 10  # two rows of five: enough to see a pattern, small enough to read


def worst_mistakes(labels: np.ndarray, probabilities: np.ndarray, n: int = MISTAKES_SHOWN) -> np.ndarray:
    """Indices of the wrongly classified images, most confident first (by the probability of the wrong answer)."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:n]]


def plot_mistakes(
    images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, class_names: tuple[str, ...], path: Path
) -> None:
    """The test images the model got most confidently wrong: true class, answer and its probability under each.

    Each image is drawn as the model took it: its own pixels at its own size, no smoothing.
    """
    plt = _pyplot()
    shown = worst_mistakes(labels, probabilities)
    cols = min(max(len(shown), 1), 5)
    rows = max(1, -(-len(shown) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.8 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    if len(shown) == 0:
        axes.flat[0].text(0.5, 0.5, f"no mistakes on {len(labels)} test images", ha="center", va="center")
    for ax, i in zip(axes.flat, shown, strict=False):
        image = images[i]
        predicted = int(probabilities[i].argmax())
        if image.shape[2] == 1:
            ax.imshow(image[:, :, 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(image, interpolation="nearest")
        ax.set_title(
            f"true: {class_names[int(labels[i])]}\nsaid: {class_names[predicted]} ({probabilities[i, predicted]:.2f})",
            fontsize=9,
        )
    wrong = int((probabilities.argmax(axis=1) != labels).sum())
    fig.suptitle(f"most confident mistakes ({wrong} of {len(labels)} test images wrong)")
    fig.savefig(path, dpi=100)
    plt.close(fig)

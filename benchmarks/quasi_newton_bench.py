"""Would a quasi-Newton step make `--l2 auto` cheaper at full size? Full-batch L-BFGS along the same path.

    python benchmarks/quasi_newton_bench.py [--data DIR] [--no-readme]

Issue 35 proposed replacing each point's Adam epochs with a full-batch quasi-Newton
method, warm-started along the path. This measures that candidate before building it:
on MNIST 60k and CIFAR-10 50k (benchmarks/full_size_data.py), in one script run,

- kerasreg's `--l2 auto` search as it is (Adam, mini-batches, the plateau schedule and
  the convergence stop): its `l2_search_seconds`, each point's validation loss, its choice;
- scipy's L-BFGS-B (the solver LogisticRegressionCV runs) over the same strengths, the same
  search and validation parts and the same standardised pixels, warm-started from point to
  point, with the loss and its gradient computed by TensorFlow in float32 over the whole
  search part (the pixels as bytes, cast a chunk at a time, as kerasreg's evaluation does),
  at two stopping tolerances (relative decrease of the objective per iteration).

The path's stop rule is kerasreg's (two rises of the validation loss in a row). Writes
benchmarks/results-quasi-newton.json and the table between the bench-quasi-newton markers
of docs/performance.md. ~10 min.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.full_bench import train  # noqa: E402
from benchmarks.full_size_data import cifar_full, mnist_full  # noqa: E402
from benchmarks.measure import add_data_argument, machine, publish  # noqa: E402

RESULTS = Path(__file__).with_name("results-quasi-newton.json")
MARKERS = ("<!-- bench-quasi-newton:begin -->", "<!-- bench-quasi-newton:end -->")
FTOLS = (1e-4, 1e-5)
_CHUNK_VALUES = 2**23  # pixels cast to float32 at a time: 32 MiB


class FullBatch:
    """The search objective (mean cross-entropy + l2 * sum(kernel^2)) and its gradient over a whole part, in chunks."""

    def __init__(self, pixels: np.ndarray, labels: np.ndarray, mean: np.ndarray, std: np.ndarray, classes: int):
        import tensorflow as tf

        self.d, self.classes = pixels.shape[1], classes
        self.gain = tf.constant((1.0 / std).astype(np.float32))
        self.shift = tf.constant((-mean / std).astype(np.float32))
        self.pixels, self.labels = tf.constant(pixels), tf.constant(labels.astype(np.int32))
        self.rows = max(1, _CHUNK_VALUES // self.d)
        self._fn = tf.function(self._loss_and_gradient, autograph=False)

    def _loss_and_gradient(self, kernel, bias, l2):
        import tensorflow as tf

        # The standardisation folded into the weights, as kerasreg's evaluation does: the pixels are read once.
        folded = kernel * self.gain[:, None]
        folded_bias = bias + tf.reduce_sum(kernel * self.shift[:, None], axis=0)
        n = int(self.labels.shape[0])
        total, g_kernel, g_bias = tf.constant(0.0), tf.zeros([self.d, self.classes]), tf.zeros([self.classes])
        for start in range(0, n, self.rows):
            x = tf.cast(self.pixels[start : start + self.rows], tf.float32)
            y = self.labels[start : start + self.rows]
            logits = tf.matmul(x, folded) + folded_bias
            total += tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
            residual = tf.nn.softmax(logits) - tf.one_hot(y, self.classes)
            g_kernel += tf.transpose(tf.matmul(residual, x, transpose_a=True))  # the faster form on the CPU
            g_bias += tf.reduce_sum(residual, axis=0)
        g_kernel, g_bias = g_kernel / n, g_bias / n
        gradient = self.gain[:, None] * g_kernel + self.shift[:, None] * g_bias[None, :] + 2.0 * l2 * kernel
        return total / n + l2 * tf.reduce_sum(kernel * kernel), gradient, g_bias

    def __call__(self, theta: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
        """(objective, gradient) at the flat weights `theta` (kernel then bias), as scipy wants them."""
        kernel, bias = self.unflatten(theta)
        loss, g_kernel, g_bias = self._fn(kernel, bias, np.float32(l2))
        return float(loss), np.concatenate([g_kernel.numpy().ravel(), g_bias.numpy()]).astype(np.float64)

    def unflatten(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(kernel [D, C], bias [C]) in float32."""
        cut = self.d * self.classes
        return theta[:cut].reshape(self.d, self.classes).astype(np.float32), theta[cut:].astype(np.float32)


def validation_loss(objective: FullBatch, theta: np.ndarray, pixels: np.ndarray, labels: np.ndarray) -> float:
    """The validation part's mean cross-entropy at `theta`."""
    kernel, bias = objective.unflatten(theta)
    x = pixels.astype(np.float32) * objective.gain.numpy() + objective.shift.numpy()
    logits = x @ kernel + bias
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def lbfgs_path(objective: FullBatch, strengths: list[float], val: tuple, ftol: float) -> dict:
    """L-BFGS-B along `strengths` (strong to weak), warm-started, stopped as kerasreg's path stops."""
    from scipy.optimize import minimize

    from kerasreg.l2_search.grid import RISES_TO_STOP, trailing_rises

    theta = np.zeros(objective.d * objective.classes + objective.classes)
    objective(theta, strengths[0])  # the trace, outside the timing (kerasreg's search times its own)
    points, started = [], time.perf_counter()
    for l2 in strengths:
        fit = minimize(objective, theta, args=(l2,), jac=True, method="L-BFGS-B",
                       options={"maxiter": 1000, "ftol": ftol, "gtol": 1e-9, "maxls": 50})  # fmt: skip
        theta = fit.x
        points.append({"l2": l2, "iterations": int(fit.nit), "evaluations": int(fit.nfev),
                       "val_loss": validation_loss(objective, theta, *val)})  # fmt: skip
        if trailing_rises([p["val_loss"] for p in points]) >= RISES_TO_STOP:
            break
    best = min(points, key=lambda p: p["val_loss"])
    seconds = time.perf_counter() - started
    return {"ftol": ftol, "seconds": seconds, "points": points, "chosen_l2": best["l2"]}


def one_dataset(dataset: str, build, data: Path, work: Path) -> dict:
    """kerasreg's search, then L-BFGS-B along the same strengths on the same parts; the figures."""
    from kerasreg.config import TrainConfig
    from kerasreg.datasets import load_dataset
    from kerasreg.datasets.views import split_validation
    from kerasreg.model import pixel_statistics

    folder = work / dataset
    build(data, folder)
    ours = train(dataset, folder, work / "auto")
    search = ours["l2_search"]
    trained = [p for p in search["points"] if p["stop_reason"] != "skipped"]
    print(f"{dataset}: kerasreg's search {ours['timings']['l2_search_seconds']:.1f} s", flush=True)
    loaded = load_dataset(dataset, "files", folder)
    defaults = TrainConfig()
    labels = loaded.train_labels
    parts = split_validation(np.arange(len(labels)), labels, defaults.val_split, defaults.seed)
    (search_part, _), (val_part, _) = parts
    pixels = loaded.train_images.reshape(len(labels), -1)
    mean, variance = pixel_statistics(loaded.train_images)
    std = np.sqrt(variance).reshape(-1) * 255.0  # pixel_statistics works on [0, 1]; the bytes are 0-255
    objective = FullBatch(pixels[search_part], labels[search_part], mean.reshape(-1) * 255.0, std, 10)
    val = (pixels[val_part], labels[val_part])
    strengths = [p["l2"] for p in trained]
    theirs = []
    for ftol in FTOLS:
        run = lbfgs_path(objective, strengths, val, ftol)
        print(f"  L-BFGS-B ftol {ftol:g}: {run['seconds']:.1f} s, chose l2 {run['chosen_l2']:g}", flush=True)
        theirs.append(run)
    del objective  # its pixels (a tensor copy of the search part) go before the next dataset's are made
    return {
        "images": len(labels),
        "kerasreg": {
            "seconds": ours["timings"]["l2_search_seconds"],
            "epochs": sum(p["epochs"] for p in trained),
            "chosen_l2": search["chosen_l2"],
            "points": [{"l2": p["l2"], "epochs": p["epochs"], "val_loss": p["val_loss"]} for p in trained],
        },
        "lbfgs": theirs,
    }


def markdown(results: dict) -> str:
    """The page's table: each path's time, passes over the data, choice and best validation loss."""
    lines = [
        f"Measured by `make bench-full` on {results['date']}: {results['machine']}. The search part of the "
        "default split (90%), the same strengths (those kerasreg's path trained), the same stop rule.",
        "",
        "| data | path | seconds | passes over the data | chosen l2 | lowest validation loss | ratio to Adam |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, name in (("mnist", "MNIST 60k"), ("cifar10", "CIFAR-10 50k")):
        r = results[key]
        ours = r["kerasreg"]
        best = min(p["val_loss"] for p in ours["points"])
        lines.append(f"| {name} | kerasreg (Adam, mini-batches) | {ours['seconds']:.1f} | {ours['epochs']} epochs "
                     f"| {ours['chosen_l2']:g} | {best:.4f} | 1 |")  # fmt: skip
        for run in r["lbfgs"]:
            passes = sum(p["evaluations"] for p in run["points"])
            best = min(p["val_loss"] for p in run["points"])
            ratio = run["seconds"] / ours["seconds"]
            lines.append(f"| {name} | L-BFGS-B, full batch, ftol {run['ftol']:g} | {run['seconds']:.1f} | {passes} "
                         f"evaluations | {run['chosen_l2']:g} | {best:.4f} | {ratio:.2f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    """Both datasets; results-quasi-newton.json and the page's table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--no-readme", action="store_true", help="write results-quasi-newton.json only")
    args = parser.parse_args()
    for needed in ("mnist/t10k-images-idx3-ubyte.gz", "cifar10-sample/cifar-10-batches-py/test_batch"):
        if not (args.data / needed).is_file():
            sys.exit(f"no {needed} in {args.data}; pass --data DIR or set KERASREG_TEST_DATA")
    results = {"date": dt.date.today().isoformat(), "machine": machine()}
    with tempfile.TemporaryDirectory() as work:
        for key, build in (("mnist", mnist_full), ("cifar10", cifar_full)):
            results[key] = one_dataset(key, build, args.data, Path(work))
    return publish(RESULTS, results, markdown(results), MARKERS, args.no_readme)


if __name__ == "__main__":
    sys.exit(main())

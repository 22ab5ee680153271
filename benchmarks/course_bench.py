"""The course's 2,000 iterations (`--preset course` on catvnoncat) beside the notebook's own numpy loop.

    python benchmarks/course_bench.py [--data DIR] [--rounds 3]

Per round: the notebook's loop in numpy float64 (its arithmetic, as the course writes
it), then in one process kerasreg's preset three ways: as it runs (full-batch descent
through the images' Gram matrix, kerasreg/training/gram_descent.py), the usual compiled
step in chunks of epochs (what any other optimizer gets),
and one compiled call per epoch (what a run with a schedule or a stop gets). The last two
are forced by patching the choices (gram_descent.eligible, fit.epochs_per_call): the
same options, the same arithmetic. kerasreg's figure is `train_seconds`: the whole fit, tracing, history and
backups included, TensorFlow's import not. The target compares the first with the
numpy loop; the others say what each part buys.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import (  # noqa: E402
    PYTHON,
    Target,
    add_data_argument,
    median,
    run_json,
    targets_table,
    write_readme_section,
)

BEGIN, END = "<!-- course-bench:begin -->", "<!-- course-bench:end -->"

ITERATIONS = 2000
VARIANTS = ("gram", "chunked", "per_epoch")

_KERASREG = """
import contextlib, io, json, sys
from kerasreg.config import TrainConfig
from kerasreg.datasets import load_dataset
from kerasreg.training import fit, gram_descent
from kerasreg.pipeline import train_and_evaluate
data = load_dataset("catvnoncat", "files", sys.argv[1])
eligible, per_call, out = gram_descent.eligible, fit.epochs_per_call, {}
for name in json.loads(sys.argv[3]):
    gram_descent.eligible = eligible if name == "gram" else (lambda *args: False)
    fit.epochs_per_call = (lambda *args: 1) if name == "per_epoch" else per_call
    config = TrainConfig.resolve(preset="course", dataset="catvnoncat")
    with contextlib.redirect_stdout(io.StringIO()):
        metrics = train_and_evaluate(config, f"{sys.argv[2]}/{name}", datasets=data)
    t = metrics["timings"]
    out[name] = {"train_seconds": metrics["train_seconds"], "epochs_seconds": t["epochs_seconds"],
                 "steady_steps_seconds": t["compiled_call_seconds"] * 2000,  # the median epoch's share of its call
                 "descent": t["descent"], "accuracy": metrics["accuracy"], "train_accuracy": metrics["train_accuracy"]}
print(json.dumps(out))
"""


def notebook_loop(directory: Path) -> tuple[float, float]:
    """The notebook's 2,000 iterations in numpy float64: (seconds, the last cost)."""
    import h5py

    with h5py.File(directory / "train_catvnoncat.h5") as f:
        x, y = np.array(f["train_set_x"]), np.array(f["train_set_y"])
    x = x.reshape(len(x), -1).T / 255.0  # the notebook's flatten-and-scale
    y = y.reshape(1, -1)
    w, b, m = np.zeros((x.shape[0], 1)), 0.0, x.shape[1]
    started = time.perf_counter()
    for _ in range(ITERATIONS):
        a = 1 / (1 + np.exp(-(w.T @ x + b)))
        cost = -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)) / m
        dw, db = x @ (a - y).T / m, np.sum(a - y) / m
        w, b = w - 0.005 * dw, b - 0.005 * db
    return time.perf_counter() - started, float(cost)


def run(data: Path, rounds: int, work: Path) -> dict:
    """Every round's figures and the targets."""
    directory = data / "catvnoncat"
    per_round = []
    for r in range(rounds):
        numpy_seconds, _ = notebook_loop(directory)
        _, out = run_json([PYTHON, "-c", _KERASREG, str(directory), str(work / f"course-{r}"), json.dumps(VARIANTS)])
        ours = json.loads(out.strip().splitlines()[-1])
        per_round.append({"numpy_seconds": numpy_seconds, **ours})
        print(f"  round {r + 1}: numpy {numpy_seconds:.2f} s; kerasreg " + ", ".join(
            f"{k} {v['train_seconds']:.2f} s" for k, v in ours.items()), flush=True)  # fmt: skip
    numpy_seconds = median(r["numpy_seconds"] for r in per_round)
    baseline = f"the notebook's numpy float64 loop {numpy_seconds:.2f} s"

    def figure(name: str) -> tuple[float, float]:
        return median(r[name]["train_seconds"] for r in per_round), median(
            r[name]["train_seconds"] / r["numpy_seconds"] for r in per_round
        )

    gram, gram_ratio = figure("gram")
    steady = median(r["gram"]["steady_steps_seconds"] for r in per_round)
    steady_ratio = median(r["gram"]["steady_steps_seconds"] / r["numpy_seconds"] for r in per_round)
    chunked, chunked_ratio = figure("chunked")
    per_epoch, per_epoch_ratio = figure("per_epoch")
    targets = [
        Target(
            f"`--preset course`: the course's {ITERATIONS:,} iterations on catvnoncat (the fit, tracing included)",
            f"{gram:.2f} s",
            baseline,
            gram_ratio,
            "<= 1/10 (aim 1/20)",
            gram_ratio <= 1 / 10,
        ),
        Target(
            f"its {ITERATIONS:,} steps alone: the steady compiled calls, tracing and set-up aside",
            f"{steady:.3f} s",
            baseline,
            steady_ratio,
            "",
            None,
        ),
        Target(
            "the same steps the usual compiled way, in chunks of epochs (no Gram matrix)",
            f"{chunked:.2f} s",
            baseline,
            chunked_ratio,
            "",
            None,
        ),
        Target(
            "the same steps one compiled call per epoch (before chunks)",
            f"{per_epoch:.2f} s",
            baseline,
            per_epoch_ratio,
            "",
            None,
        ),
    ]
    return {"targets": [t.row() for t in targets], "rounds": per_round}


def markdown(results: dict, date: str) -> str:
    """The README's table of the course benchmark."""
    rounds = results["rounds"]
    numpy_seconds = ", ".join(f"{r['numpy_seconds']:.2f}" for r in rounds)
    ours = ", ".join(f"{r['gram']['train_seconds']:.2f}" for r in rounds)
    lines = [
        f"Measured by `make bench` on {date} (medians of {len(rounds)} rounds; the numpy loop took {numpy_seconds} s, "
        f"the preset {ours} s):",
        "",
        *targets_table(results["targets"]),
    ]
    return "\n".join(lines)


def main() -> int:
    """Run the course benchmark, print its JSON; with --readme write its table into the README too."""
    import datetime as dt
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--rounds", type=int, default=3, help="repeats; medians are reported (default: 3)")
    parser.add_argument("--readme", action="store_true", help="write the table between the README's markers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        results = run(args.data, args.rounds, Path(work))
    print(json.dumps(results, indent=2))
    if args.readme:
        write_readme_section(BEGIN, END, markdown(results, dt.date.today().isoformat()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train a logistic-regression classifier and write a run directory.

    python -m kerasreg.train --dataset digits --out runs/digits
    python -m kerasreg.train --dataset mnist --epochs 10 --out runs/mnist
    python -m kerasreg.train --dataset cat --data-dir ~/data --balance class_weight

The run directory's files are listed in kerasreg/run_dir.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from kerasreg import __version__
from kerasreg import run_dir as files
from kerasreg.cli import run_cli
from kerasreg.config import (
    DEFAULT_LEARNING_RATES,
    NORMALIZE_CHOICES,
    OPTIMIZER_CHOICES,
    TrainConfig,
)
from kerasreg.datasets import DATASET_CHOICES, SOURCE_CHOICES, ImageDataset, load_dataset
from kerasreg.datasets.views import BALANCE_CHOICES
from kerasreg.errors import KerasregError
from kerasreg.strategy import COLLECTIVE_CHOICES, even_global_batch

_DEFAULTS = TrainConfig()
_EPILOG = """\
examples:
  python -m kerasreg.train --dataset digits --out runs/digits
  python -m kerasreg.train --dataset mnist --data-dir ~/data/mnist --source files --epochs 10
  python -m kerasreg.train --dataset cat --data-dir ~/data --balance undersample

datasets: mnist and cifar10 come from tensorflow-datasets or from the distribution
files in --data-dir (MNIST *-idx?-ubyte[.gz]; CIFAR-10 cifar-10-batches-py/ or
cifar-10-python.tar.gz); cat is CIFAR-10's cat vs the other nine; catvnoncat needs
the course's train_catvnoncat.h5 and test_catvnoncat.h5; digits is bundled offline.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m kerasreg.train`."""
    p = argparse.ArgumentParser(
        prog="python -m kerasreg.train",
        description="Train a logistic-regression classifier (one Dense layer) on raw image pixels.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = _DEFAULTS
    p.add_argument(
        "--dataset", choices=DATASET_CHOICES, default=d.dataset, help=f"what to learn (default: {d.dataset})"
    )
    p.add_argument(
        "--source",
        choices=SOURCE_CHOICES,
        default=d.source,
        help=f"auto: the files in --data-dir when they are there, else tensorflow-datasets (default: {d.source})",
    )
    p.add_argument(
        "--data-dir",
        default=d.data_dir,
        help="folder holding the dataset files; for tfds, its data_dir (default: tfds's own)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=d.epochs,
        help=f"most epochs to train; early stopping usually ends sooner (default: {d.epochs})",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help=f"GLOBAL batch size; each of R replicas gets batch-size/R (default: {d.batch_size})",
    )
    p.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="step size (default: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LEARNING_RATES.items()) + ")",
    )
    p.add_argument("--optimizer", choices=OPTIMIZER_CHOICES, default=d.optimizer, help=f"(default: {d.optimizer})")
    p.add_argument(
        "--l2", type=float, default=d.l2, help=f"L2 penalty on the weights; 0 turns it off (default: {d.l2:g})"
    )
    p.add_argument(
        "--normalize",
        choices=NORMALIZE_CHOICES,
        default=d.normalize,
        help=f"standardise each pixel with training-split statistics, inside the model (default: {d.normalize})",
    )
    p.add_argument(
        "--seed", type=int, default=d.seed, help=f"seed for splits, shuffling and weights (default: {d.seed})"
    )
    p.add_argument(
        "--balance",
        choices=BALANCE_CHOICES,
        default=d.balance,
        help=f"for imbalanced tasks: weigh classes equally, drop majority examples, or nothing (default: {d.balance})",
    )
    p.add_argument(
        "--val-split",
        type=float,
        default=d.val_split,
        help="fraction of training data held out for validation and early stopping; 0 trains on "
        f"all of it with no early stopping (default: {d.val_split})",
    )
    p.add_argument(
        "--patience",
        type=int,
        default=d.patience,
        help=f"epochs without a better validation loss before stopping (default: {d.patience})",
    )
    p.add_argument(
        "--out",
        default=None,
        help="run directory to write; rerunning into an unfinished one resumes it "
        "(default: runs/<dataset>-<timestamp>)",
    )
    resume = p.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume",
        action="store_true",
        help="continue an unfinished run in --out from its last finished epoch (the default when a backup exists)",
    )
    resume.add_argument(
        "--restart", action="store_true", help="discard an unfinished run's backup in --out and start over"
    )
    g = p.add_argument_group("distribution (see README: Training on GPUs and clusters)")
    g.add_argument(
        "--devices", default=None, help="GPU indices for MirroredStrategy, e.g. 0,2 (default: every visible GPU)"
    )
    g.add_argument(
        "--collective",
        choices=COLLECTIVE_CHOICES,
        default=d.collective,
        help=f"all-reduce of MultiWorkerMirroredStrategy when TF_CONFIG names a cluster (default: {d.collective})",
    )
    g.add_argument(
        "--mixed-precision",
        action="store_true",
        help="mixed_float16 (for GPUs); the output layer stays float32 (default: off)",
    )
    p.add_argument(
        "--backup-interval",
        type=float,
        default=d.backup_interval,
        help="seconds between backups of the training state, which a rerun resumes from; one is always "
        f"made at the end; 0 backs up after every epoch (default: {d.backup_interval:g})",
    )
    return p


def library_versions() -> dict:
    """Versions of the libraries that shape a run, for config.json."""
    import keras
    import numpy
    import tensorflow as tf

    return {
        "kerasreg": __version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
    }


def _seed_everything(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)
    pass  # tf.config.experimental.enable_op_determinism()


def _fit_batch_to_replicas(config: TrainConfig, replicas: int) -> TrainConfig:
    """The config with a global batch that splits evenly across replicas, saying so when it changed."""
    fitted = even_global_batch(config.batch_size, replicas)
    if fitted == config.batch_size:
        return config
    print(
        f"warning: global batch {config.batch_size} does not divide evenly across {replicas} replicas; "
        f"training with {fitted} ({fitted // replicas} per replica).",
        file=sys.stderr,
        flush=True,
    )
    return dataclasses.replace(config, batch_size=fitted)


def _write_config(path: Path, config: TrainConfig, setup) -> None:
    """config.json: the options as given, the dataset's facts, the strategy, the batch in force, versions."""
    data, split, choice = setup.data, setup.split, setup.choice
    files.write_json(
        path,
        {
            "options": config.to_dict(),
            "dataset": {
                "name": data.name,
                "task": data.task,
                "source": data.source,
                "class_names": list(data.class_names),
                "input_shape": list(data.input_shape),
                "n_train": len(split.train_labels),
                "n_val": 0 if split.val is None else len(split.val[1]),
                "n_test": len(data.test_labels),
            },
            "strategy": choice.describe(),
            "global_batch_size": setup.config.batch_size,
            "per_replica_batch_size": setup.config.batch_size // choice.replicas,
            "versions": library_versions(),
        },
    )


def _write_results(run_dir: Path, model, data: ImageDataset, history: list[dict], metrics: dict, seed: int) -> None:
    """The chief's outputs: model, test sample, plots, then metrics.json, whose presence marks a finished run."""
    from kerasreg.reports import write_reports

    started = time.perf_counter()
    model.save(run_dir / files.MODEL)
    files.write_test_sample(run_dir / files.TEST_SAMPLE, data.test_images, data.test_labels, seed)
    write_reports(run_dir, model, data, history, metrics)
    metrics.setdefault("timings", {})["write_run_dir_seconds"] = round(time.perf_counter() - started, 4)
    files.write_json(run_dir / files.METRICS, metrics)
    shutil.rmtree(run_dir / files.BACKUP, ignore_errors=True)


def train_and_evaluate(
    config: TrainConfig, run_dir: Path | str, *, strategy=None, datasets: ImageDataset | None = None
) -> dict:
    """Train as `config` says, write `run_dir`, and return the test metrics.

    The strategy comes from `choose_strategy` (TF_CONFIG, visible GPUs,
    config.devices); only the chief writes `run_dir`. Rerunning after a crash
    resumes from the last backup unless config.restart. metrics.json's `timings`
    says where the time went.

    Args:
        strategy: a tf.distribute strategy to use instead of `choose_strategy()`'s.
        datasets: an `ImageDataset` to train on instead of loading `config.dataset`.
    """
    from kerasreg.evaluation import compute_metrics, summary_lines
    from kerasreg.model import predict_probabilities
    from kerasreg.strategy import choose_strategy, wrap_strategy
    from kerasreg.training import TrainingSetup, fit, make_model, prepare_training_data, weights_digest

    run_dir = Path(run_dir)
    clock = _PhaseClock()
    # First: a multi-worker strategy must exist before TensorFlow runs any op.
    if strategy is not None:
        choice = wrap_strategy(strategy)
    else:
        choice = choose_strategy(config.devices, config.collective, tf_config=os.environ.get("TF_CONFIG"))
    clock.lap("start_tensorflow_seconds")
    work_dir = run_dir if choice.is_chief else files.worker_dir(run_dir, choice.worker_index)
    files.prepare_run_dir(work_dir, config)
    data = datasets if datasets is not None else load_dataset(config.dataset, config.source, config.data_dir)
    clock.lap("load_data_seconds")
    _seed_everything(config.seed)
    split = prepare_training_data(data, config)
    if split.val is None:
        print("val-split 0: training on all training data; early stopping is off.", flush=True)
    # config.json keeps the options as given; the setup carries the batch in force.
    setup = TrainingSetup(data, split, _fit_batch_to_replicas(config, choice.replicas), choice)
    _write_config(work_dir / files.CONFIG, config, setup)
    print(
        f"{data.name}: {len(split.train_labels)} training images {data.input_shape}, "
        f"{data.num_classes} classes, strategy {choice.kind} x{choice.replicas}",
        flush=True,
    )
    model = make_model(setup)
    clock.lap("build_model_seconds")
    history, loop_timings = fit(model, setup, work_dir)
    train_seconds = clock.lap("train_seconds")
    probabilities = predict_probabilities(model, data.test_images, data.task)
    metrics = compute_metrics(data.test_labels, probabilities, data.task, split.train_labels)
    clock.lap("evaluate_seconds")
    metrics.update(epochs_trained=len(history), train_seconds=round(train_seconds, 3))
    print(f"weights sha256 {weights_digest(model)}", flush=True)
    if choice.is_chief:
        metrics["timings"] = {**clock.laps, **{k: round(v, 4) for k, v in loop_timings.items() if v is not None}}
        _write_results(run_dir, model, data, history, metrics, config.seed)
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    for line in summary_lines(metrics, data.class_names):
        print(line)
    if choice.is_chief:
        print(f"run directory: {run_dir}")
    return metrics


class _PhaseClock:
    """Seconds spent in each phase of a run, for metrics.json's `timings`."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> float:
        """Record the time since the previous lap under `name`; return it."""
        now = time.perf_counter()
        elapsed, self._last = now - self._last, now
        self.laps[name] = round(elapsed, 4)
        return elapsed


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Turn parsed arguments into a validated TrainConfig."""
    return TrainConfig(
        dataset=args.dataset,
        source=args.source,
        data_dir=args.data_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        optimizer=args.optimizer,
        l2=args.l2,
        normalize=args.normalize,
        seed=args.seed,
        balance=args.balance,
        val_split=args.val_split,
        patience=args.patience,
        out=args.out,
        devices=args.devices,
        collective=args.collective,
        mixed_precision=args.mixed_precision,
        backup_interval=args.backup_interval,
        restart=args.restart,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse, validate, train; user mistakes exit 2 with one line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except KerasregError as e:
        parser.error(str(e))
    out = Path(config.out) if config.out else Path("runs") / f"{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: hide its C++ banner
    hint = f"the last finished epoch is backed up in {out}; rerun the same command to resume"
    return run_cli(parser.prog, lambda: train_and_evaluate(config, out), interrupted_hint=hint)


if __name__ == "__main__":
    sys.exit(main())

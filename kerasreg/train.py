"""Train a logistic-regression classifier and write a run directory.

    python -m kerasreg.train --dataset digits --out runs/digits
    python -m kerasreg.train --dataset mnist --epochs 10 --out runs/mnist
    python -m kerasreg.train --dataset cat --data-dir ~/data --balance class_weight

The run directory's files are listed in kerasreg/run_dir.py.
"""

from __future__ import annotations

if __name__ == "__main__":  # before the imports below, which need the train extra
    from kerasreg.extras import require_extra

    require_extra("train", "python -m kerasreg.train")

import argparse
import dataclasses
import gc
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from kerasreg import __version__
from kerasreg import run_dir as files
from kerasreg.cli import run_cli
from kerasreg.config import L2_AUTO, TrainConfig
from kerasreg.datasets import ImageDataset, load_dataset
from kerasreg.epoch_driver import Diverged
from kerasreg.errors import KerasregError, RunDirError
from kerasreg.resume import discard_state, prepare_run_dir, worker_dir
from kerasreg.run_lock import RunLock
from kerasreg.strategy import even_global_batch

_EPILOG = """\
examples:
  python -m kerasreg.train --dataset digits --out runs/digits
  python -m kerasreg.train --dataset mnist --data-dir ~/data/mnist --source files --epochs 10
  python -m kerasreg.train --dataset cat --data-dir ~/data --balance undersample

datasets: mnist and cifar10 come from tensorflow-datasets or from the distribution
files in --data-dir (MNIST *-idx?-ubyte[.gz]; CIFAR-10 cifar-10-batches-py/ or
cifar-10-python.tar.gz); cat is CIFAR-10's cat vs the other nine; catvnoncat needs
the course's train_catvnoncat.h5 and test_catvnoncat.h5; digits is bundled offline.

interrupted runs: rerun the same command and it resumes after the last backup; the
run directory is checked first (config.json, history.csv and the backup must agree,
and with the options given), and one process at a time may train into an --out.
diverged runs: when the training objective becomes nan or infinite (too large a
--learning-rate or --l2), the run stops with an error and keeps no backup, so a
rerun with a smaller value starts clean.
"""


_FLAG_TYPES = {"int": int, "float": float, "str": str}


def add_config_flags(parser: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """A flag for every TrainConfig field, with its help and default from the field.

    `defaults` maps a field to (its default in this command, why, shown in --help).
    """
    defaults = defaults or {}
    groups: dict[str, argparse._ArgumentGroup] = {}
    for field in dataclasses.fields(TrainConfig):
        meta = field.metadata
        group = groups.setdefault(meta["group"], parser.add_argument_group(meta["group"])) if meta["group"] else parser
        flag = "--" + field.name.replace("_", "-")
        default = field.default
        shown = meta["shown"] if meta["shown"] is not None else field.default
        if isinstance(shown, float):
            shown = f"{shown:g}"  # 10 and 1e-04, not 10.0 and 0.0001
        if field.name in defaults:
            default, why = defaults[field.name]
            shown = f"{default}: {why}"
        help_text = f"{meta['help']} (default: {shown})"
        if field.type == "bool":
            group.add_argument(flag, action="store_true", help=help_text)
        else:
            kind = meta["parse"] or _FLAG_TYPES[field.type.split(" |")[0]]
            group.add_argument(flag, type=kind, default=default, choices=meta["choices"], help=help_text)


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m kerasreg.train`: one flag per TrainConfig field, plus where the run goes."""
    p = argparse.ArgumentParser(
        prog="python -m kerasreg.train",
        description="Train a logistic-regression classifier (one Dense layer) on raw image pixels.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(p)
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
        help="require an unfinished run in --out and continue it; fail if there is none (default: resume one if "
        "it is there, else start)",
    )
    resume.add_argument(
        "--restart", action="store_true", help="discard an unfinished run's backup in --out and start over"
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


def _fit_batch_to_replicas(config: TrainConfig, n_train: int, replicas: int) -> TrainConfig:
    """The config with the batch resolved for `n_train` images, split evenly across replicas (saying so when not)."""
    batch = config.resolved_batch_size(n_train)
    fitted = even_global_batch(batch, replicas)
    if fitted == batch:
        return dataclasses.replace(config, batch_size=batch)
    print(
        f"warning: global batch {batch} does not divide evenly across {replicas} replicas; "
        f"training with {fitted} ({fitted // replicas} per replica).",
        file=sys.stderr,
        flush=True,
    )
    return dataclasses.replace(config, batch_size=fitted)


def _write_config(path: Path, config: TrainConfig, setup, search=None) -> None:
    """config.json: the options as given, the dataset's facts, the strategy, the batch in force, versions.

    With --l2 auto it is written again once the search is done, with the search (`l2_search`).
    """
    data, split, choice = setup.data, setup.split, setup.choice
    record = {
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
    }
    if search is not None:
        record["l2_search"] = search.to_dict()
    files.write_json(path, record)


def _write_results(
    run_dir: Path, model, data: ImageDataset, history: list[dict], metrics: dict, seed: int, probabilities
) -> None:
    """The chief's outputs: model, test sample, plots, then metrics.json, whose presence marks a finished run."""
    from kerasreg.reports import write_reports

    started = time.perf_counter()
    model.save(run_dir / files.MODEL)
    files.write_sample(run_dir / files.TEST_SAMPLE, data.test_images, data.test_labels, seed)
    files.write_sample(run_dir / files.TRAIN_SAMPLE, data.train_images, data.train_labels, seed)
    write_reports(run_dir, model, data, history, metrics, probabilities)
    # On disk before metrics.json, whose presence marks the run finished, is.
    files.sync_files([run_dir / files.MODEL, *sorted((run_dir / files.PLOTS).glob("*.png"))])
    metrics.setdefault("timings", {})["write_run_dir_seconds"] = round(time.perf_counter() - started, 4)
    files.write_json(run_dir / files.METRICS, metrics)
    shutil.rmtree(run_dir / files.BACKUP, ignore_errors=True)


def train_and_evaluate(
    config: TrainConfig,
    run_dir: Path | str,
    *,
    strategy=None,
    datasets: ImageDataset | None = None,
    resume: str = "auto",
) -> dict:
    """Train as `config` says, write `run_dir`, and return the test metrics.

    The strategy comes from `choose_strategy` (TF_CONFIG, visible GPUs,
    config.devices); only the chief writes `run_dir`. metrics.json's `timings`
    says where the time went.

    Args:
        strategy: a tf.distribute strategy to use instead of `choose_strategy()`'s.
        datasets: an `ImageDataset` to train on instead of loading `config.dataset`.
        resume: "auto" continues an unfinished run in `run_dir` (after a crash) or
            starts one; "required" fails when there is none to continue;
            "restart" discards it.
    """
    from kerasreg.strategy import choose_strategy, wrap_strategy

    run_dir = Path(run_dir)
    clock = _PhaseClock()
    # First: a multi-worker strategy must exist before TensorFlow runs any op.
    if strategy is not None:
        choice = wrap_strategy(strategy)
    else:
        choice = choose_strategy(config.devices, config.collective, tf_config=os.environ.get("TF_CONFIG"))
    clock.lap("start_tensorflow_seconds")
    work_dir = run_dir if choice.is_chief else worker_dir(run_dir, choice.worker_index)
    if work_dir.exists() and not work_dir.is_dir():
        raise RunDirError(f"--out {work_dir} is a file; expected a directory.")
    with RunLock(work_dir):  # one process per run directory
        prepare_run_dir(work_dir, config, resume)
        try:
            return _train(config, run_dir, work_dir, choice, clock, datasets)
        except Diverged as e:
            discard_state(work_dir)
            raise KerasregError(
                f"{e}: the learning rate ({config.resolved_learning_rate:g}) or the L2 strength ({config.l2}) is too "
                "large for this data; lower it and rerun (nothing of this run is kept, so the rerun starts clean)."
            ) from None


def _train(config: TrainConfig, run_dir: Path, work_dir: Path, choice, clock, datasets) -> dict:
    """train_and_evaluate's work, once the run directory is locked and checked."""
    from kerasreg.evaluation import compute_metrics, summary_lines
    from kerasreg.model import predict_probabilities, set_affine
    from kerasreg.training import (
        TrainingSetup,
        fit,
        make_model,
        prepare_training_data,
        recorded_search,
        weights_digest,
    )

    data = datasets if datasets is not None else load_dataset(config.dataset, config.source, config.data_dir)
    clock.lap("load_data_seconds")
    _seed_everything(config.seed)
    split = prepare_training_data(data, config)
    # config.json keeps the options as given; the setup carries the batch in force.
    setup = TrainingSetup(data, split, _fit_batch_to_replicas(config, len(split.train_labels), choice.replicas), choice)
    # An unfinished refit resumes with the search it was started with (config.json holds it).
    search = recorded_search(work_dir) if config.l2 == L2_AUTO else None
    _write_config(work_dir / files.CONFIG, config, setup, search)
    print(
        f"{data.name}: {len(split.train_labels)} training images {data.input_shape}, "
        f"{data.num_classes} classes, strategy {choice.kind} x{choice.replicas}",
        flush=True,
    )
    if config.l2 == L2_AUTO:
        setup, search = _choose_l2(config, setup, work_dir, search)
        clock.lap("l2_search_seconds")
        _seed_everything(config.seed)  # the refit draws the same whatever the search drew
    elif split.val is None:
        print("val-split 0: training on all training data; early stopping is off.", flush=True)
    model = make_model(setup)
    if search is not None and search.start is not None:
        set_affine(model, *search.start)  # from the search's best model, as LogisticRegressionCV's refit starts
    clock.lap("build_model_seconds")
    history, loop_timings, stop = fit(model, setup, work_dir)
    train_seconds = clock.lap("train_seconds") + clock.laps.get("l2_search_seconds", 0.0)
    probabilities = predict_probabilities(model, data.test_images, data.task)
    metrics = compute_metrics(data.test_labels, probabilities, data.task, setup.split.train_labels)
    clock.lap("evaluate_seconds")
    metrics.update(epochs_trained=len(history), train_seconds=round(train_seconds, 3), **stop)
    if search is not None:
        metrics["l2_search"] = search.to_dict()
    print(f"weights sha256 {weights_digest(model)}", flush=True)
    if choice.is_chief:
        metrics["timings"] = {**clock.laps, **{k: round(v, 4) for k, v in loop_timings.items() if v is not None}}
        _write_results(run_dir, model, data, history, metrics, config.seed, probabilities)
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    for line in summary_lines(metrics, data.class_names):
        print(line)
    if choice.is_chief:
        print(f"run directory: {run_dir}")
    return metrics


def _choose_l2(config: TrainConfig, setup, work_dir: Path, recorded) -> tuple:
    """--l2 auto: the search (or the `recorded` one a rerun resumes with), then the refit's setup and the search."""
    from kerasreg.training import refit_setup, run_search

    search = recorded
    if search is None:
        search = run_search(setup, work_dir)
        # The search's model, traced function and features sit in reference cycles: free
        # them now, before the refit makes its own features.
        gc.collect()
        _write_config(work_dir / files.CONFIG, config, setup, search)
    print(
        f"l2 auto: chose l2 {search.chosen_l2:g} (C {search.C:.3g}) on the validation split in "
        f"{search.seconds:.1f} s; refitting on all {search.n_all} training images at l2 {search.refit_l2:.4g}",
        flush=True,
    )
    return refit_setup(setup, search.refit_l2), search


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


def config_from_args(args: argparse.Namespace, **overrides) -> TrainConfig:
    """Turn parsed arguments into a validated TrainConfig (every field has its flag, or is in `overrides`)."""
    values = {field.name: getattr(args, field.name, None) for field in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{**values, **overrides})


def main(argv: list[str] | None = None) -> int:
    """Parse, validate, train; user mistakes exit 2 with one line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except KerasregError as e:
        parser.error(str(e))
    if args.out is not None and not args.out.strip():
        parser.error("Received --out ''. Expected a folder to write the run to (without --out: runs/<dataset>-<time>).")
    out = Path(args.out) if args.out else Path("runs") / f"{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: hide its C++ banner
    resume = "restart" if args.restart else "required" if args.resume else "auto"
    hint = f"the last backed-up epoch is in {out}; rerun the same command to resume"
    return run_cli(parser.prog, lambda: train_and_evaluate(config, out, resume=resume), interrupted_hint=hint)


if __name__ == "__main__":
    from kerasreg.cli import exit_now

    exit_now(main())

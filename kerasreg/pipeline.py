"""One training run, start to finish: data, (the L2 search,) fit, test metrics, the run directory.

    from kerasreg.pipeline import train_and_evaluate
    metrics = train_and_evaluate(TrainConfig(dataset="digits"), "runs/digits")

`python -m kerasreg.train` parses its flags into a `TrainConfig` and calls this; the
tests call it directly, with the `strategy` and `datasets` overrides as their hooks.
The run directory's files are listed in kerasreg/run_directory/files.py.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from pathlib import Path

from kerasreg.config import L2_AUTO, TrainConfig
from kerasreg.datasets import ImageDataset, load_dataset
from kerasreg.datasets.container import Shard
from kerasreg.distribution.cluster import RESUME, exchange, is_peer_failure, peer_lost
from kerasreg.distribution.strategy import StrategyChoice, plan_strategy
from kerasreg.errors import KerasregError, RunDirError
from kerasreg.run_directory import files
from kerasreg.run_directory.lock import RunLock
from kerasreg.run_directory.resume import discard_state, prepare_run_dir, worker_dir
from kerasreg.training.epoch_runner import Diverged


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
    from kerasreg.distribution.strategy import choose_strategy, wrap_strategy

    run_dir = Path(run_dir)
    clock = PhaseClock()
    tf_config = os.environ.get("TF_CONFIG") if strategy is None else None
    try:
        # First: a multi-worker strategy must exist before TensorFlow runs any op.
        if strategy is not None:
            choice = wrap_strategy(strategy)
        else:
            choice = choose_strategy(config.devices, config.collective, tf_config, config.peer_timeout)
        clock.lap("start_tensorflow_seconds")
        return _in_run_dir(config, run_dir, choice, clock, datasets, resume)
    except Exception as e:
        if tf_config and is_peer_failure(e):
            raise peer_lost(e, tf_config, config.peer_timeout, str(cluster_work_dir(run_dir, tf_config))) from None
        raise


def _in_run_dir(config: TrainConfig, run_dir: Path, choice: StrategyChoice, clock, datasets, resume: str) -> dict:
    """train_and_evaluate's work once the strategy is up: lock and check the run directory, then train.

    A cluster's worker that cannot start (a run directory or data it refuses) says so to the others
    first (kerasreg/training/agreement.py), so that every worker stops with the same line.
    """
    work_dir = run_dir if choice.is_chief else worker_dir(run_dir, choice.worker_index)
    lock = RunLock(work_dir)  # one process per run directory
    refusal = None
    try:
        if work_dir.exists() and not work_dir.is_dir():
            raise RunDirError(f"--out {work_dir} is a file; expected a directory.")
        lock.acquire()
        prepare_run_dir(work_dir, config, resume)
    except (KerasregError, OSError) as e:  # OSError: the folder cannot be made (permissions, a full disk)
        if choice.num_workers == 1:
            lock.release()
            raise
        # Said to the other workers first, so that every one stops with this line.
        refusal = str(e) if isinstance(e, KerasregError) else f"{e.filename or work_dir}: {e.strerror or e}"
    try:
        return _train(config, run_dir, work_dir, choice, clock, datasets, refusal)
    except Diverged as e:
        discard_state(work_dir)
        raise KerasregError(
            f"{e}: the learning rate ({config.resolved_learning_rate:g}) or the L2 strength ({config.l2}) is too "
            "large for this data; lower it and rerun (nothing of this run is kept, so the rerun starts clean)."
        ) from None
    finally:
        lock.release()


def _train(
    config: TrainConfig, run_dir: Path, work_dir: Path, choice: StrategyChoice, clock, datasets, refusal
) -> dict:
    """train_and_evaluate's work once the run directory is locked and checked, in the order it happens: data,
    (agreement in a cluster,) setup, config.json, (the L2 search,) the model, the fit, the metrics, the results."""
    from kerasreg.model import set_affine, weights_digest
    from kerasreg.training.fit import fit
    from kerasreg.training.setup import make_model, setup_run

    data, refusal = _load(config, datasets, refusal, choice)
    resume_at = _agree(config, work_dir, choice, data, refusal) if choice.num_workers > 1 else None
    clock.lap("load_data_seconds")
    setup = setup_run(data, config, choice, owned=datasets is None)
    data = setup.data  # in a cluster, this worker's shard of the training images: the whole set is let go
    write_config(work_dir / files.CONFIG, config, setup)  # before anything else, and only once
    print(
        f"{data.name}: {len(setup.split.train_labels)} training images {data.input_shape}, "
        f"{data.num_classes} classes, strategy {choice.kind} x{choice.replicas}",
        flush=True,
    )
    search = None
    if config.l2 == L2_AUTO:
        from kerasreg.l2_search.choose import choose_l2

        setup, search = choose_l2(setup, work_dir)  # from here on, the refit's setup: all training images
        clock.lap("l2_search_seconds")
    elif not setup.split.has_val:
        print("val-split 0: training on all training data; early stopping is off.", flush=True)
    model = make_model(setup)
    if search is not None and search.start is not None:
        set_affine(model, *search.start)  # from the search's best model, as LogisticRegressionCV's refit starts
    clock.lap("build_model_seconds")
    fitted = fit(model, setup, work_dir, resume_at)
    clock.lap("train_seconds")
    probabilities, evaluated = _evaluate(model, setup, fitted, search)
    clock.lap("evaluate_seconds")
    searched = clock.laps.get("l2_search_seconds", 0.0)  # train_seconds counts the search and the refit
    train_seconds = round(clock.laps["train_seconds"] + searched, 3)
    metrics = {**evaluated, "train_seconds": train_seconds, "timings": {**clock.laps, **fitted.timings}}
    print(f"weights sha256 {weights_digest(model)}", flush=True)
    if choice.is_chief:
        metrics = write_results(run_dir, model, data, fitted.history, metrics, config.seed, probabilities, search)
    if choice.num_workers > 1:
        # The others keep their backups until the chief's results are on disk: should the chief die while writing
        # them, a rerun resumes from the final commit every worker still holds, rather than from the start.
        exchange(choice, "results written")
    if not choice.is_chief:
        shutil.rmtree(work_dir, ignore_errors=True)
    _print_summary(metrics, data, run_dir if choice.is_chief else None)
    return metrics


def _load(config: TrainConfig, given: ImageDataset | None, refusal: str | None, choice: StrategyChoice):
    """The dataset (`given`, or loaded as `config` says) and this worker's refusal, if it has one: a cluster's
    worker that cannot load its data says so to the others (kerasreg/training/agreement.py) instead of raising."""
    if given is not None or refusal is not None:
        return given, refusal
    try:
        shard = Shard(choice.worker_index, choice.num_workers) if choice.num_workers > 1 else None
        return load_dataset(config.dataset, config.source, config.data_dir, config.dataset_options(), shard), None
    except KerasregError as e:
        if choice.num_workers == 1:
            raise
        return None, str(e)


def _agree(config: TrainConfig, work_dir: Path, choice: StrategyChoice, data, refusal) -> tuple[int, bool]:
    """The commit every worker resumes from (kerasreg/training/agreement.py). What this worker holds beyond
    it goes now, so that no stale commit or search can be agreed on later."""
    from kerasreg.l2_search.choose import CHECKPOINT, search_finished
    from kerasreg.training.agreement import START, agree
    from kerasreg.training.backup import committed, drop_commits, roll_back

    backup = work_dir / files.BACKUP
    commits, searched = [], True
    if refusal is None:
        try:
            commits = [(epoch, finished) for _, epoch, finished in committed(backup)]
            if config.l2 == L2_AUTO:
                searched = search_finished(backup / CHECKPOINT)
        except KerasregError as e:
            refusal = str(e)
    agreement = agree(choice, config, data, commits, refusal, searched)
    if agreement.resume_at != START and roll_back(backup, agreement.resume_at):
        print(f"resuming with the other workers at epoch {agreement.resume_at[0]}: this worker's newer backup goes")
    if agreement.resume_at == START and (commits or not agreement.keep_search) and backup.exists():
        print(
            f"starting over with the other workers, who hold no backup this one can resume with: removing {backup}",
            flush=True,
        )
        if agreement.keep_search:
            drop_commits(backup)
            (work_dir / files.HISTORY).unlink(missing_ok=True)
        else:
            discard_state(work_dir)
    return agreement.resume_at


def cluster_work_dir(run_dir: Path, tf_config: str) -> Path:
    """Where a cluster worker keeps its backups: --out for the chief, `<out>.worker<N>` beside it for the others."""
    plan = plan_strategy(tf_config, gpus=[])
    return run_dir / files.BACKUP if plan.is_chief else worker_dir(run_dir, plan.worker_index) / files.BACKUP


def supervise_worker(prog: str, run_dir: Path, tf_config: str) -> tuple[str, int | None]:
    """A cluster worker's command, supervised (kerasreg/distribution/interrupts.py): the line that says how to
    resume, and the exit code when this is the parent that waited for the training child (None in the child)."""
    from kerasreg.distribution.interrupts import supervise

    hint = f"this worker's backups are in {cluster_work_dir(run_dir, tf_config)}; {RESUME}"
    crashed = f"{prog}: error: the training process crashed ({{signal}}); {hint}."
    return hint, supervise(f"{prog}: interrupted; {hint}", crashed)


def _evaluate(model, setup, fitted, search) -> tuple[object, dict]:
    """The test probabilities, and metrics.json's content but its timings: the test metrics, the accuracy on the
    images trained on (the course reports both), how the fit went, and the search."""
    from kerasreg.model import predict_probabilities
    from kerasreg.reports.metrics import compute_metrics

    data, split = setup.data, setup.split
    probabilities = predict_probabilities(model, data.test_images, data.task)
    rows, labels, _, _ = split.held(split.train_rows, split.train_labels, None)
    right = int((predict_probabilities(model, data.train_images, data.task, rows).argmax(axis=1) == labels).sum())
    if split.shard is not None:
        right = sum(exchange(setup.choice, right))  # each worker's count on its shard
    metrics = {
        # The baseline answers the test split's own majority: the best any constant answer scores there (the
        # training split's majority could score below chance on a test split balanced otherwise).
        **compute_metrics(data.test_labels, probabilities, data.task),
        "train_accuracy": right / len(split.train_labels),
        "epochs_trained": len(fitted.history),
        **fitted.stop,
    }
    if search is not None:
        metrics["l2_search"] = search.to_dict()
    return probabilities, metrics


def _print_summary(metrics: dict, data: ImageDataset, run_dir: Path | None) -> None:
    from kerasreg.reports.metrics import summary_lines

    for line in summary_lines(metrics, data.class_names):
        print(line)
    if run_dir is not None:
        print(f"run directory: {run_dir}")


def library_versions() -> dict:
    """Versions of the libraries that shape a run, for config.json."""
    import keras
    import numpy
    import tensorflow as tf

    from shared.extras import version  # not kerasreg.__version__: the package imports the API, which imports this

    return {
        "kerasreg": version(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
    }


def write_config(path: Path, config: TrainConfig, setup) -> None:
    """config.json: the options as given, the dataset's facts, the strategy, the batch in force, versions."""
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
            "n_val": split.n_val,
            "n_test": len(data.test_labels),
            **data.facts,  # a folder's layout, images per class and split, what was passed over
        },
        "strategy": choice.describe(),
        "global_batch_size": setup.config.batch_size,
        "per_replica_batch_size": setup.config.batch_size // choice.replicas,
        "versions": library_versions(),
    }
    files.write_json(path, record)


def write_results(
    run_dir: Path, model, data: ImageDataset, history: list[dict], metrics: dict, seed: int, probabilities, search
) -> dict:
    """The chief's outputs: model, samples, plots, then metrics.json, whose presence marks a finished run; returns
    the metrics as written (with the time writing took)."""
    from kerasreg.reports.run_pictures import write_reports

    started = time.perf_counter()
    model.save(run_dir / files.MODEL)
    files.write_sample(run_dir / files.TEST_SAMPLE, data.test_images, data.test_labels, seed)
    files.write_sample(run_dir / files.TRAIN_SAMPLE, data.train_images, data.train_labels, seed)
    write_reports(run_dir, model, data, history, metrics, probabilities, search)
    names = data.test_files if data.test_files is not None and len(data.test_files) == len(data.test_labels) else None
    files.write_predictions(run_dir / files.PREDICTIONS, data.test_labels, probabilities, data.class_names, names)
    # On disk before metrics.json, whose presence marks the run finished, is.
    files.sync_files([run_dir / files.MODEL, *sorted((run_dir / files.PLOTS).glob("*.png"))])
    written = {"write_run_dir_seconds": round(time.perf_counter() - started, 4)}
    metrics = {**metrics, "timings": {**metrics["timings"], **written}}
    files.write_json(run_dir / files.METRICS, metrics)
    shutil.rmtree(run_dir / files.BACKUP, ignore_errors=True)
    return metrics


class PhaseClock:
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

"""Distribution and fault tolerance: strategy choice, MirroredStrategy, two real workers, kill and resume."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from local_cluster import free_ports, tf_config

from kerasreg.config import TrainConfig
from kerasreg.distribution.strategy import build_strategy, plan_strategy
from kerasreg.errors import KerasregError
from kerasreg.pipeline import train_and_evaluate
from kerasreg.run_directory import files
from kerasreg.run_directory.resume import worker_dir

REPO = Path(__file__).resolve().parent.parent


def test_plan_with_tf_config_is_multi_worker():
    plan = plan_strategy(tf_config([1, 2], 1), gpus=[], collective="ring")
    assert (plan.kind, plan.is_chief, plan.worker_index, plan.num_workers, plan.collective) == (
        "multi_worker",
        False,
        1,
        2,
        "ring",
    )
    assert plan_strategy(tf_config([1, 2], 0), gpus=[]).is_chief
    with_chief = json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 0}})
    assert not plan_strategy(with_chief, gpus=[]).is_chief


def test_plan_with_gpus_is_mirrored_over_all_or_the_chosen():
    gpus = ["/gpu:0", "/gpu:1", "/gpu:2"]
    assert plan_strategy(None, gpus).kind == "mirrored" and plan_strategy(None, gpus).devices == tuple(gpus)
    assert plan_strategy(None, gpus, devices="0,2").devices == ("/gpu:0", "/gpu:2")
    assert plan_strategy(None, gpus, devices="1").kind == "default"
    with pytest.raises(KerasregError, match=r"Received devices='0,5'. 3 GPUs are visible: indices 0..2, each once."):
        plan_strategy(None, gpus, devices="0,5")


def test_plan_without_gpus_or_cluster_is_default():
    plan = plan_strategy(None, [])
    assert (plan.kind, plan.devices) == ("default", ("/CPU:0",))
    assert plan_strategy("", ["/gpu:0"]).devices == ("/gpu:0",)
    with pytest.raises(KerasregError, match="TF_CONFIG is not valid"):
        plan_strategy("{not json", [])
    with pytest.raises(KerasregError, match="--devices needs at least one"):
        plan_strategy(None, [], devices="0")


def test_mirrored_plan_builds_once_per_process_on_two_logical_cpus():
    plan = plan_strategy(None, ["/cpu:0", "/cpu:1"])  # CPUs stand in for GPUs: the same code path builds it
    choice = build_strategy(plan)
    assert isinstance(choice.strategy, tf.distribute.MirroredStrategy) and choice.replicas == 2
    # A second MirroredStrategy over the same devices would break the first's all-reduce.
    assert build_strategy(plan).strategy is choice.strategy


@pytest.mark.slow
@pytest.mark.realdata
def test_mirrored_matches_default_strategy_on_real_mnist(real_data, tmp_path, two_cpu_strategy):
    from test_real_data import mnist_8k_2k

    data = mnist_8k_2k(real_data)
    config = TrainConfig(dataset="mnist", epochs=10, l2=0.01)
    single = train_and_evaluate(config, tmp_path / "one", datasets=data)
    mirrored = train_and_evaluate(config, tmp_path / "two", datasets=data, strategy=two_cpu_strategy)
    print(
        "MNIST 8k/2k default vs mirrored x2:",
        single["accuracy"],
        mirrored["accuracy"],
        "samples/s:",
        round(8000 * 0.9 * single["epochs_trained"] / single["train_seconds"]),
        round(8000 * 0.9 * mirrored["epochs_trained"] / mirrored["train_seconds"]),
    )
    assert mirrored["accuracy"] >= 0.90
    assert abs(mirrored["accuracy"] - single["accuracy"]) <= 0.01


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    return {**env, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


TRAIN = [
    sys.executable,
    "-m",
    "kerasreg.train",
    "--dataset",
    "digits",
    "--epochs",
    "6",
    "--batch-size",
    "128",
    "--l2",
    "0.01",
]


@pytest.mark.slow
def test_two_workers_train_in_sync(tmp_path):
    run = tmp_path / "mw"
    started = time.monotonic()
    outputs = _two_workers([*TRAIN, "--out", str(run)], tmp_path)
    wall = time.monotonic() - started
    digests = [re.search(r"weights sha256 (\w+)", out).group(1) for out in outputs]
    assert digests[0] == digests[1]  # synchronous training: identical weights on both workers
    held = [int(re.search(r"worker \d holds (\d+) of the (\d+) training images", out).group(1)) for out in outputs]
    assert sum(held) == 1437 and abs(held[0] - held[1]) <= 1  # each its shard: digits' 1,437 training images halved
    _assert_the_shards_cover_every_image_once(run)
    config = json.loads((run / files.CONFIG).read_text())
    assert config["strategy"]["kind"] == "multi_worker" and config["strategy"]["replicas"] == 2
    for name in (files.MODEL, files.METRICS, files.HISTORY, files.TEST_SAMPLE, files.WEIGHTS):
        assert (run / name).is_file()
    assert not (run / files.BACKUP).exists()
    assert not worker_dir(run, 1).exists()  # the other worker cleaned up
    multi = json.loads((run / files.METRICS).read_text())
    single = subprocess.run(
        [*TRAIN, "--out", str(tmp_path / "single")],
        env=_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-2000:]
    alone = json.loads((tmp_path / "single" / files.METRICS).read_text())
    print(f"multi-worker wall {wall:.1f}s, accuracy {multi['accuracy']:.4f} vs single {alone['accuracy']:.4f}")
    assert abs(multi["accuracy"] - alone["accuracy"]) <= 0.01


def _two_workers(command: list[str], cwd: Path) -> list[str]:
    """Run `command` as both workers of a 2-worker cluster on 127.0.0.1; their outputs (both must succeed)."""
    ports = free_ports(2)
    workers = [
        subprocess.Popen(
            command,
            env=_env(TF_CONFIG=tf_config(ports, i)),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outputs = [w.communicate(timeout=240)[0] for w in workers]
    finally:
        for w in workers:
            w.kill()
    assert [w.returncode for w in workers] == [0, 0], outputs[1][-3000:] + outputs[0][-3000:]
    return outputs


@pytest.mark.slow
def test_workers_that_read_only_their_shard_standardise_by_every_image(tmp_path):
    import keras
    from format_writers import cifar_batches, write_cifar_folder

    from kerasreg.datasets.cifar_files import load_cifar10_files
    from kerasreg.model import pixel_statistics

    write_cifar_folder(tmp_path / "data", cifar_batches(rows=(101, 99, 100), n_test=20))
    command = [*TRAIN[:3], "--dataset", "cifar10", "--source", "files", "--data-dir", "data", "--epochs", "2"]
    command += ["--l2", "0.01", "--normalize", "per-pixel", "--val-split", "0", "--out", "run"]
    outputs = _two_workers(command, tmp_path)
    assert len({re.search(r"weights sha256 (\w+)", out).group(1) for out in outputs}) == 1
    for out in outputs:  # each read 150 of the 300 images, its shard, from the batches
        assert re.search(r"worker \d holds 150 of the 300 training images: .* \(the only ones read\)", out), out
    # The per-pixel statistics were summed over the shards: those of every image, as one process computes them.
    mean, variance = pixel_statistics(load_cifar10_files(tmp_path / "data").train_images)
    norm = keras.models.load_model(tmp_path / "run" / files.MODEL).get_layer("standardize")
    np.testing.assert_allclose(np.asarray(norm.mean).reshape(-1), mean, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(norm.variance).reshape(-1), variance, rtol=1e-6)


def _assert_the_shards_cover_every_image_once(run: Path) -> None:
    """The accuracies the sharded workers summed (history.csv, metrics.json) are those of the final model on every
    image of the run's training and validation parts, counted here in one process: a training image the model gets
    right, left out or counted twice, would move them by 1/1293 (1/144 for a validation image)."""
    import keras

    from kerasreg.datasets import load_dataset
    from kerasreg.training.setup import prepare_training_data

    config = TrainConfig.from_dict(json.loads((run / files.CONFIG).read_text())["options"])
    data = load_dataset("digits")
    split = prepare_training_data(data, config)
    model = keras.models.load_model(run / files.MODEL)
    metrics = json.loads((run / files.METRICS).read_text())
    last = files.read_history(run / files.HISTORY)[metrics["best_epoch"] - 1]  # the epoch whose weights were kept

    def accuracy(rows):
        predicted = np.asarray(model(data.train_images[rows], training=False)).argmax(axis=1)
        return (predicted == data.train_labels[rows]).mean()

    assert (len(split.train_rows), len(split.val_rows)) == (1293, 144)
    assert last["accuracy"] == pytest.approx(accuracy(split.train_rows), abs=1e-6)
    assert last["val_accuracy"] == pytest.approx(accuracy(split.val_rows), abs=1e-6)
    assert metrics["train_accuracy"] == accuracy(split.train_rows)


@pytest.mark.slow
def test_killed_run_resumes_at_the_next_epoch(tmp_path):
    from kill_points import env_killed_at

    run = tmp_path / "killed"
    command = [sys.executable, "-m", "kerasreg.train", "--dataset", "digits", "--epochs", "4", "--l2", "0.01"]
    command += ["--patience", "10", "--backup-interval", "0", "--out", str(run)]  # a backup after every epoch
    # SIGKILL as epoch 2 (0-based) begins: epochs 0 and 1 are backed up, nothing after them.
    hook = ("kerasreg.training.compiled_epoch", "CompiledEpoch.run_epoch", "args[2] == 2")
    env = env_killed_at(tmp_path / "hook", *hook)
    killed = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert json.loads((run / files.BACKUP / "latest.json").read_text())["epoch"] == 2
    assert not (run / files.METRICS).exists()
    rerun = subprocess.run(command, env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "2 epochs done, continuing at epoch 3 of 4" in rerun.stdout
    history = files.read_history(run / files.HISTORY)
    assert [row["epoch"] for row in history] == [0, 1, 2, 3]
    assert json.loads((run / files.METRICS).read_text())["epochs_trained"] == 4
    assert not (run / files.BACKUP).exists()


def test_resume_refuses_other_options_and_restart_discards(tmp_path, capsys):
    from kerasreg.train import main

    run = tmp_path / "r"
    (run / files.BACKUP).mkdir(parents=True)
    files.write_json(run / files.CONFIG, {"options": TrainConfig(dataset="digits", seed=1).to_dict()})
    assert main(["--dataset", "digits", "--seed", "2", "--out", str(run)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"python -m kerasreg.train: error: {run} holds an unfinished run with other seed; rerun with its "
        "options to resume it, or pass --restart to discard it and start over."
    )
    assert main(["--dataset", "digits", "--seed", "2", "--epochs", "1", "--out", str(run), "--restart"]) == 0
    assert (run / files.METRICS).exists()


def test_uneven_batch_warns_and_trains_with_an_even_one(tmp_path, capsys, two_cpu_strategy):
    config = TrainConfig(dataset="digits", epochs=1, batch_size=127, l2=0.01)
    train_and_evaluate(config, tmp_path / "u", strategy=two_cpu_strategy)
    assert (
        "warning: global batch 127 does not divide evenly across 2 replicas; training with 126 (63 per replica)."
        in capsys.readouterr().err
    )
    config = json.loads((tmp_path / "u" / files.CONFIG).read_text())
    assert config["options"]["batch_size"] == 127  # as given, so the same command resumes
    assert config["global_batch_size"] == 126 and config["per_replica_batch_size"] == 63


@pytest.mark.slow
def test_mirrored_loop_takes_the_same_steps_as_one_device_and_mixed_precision_trains(tmp_path, two_cpu_strategy):
    # Each replica sums its slice's losses over the GLOBAL batch and the optimizer
    # all-reduces the gradients: two replicas must land where one device does.
    base = TrainConfig(dataset="digits", epochs=3, batch_size=100, l2=0.01)  # 1294 % 100: a short last batch too
    one = train_and_evaluate(base, tmp_path / "one")
    two = train_and_evaluate(base, tmp_path / "two", strategy=two_cpu_strategy)
    w_one = files.load_run_model(tmp_path / "one").get_layer("classifier").get_weights()
    w_two = files.load_run_model(tmp_path / "two").get_layer("classifier").get_weights()
    for a, b in zip(w_one, w_two, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert two["accuracy"] == pytest.approx(one["accuracy"], abs=0.003)
    assert [r["epoch"] for r in files.read_history(tmp_path / "two" / files.HISTORY)] == [0, 1, 2]
    mixed = TrainConfig(dataset="digits", epochs=3, batch_size=100, l2=0.01, mixed_precision=True)
    assert train_and_evaluate(mixed, tmp_path / "mixed")["accuracy"] >= one["accuracy"] - 0.05


def test_backup_survives_a_kill_at_any_point_and_history_is_trimmed_to_it(tmp_path):
    from kerasreg.model import build_model
    from kerasreg.run_directory.resume import resumed_history
    from kerasreg.training.backup import EpochBackup

    model = build_model((8, 8, 1), 10, "multiclass")
    model.compile(optimizer="adam")
    model.optimizer.build(model.trainable_variables)  # as make_model does: slots saved with the weights
    backup = EpochBackup(tmp_path / "backup")
    backup.save(model, 2)
    saved = [w.copy() for w in model.get_weights()]
    # A kill during the next backup: a half-written weights file, latest.json not yet renamed.
    (tmp_path / "backup" / ".partial-999.npz").write_bytes(b"PK\x03\x04 half a file")
    model.set_weights([w + 1 for w in saved])
    learning_rate = float(model.optimizer.learning_rate)
    model.optimizer.learning_rate = learning_rate / 4  # as ReduceLROnPlateau would have, after the backup
    assert backup.restore(model) == 2
    assert float(model.optimizer.learning_rate) == learning_rate  # the optimizer's state comes back too
    for restored, expected in zip(model.get_weights(), saved, strict=True):
        np.testing.assert_array_equal(restored, expected)
    # Epoch 3 was logged to history.csv but never backed up: the resumed run drops its row.
    files.write_history(tmp_path / files.HISTORY, [{"epoch": e, "loss": 1.0 / (e + 1)} for e in range(3)])
    assert [r["epoch"] for r in resumed_history(tmp_path, 2)] == [0, 1]


EXACT = TrainConfig(dataset="digits", epochs=40, batch_size=256, l2=0.01, patience=3, backup_interval=0)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = tmp_path_factory.mktemp("exact") / "whole"
    metrics = train_and_evaluate(EXACT, run)
    return run, metrics


@pytest.mark.slow
@pytest.mark.parametrize("killed_after", [1, 3, 6, 10, 14])
def test_a_run_killed_after_any_epoch_resumes_to_the_same_weights_and_history(
    uninterrupted, tmp_path, monkeypatch, killed_after
):
    from kerasreg.training.compiled_epoch import CompiledEpoch

    whole, metrics = uninterrupted
    assert killed_after < metrics["epochs_trained"]
    run_epoch = CompiledEpoch.run_epoch

    def crash(self, seed, epoch):
        if epoch == killed_after:  # dies before this epoch; the backup holds the ones before it
            raise KeyboardInterrupt
        return run_epoch(self, seed, epoch)

    monkeypatch.setattr(CompiledEpoch, "run_epoch", crash)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(EXACT, tmp_path / "run")
    monkeypatch.setattr(CompiledEpoch, "run_epoch", run_epoch)
    assert json.loads((tmp_path / "run" / files.BACKUP / "latest.json").read_text())["epoch"] == killed_after
    resumed = train_and_evaluate(EXACT, tmp_path / "run")
    assert (tmp_path / "run" / files.HISTORY).read_text() == (whole / files.HISTORY).read_text()
    for a, b in zip(
        files.load_run_model(tmp_path / "run").get_weights(), files.load_run_model(whole).get_weights(), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert resumed["accuracy"] == metrics["accuracy"] and resumed["epochs_trained"] == metrics["epochs_trained"]
    assert metrics["stop_reason"] == "early_stopping"  # so the resumed run had early stopping's state to carry
    assert (resumed["stop_reason"], resumed["best_epoch"]) == ("early_stopping", metrics["best_epoch"])

"""A cluster worker's process tree (issue 32): its threads stay bounded over many steps, and a training child that
crashes is reported as the crash it is. Both failed before the fix: the chief held 14,000 threads after 16 s of
batches of 8 and died of std::system_error, which its parent then reported as a Ctrl-C (exit 130)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from local_cluster import free_ports, tf_config

from kerasreg.run_directory import files

pytestmark = pytest.mark.slow  # two training processes each
REPO = Path(__file__).resolve().parent.parent


def _start(tmp_path: Path, ports: list[int], index: int, args: list[str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=str(REPO), TF_CONFIG=tf_config(ports, index), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "kerasreg.train", *args, "--out", str(tmp_path / "run")]
    return subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _tree(pid: int) -> list[int]:
    """`pid` and its children (a cluster worker: the supervising parent and the training child)."""
    try:
        return [pid, *(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    except OSError:
        return []


def _threads(pid: int) -> int:
    total = 0
    for member in _tree(pid):
        try:
            total += len(os.listdir(f"/proc/{member}/task"))
        except OSError:
            pass
    return total


def test_a_workers_threads_stay_bounded_over_many_steps(tmp_path):
    ports = free_ports(2)
    # Batches of 8 of digits' 1,437 training images: 162 steps an epoch, each an all-reduce between the workers;
    # 1,620 steps in all (a fixed --l2: no search before them). The leak had 3,877 threads after 8 s.
    args = ["--dataset", "digits", "--epochs", "10", "--batch-size", "8", "--patience", "100", "--tol", "0",
            "--l2", "0.01"]  # fmt: skip
    workers = [_start(tmp_path, ports, i, args) for i in range(2)]
    counts = []
    try:
        while workers[0].poll() is None:
            counts.append(_threads(workers[0].pid))
            time.sleep(0.5)
        outputs = [w.communicate(timeout=120) for w in workers]
    finally:
        for worker in workers:
            worker.kill()
    assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in outputs]
    history = files.read_history(tmp_path / "run" / files.HISTORY)
    assert len(history) == 10
    assert len(counts) > 10 and max(counts) < 300, counts  # ~120 here; before the fix, 3,877 after 8 s


def test_a_training_child_that_crashes_is_reported_as_a_crash(tmp_path):
    ports = free_ports(2)
    # A --tol above 0 has every epoch run (and shown) on its own, rather than in chunks of compiled epochs.
    args = [
        "--dataset",
        "digits",
        "--epochs",
        "500",
        "--batch-size",
        "32",
        "--tol",
        "1e-12",
        "--peer-timeout",
        "5",
        "--l2",
        "0.01",
    ]  # fmt: skip (a fixed --l2: training, and its epoch lines, start at once)
    workers = [_start(tmp_path, ports, i, args) for i in range(2)]
    try:
        for line in workers[0].stdout:  # an epoch has ended: training runs
            if line.startswith("Epoch 2/"):
                break
        parent, child = _tree(workers[0].pid)[:2]
        os.kill(child, signal.SIGABRT)  # what a C++ exception's std::terminate ends in
        _, err = workers[0].communicate(timeout=60)
        workers[1].communicate(timeout=60)
    finally:
        for worker in workers:
            worker.kill()
    lines = [line for line in err.splitlines() if line.startswith("python -m kerasreg.train")]
    assert workers[0].returncode == 1, err[-2000:]
    assert lines == [
        "python -m kerasreg.train: error: the training process crashed (SIGABRT); this worker's backups are in "
        f"{tmp_path / 'run' / files.BACKUP}; rerun the same command on every worker to resume."
    ]
    assert workers[1].returncode == 3  # its peer was lost: resumable

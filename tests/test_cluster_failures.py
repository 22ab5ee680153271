"""A cluster run survives what clusters do: two real workers on 127.0.0.1, killed, interrupted, late or at odds.

Each case starts `python -m kerasreg.train` twice with TF_CONFIG, as a user would on two machines, and holds the
promise of README's "Training on several machines": one line and a documented exit code for every failure, and a
rerun of the same command that ends byte-identical to a run left alone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from local_cluster import free_ports, tf_config

from kerasreg.run_directory import files
from kerasreg.run_directory.resume import worker_dir

REPO = Path(__file__).resolve().parent.parent
ARGS = ["--dataset", "digits", "--epochs", "8", "--batch-size", "128", "--backup-interval", "0", "--l2", "0.01"]
# TensorFlow's own lines before its logging starts (a GPU probe), printed by every TensorFlow program here.
_BANNER = re.compile(r"^WARNING: All log messages before absl|cudart_stub\.cc|cuda_platform\.cc|cpu_feature_guard")


def _env(ports: list[int], index: int, base: dict | None = None) -> dict:
    env = {k: v for k, v in (base or os.environ).items() if k not in ("TF_CONFIG", "TF_CPP_MIN_LOG_LEVEL")}
    env.setdefault("PYTHONPATH", str(REPO))
    return {**env, "TF_CONFIG": tf_config(ports, index)}


def _start(tmp_path: Path, out: Path, args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kerasreg.train", *args, "--out", str(out)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(processes: list[subprocess.Popen], timeout: float = 120) -> list[tuple[int, str, list[str]]]:
    """Each process's exit code, stdout, and stderr lines but TensorFlow's banner."""
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=timeout)
            lines = [line for line in err.splitlines() if line.strip() and not _BANNER.search(line)]
            results.append((process.returncode, out, lines))
    finally:
        for process in processes:
            process.kill()
    return results


def _cluster(tmp_path: Path, out: Path, extra: list[list[str]] = ([], []), envs=(None, None), peer_timeout=20):
    ports = free_ports(2)
    args = [*ARGS, "--peer-timeout", str(peer_timeout)]
    processes = [_start(tmp_path, out, [*args, *extra[i]], _env(ports, i, envs[i])) for i in range(2)]
    return _finish(processes), ports


@pytest.mark.slow
@pytest.mark.parametrize("alone", [0, 1])
def test_a_peer_that_never_comes_ends_the_wait_with_one_line_and_exit_3(tmp_path, alone):
    ports = free_ports(2)
    started = time.monotonic()
    process = _start(tmp_path, tmp_path / "run", [*ARGS, "--peer-timeout", "3"], _env(ports, alone))
    [(code, _, lines)] = _finish([process], timeout=60)
    waited = time.monotonic() - started
    other = 1 - alone
    backups = tmp_path / "run" / files.BACKUP if alone == 0 else worker_dir(tmp_path / "run", 1) / files.BACKUP
    assert code == 3, lines
    assert lines == [
        f"python -m kerasreg.train: error: worker {other} (127.0.0.1:{ports[other]}) did not join the cluster within "
        f"3 s; this worker's backups are in {backups}; "
        "rerun the same command on every worker to resume."
    ]
    assert waited < 3 + 25  # TensorFlow's start, the timeout, its 5 s of grace for the leader to answer
    assert not (tmp_path / "run").exists()  # nothing written


@pytest.mark.slow
def test_ctrl_c_while_waiting_for_a_peer_is_honoured_at_once(tmp_path):
    ports = free_ports(2)
    process = _start(tmp_path, tmp_path / "run", [*ARGS, "--peer-timeout", "100"], _env(ports, 0))
    # Once the line is out, TensorFlow has started and waits for worker 1, in C++, holding the GIL.
    assert process.stdout.readline().startswith("worker 0 of 2: waiting up to 100 s for the others")
    time.sleep(0.5)
    assert process.poll() is None
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    [(code, _, lines)] = _finish([process], timeout=30)
    assert time.monotonic() - sent < 5
    assert code == 130
    assert lines == [
        f"python -m kerasreg.train: interrupted; this worker's backups are in {tmp_path / 'run' / files.BACKUP}; "
        "rerun the same command on every worker to resume"
    ]


@pytest.mark.slow
def test_options_that_differ_stop_every_worker_before_anything_is_written(tmp_path):
    (first, second), _ = _cluster(tmp_path, tmp_path / "run", extra=[[], ["--seed", "1", "--l2", "0.1"]])
    line = (
        "python -m kerasreg.train: error: the workers' options differ: l2 (worker 0: 0.01, worker 1: 0.1); seed "
        "(worker 0: 0, worker 1: 1). Give every worker the same options; nothing was written."
    )
    assert (first[0], first[2]) == (2, [line])
    assert (second[0], second[2]) == (2, [line])
    assert not (tmp_path / "run").exists() and not worker_dir(tmp_path / "run", 1).exists()


def _image_folder(root: Path, moved: int, brighter: int = 0) -> Path:
    """Two classes of 12 tiny PNGs each; `moved` images of class a filed under b instead; `brighter`: every pixel
    that much brighter."""
    from PIL import Image

    for i in range(24):
        label = "a" if i < 12 - moved else "b"
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 8), color=(i * 10 + brighter) % 256).save(root / label / f"{i:02d}.png")
    return root


@pytest.mark.slow
@pytest.mark.parametrize(("moved", "brighter", "differs"), [(1, 0, "labels_sha256"), (0, 1, "pixels_xxh3")])
def test_data_that_differs_between_machines_is_refused_by_every_worker(tmp_path, moved, brighter, differs):
    # Other pixels under the same labels were agreed on before the fix: the identity hashed the labels only.
    folders = [_image_folder(tmp_path / "data0", 0), _image_folder(tmp_path / "data1", moved, brighter)]
    args = [["--dataset", "folder", "--data-dir", str(folders[i]), "--test-split", "0.25"] for i in range(2)]
    (first, second), _ = _cluster(tmp_path, tmp_path / "run", extra=args)
    for code, _, lines in (first, second):
        assert code == 2, lines
        assert len(lines) == 1 and lines[0].startswith("python -m kerasreg.train: error: the workers' datasets differ:")
        assert f"{differs} (worker 0: " in lines[0] and "the same files on each machine" in lines[0]
    assert first[2] == second[2]


@pytest.mark.slow
def test_a_worker_that_cannot_start_stops_the_others_with_its_reason(tmp_path):
    finished = tmp_path / "run"
    finished.mkdir()
    files.write_json(finished / files.METRICS, {"accuracy": 1.0})  # worker 0's --out holds a finished run
    (first, second), ports = _cluster(tmp_path, finished)
    why = f"{finished} already holds a finished run; choose another --out or delete it."
    assert (first[0], first[2]) == (2, [f"python -m kerasreg.train: error: {why}"])
    assert (second[0], second[2]) == (
        2,
        [f"python -m kerasreg.train: error: worker 0 (127.0.0.1:{ports[0]}) cannot start: {why}"],
    )


@pytest.mark.slow
def test_a_worker_whose_out_is_locked_stops_the_others_with_its_reason(tmp_path):
    from kerasreg.run_directory.lock import RunLock

    out = tmp_path / "run"
    with RunLock(out):  # another run trains into worker 0's --out (before the fix: the others said "was lost")
        (first, second), ports = _cluster(tmp_path, out)
    holder = f"pid {os.getpid()} on "
    assert first[0] == 2 and len(first[2]) == 1, first
    assert first[2][0].startswith(f"python -m kerasreg.train: error: {out} is in use by another kerasreg run ({holder}")
    why = first[2][0].split(": ", 2)[2]
    assert second[0] == 2 and second[2] == [
        f"python -m kerasreg.train: error: worker 0 (127.0.0.1:{ports[0]}) cannot start: {why}"
    ]


def test_the_resume_point_is_the_newest_commit_every_worker_holds():
    from kerasreg.errors import KerasregError
    from kerasreg.training.agreement import START, resume_point

    assert resume_point([[(3, False), (2, False)], [(2, False), (1, False)]]) == (2, False)
    assert resume_point([[(8, True), (8, False)], [(8, False), (7, False)]]) == (8, False)
    assert resume_point([[(8, True), (8, False)], [(8, True), (8, False)]]) == (8, True)
    assert resume_point([[(3, False)], []]) == START  # a worker with none (killed before its first commit)
    with pytest.raises(KerasregError) as refused:
        resume_point([[(9, False), (8, False)], [(4, False)]])
    assert str(refused.value) == (
        "the workers' backups share no epoch (worker 0: epochs 8, 9; worker 1: epochs 4): they cannot be resumed "
        "together; rerun every worker with --restart to discard it and start over."
    )


@pytest.mark.parametrize(
    ("kind", "text", "said"),
    [  # TensorFlow 2.21's own words, as measured on 127.0.0.1
        (
            "DeadlineExceededError",
            "Barrier timed out. Id: [Init]Wait_for_all_tasks_to_register::0. ... Some timed out task names:\n"
            "/job:worker/replica:0/task:1\n",
            "worker 1 (127.0.0.1:1001) did not join the cluster within 7 s",
        ),
        (
            "UnavailableError",
            "Collective ops is aborted by: failed to connect to all addresses ... Additional GRPC error information "
            "from remote target /job:worker/replica:0/task:1 while calling /tensorflow.WorkerService/RecvBuf",
            "worker 1 (127.0.0.1:1001) was lost: its process ended or its machine cannot be reached",
        ),
        (
            "UnavailableError",
            "Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks are unhealthy "
            "(stopped sending heartbeats):\n/job:worker/replica:0/task:1",
            "worker 1 (127.0.0.1:1001) stopped answering (no heartbeat for 7 s)",
        ),
    ],
)
def test_what_tensorflow_raises_for_a_peer_becomes_one_line_naming_it(kind, text, said):
    from kerasreg.distribution.cluster import is_peer_failure, peer_lost

    error = type(kind, (Exception,), {"__module__": "tensorflow.python.framework.errors_impl"})(text)
    assert is_peer_failure(error) and not is_peer_failure(ValueError(text))
    line = str(peer_lost(error, tf_config([1000, 1001], 0), 7, "run/backup"))
    assert line == f"{said}; this worker's backups are in run/backup; rerun the same command on every worker to resume."


def test_a_timeout_that_names_no_task_names_the_workers_it_can_be():
    from kerasreg.distribution.cluster import peer_lost

    # A collective's own timeout, measured under load: its text names no task.
    kind = type("DeadlineExceededError", (Exception,), {"__module__": "tensorflow.python.framework.errors_impl"})
    error = kind("Collective ops is aborted by: Deadline Exceeded [[{{node allgather/CollectiveGatherV2}}]]")
    two = str(peer_lost(error, tf_config([1000, 1001], 1), 4, "b"))
    assert two.startswith("worker 0 (127.0.0.1:1000) did not answer within 4 s; ")
    three = str(peer_lost(error, tf_config([1000, 1001, 1002], 0), 4, "b"))
    assert three.startswith("one of worker 1 (127.0.0.1:1001), worker 2 (127.0.0.1:1002) did not answer within 4 s; ")


def test_a_cluster_backup_keeps_the_commit_before_the_latest_and_restores_either(tmp_path):
    import numpy as np

    from kerasreg.model import build_model
    from kerasreg.training.backup import EpochBackup, committed

    model = build_model((8, 8, 1), 10, "multiclass")
    model.compile(optimizer="adam")
    model.optimizer.build(model.trainable_variables)
    backup = EpochBackup(tmp_path, keep=2)
    weights = {}
    for epoch in (1, 2, 3):
        model.set_weights([w + 1 for w in model.get_weights()])
        weights[epoch] = model.get_weights()
        backup.save(model, epoch)
    assert [(e, f) for _, e, f in committed(tmp_path)] == [(3, False), (2, False)]
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["epoch-00002.npz", "epoch-00003.npz"]
    model.stop_training = True  # early stopping's decision is part of the commit
    backup.save(model, 3, finished=True)
    assert [(e, f) for _, e, f in committed(tmp_path)] == [(3, True), (3, False)]
    # A rollback: resumed at the previous commit (epoch 2), the run commits epoch 3 again; epoch 2 stays whole.
    rolled_back = EpochBackup(tmp_path / "rollback", keep=2)
    for epoch in (2, 3):
        rolled_back.save(model, epoch)
    rolled_back.restore(model, at=(2, False))
    rolled_back.save(model, 3)
    assert [(e, f) for _, e, f in committed(tmp_path / "rollback")] == [(3, False), (2, False)]
    assert EpochBackup(tmp_path / "rollback", keep=2).restore(model, at=(2, False)) == 2  # its file is still there
    fresh = EpochBackup(tmp_path, keep=2)
    assert fresh.restore(model, at=(3, False)) == 3 and not fresh.stopped
    np.testing.assert_array_equal(model.get_weights()[0], weights[3][0])
    assert fresh.restore(model, at=(3, True)) == 3 and fresh.stopped and fresh.finished
    assert EpochBackup(tmp_path, keep=2).restore(model, at=(0, False)) == 0  # the agreed start: nothing restored


def test_after_agreeing_a_worker_drops_its_newer_commit_so_a_second_failure_still_shares_one(tmp_path):
    from kerasreg.model import build_model
    from kerasreg.training.agreement import resume_point
    from kerasreg.training.backup import EpochBackup, committed, roll_back

    model = build_model((8, 8, 1), 10, "multiclass")
    model.compile(optimizer="adam")
    model.optimizer.build(model.trainable_variables)
    chief, other = (EpochBackup(tmp_path / name, keep=2) for name in ("chief", "other"))
    for epoch in (3, 4, 5):
        chief.save(model, epoch)
    for epoch in (3, 4):  # killed before committing epoch 5
        other.save(model, epoch)
    held = [[(e, f) for _, e, f in committed(b.backup_dir)] for b in (chief, other)]
    assert held == [[(5, False), (4, False)], [(4, False), (3, False)]]
    at = resume_point(held)
    assert at == (4, False)
    assert roll_back(chief.backup_dir, at) and not roll_back(other.backup_dir, at)
    assert [(e, f) for _, e, f in committed(chief.backup_dir)] == [(4, False)]
    assert sorted(p.name for p in chief.backup_dir.glob("*.npz")) == ["epoch-00004.npz"]
    # The rerun backs up at other epochs (its interval changed): the chief commits epoch 7; the other worker dies
    # again before it does. Before the fix, the chief's commit pushed out the shared epoch 4 ("share no epoch").
    EpochBackup(tmp_path / "chief", keep=2).save(model, 7)
    held = [[(e, f) for _, e, f in committed(b.backup_dir)] for b in (chief, other)]
    assert held == [[(7, False), (4, False)], [(4, False), (3, False)]]
    assert resume_point(held) == (4, False)


# The kill-point sweep: where the run is interrupted, as (module, function, condition over the call's args).
KILL_POINTS = {
    # As epoch 3 (0-based) begins, every worker having committed epochs 1..3.
    "mid-epoch": ("kerasreg.training.compiled_epoch", "CompiledEpoch.run_epoch", "args[2] == 3"),
    # After epoch 3's last step, before this worker commits it; the other commits it: backups one epoch apart.
    "between commits": ("kerasreg.training.backup", "EpochBackup.save", "args[2] == 3 and not kwargs"),
}
SWEEP = [(point, worker, sig) for point in KILL_POINTS for worker in (0, 1) for sig in ("SIGKILL", "SIGINT")]


@pytest.fixture(scope="module")
def left_alone(tmp_path_factory):
    """An uninterrupted cluster run: its weights digest and history.csv are what every resumed run must end with."""
    tmp_path = tmp_path_factory.mktemp("alone")
    results, _ = _cluster(tmp_path, tmp_path / "run")
    assert [code for code, _, _ in results] == [0, 0], results
    digests = {_digest(out) for _, out, _ in results}
    assert len(digests) == 1
    return digests.pop(), (tmp_path / "run" / files.HISTORY).read_bytes()


def _digest(stdout: str) -> str:
    return re.search(r"weights sha256 (\w+)", stdout).group(1)


TABLE: list[str] = []


@pytest.mark.slow
@pytest.mark.parametrize(("point", "victim", "sig"), SWEEP)
def test_a_cluster_run_interrupted_anywhere_resumes_to_the_same_weights_and_history(
    left_alone, tmp_path, point, victim, sig
):
    from kill_points import env_killed_at

    digest, history = left_alone
    out = tmp_path / "run"
    hooked = env_killed_at(tmp_path / "hook", *KILL_POINTS[point], signal_name=sig)
    envs = [hooked if i == victim else None for i in range(2)]
    interrupted, ports = _cluster(tmp_path, out, envs=envs)
    codes = [code for code, _, _ in interrupted]
    survivor = 1 - victim
    assert codes[victim] == (-signal.SIGKILL if sig == "SIGKILL" else 130), interrupted[victim][2]
    assert codes[survivor] == 3, interrupted[survivor][2]
    backups = out / files.BACKUP if survivor == 0 else worker_dir(out, 1) / files.BACKUP
    assert interrupted[survivor][2] == [
        f"python -m kerasreg.train: error: worker {victim} (127.0.0.1:{ports[victim]}) was lost: its process ended or "
        f"its machine cannot be reached; this worker's backups are in {backups}; rerun the same command on every "
        "worker to resume."
    ]
    if sig == "SIGINT":
        assert interrupted[victim][2][-1].startswith("python -m kerasreg.train: interrupted; this worker's backups")
    dirs = [out, worker_dir(out, 1)]
    latest = [json.loads((dirs[i] / files.BACKUP / "latest.json").read_text())["epoch"] for i in range(2)]
    # Between commits, the backups are one epoch apart: the case the workers must agree on.
    assert (latest[victim], latest[survivor]) == ((2, 3) if point == "between commits" else (3, 3))

    resumed = _finish([_start(tmp_path, out, [*ARGS, "--peer-timeout", "20"], _env(ports, i)) for i in range(2)])
    assert [code for code, _, _ in resumed] == [0, 0], resumed
    epochs = {int(m.group(1)) for _, stdout, _ in resumed for m in re.finditer(r"(\d+) epochs done", stdout)}
    same_weights = {_digest(stdout) for _, stdout, _ in resumed} == {digest}
    identical = same_weights and (out / files.HISTORY).read_bytes() == history
    row = [point, victim, sig, f"{codes[victim]}, {codes[survivor]}", sorted(epochs), identical]
    TABLE.append("| " + " | ".join(str(cell) for cell in row) + " |")
    header = "| kill point | worker | signal | exit codes (victim, survivor) | resumed at epoch | identical |"
    print("\n".join(["", header, *TABLE]))
    assert epochs == {2 if point == "between commits" else 3}  # one agreed epoch: the newest both hold
    assert identical
    assert not worker_dir(out, 1).exists()  # the other worker's backup, beside --out, went with the finished run


@pytest.mark.slow
def test_two_failures_with_backups_every_few_epochs_still_resume_to_the_same_result(left_alone, tmp_path):
    from kill_points import env_killed_at

    digest, history = left_alone
    out = tmp_path / "run"
    ports = free_ports(2)
    args = [*ARGS, "--peer-timeout", "20"]
    # Backups every 2 epochs; worker 1 dies before committing epoch 6, which the chief commits: chief 6 and 4,
    # worker 1 4 and 2. The rerun backs up every 3 epochs from the agreed 4 (another interval, as when
    # --backup-interval changes); worker 1 dies again before committing 7.
    save = ("kerasreg.training.backup", "EpochBackup.save")
    for run, (every, epoch) in enumerate(((2, 6), (3, 7))):
        envs = [
            _env(ports, 0, env_killed_at(tmp_path / f"every{run}", *save, "False", backup_every=every)),
            _env(ports, 1, env_killed_at(tmp_path / f"kill{run}", *save, f"args[2] == {epoch}", backup_every=every)),
        ]
        results = _finish([_start(tmp_path, out, args, envs[i]) for i in range(2)])
        assert [code for code, _, _ in results] == [3, -signal.SIGKILL], results
    held = [json.loads((d / files.BACKUP / name).read_text())["epoch"] for d in (out, worker_dir(out, 1))
            for name in ("latest.json", "previous.json")]  # fmt: skip
    assert held == [7, 4, 4, 2]  # before the fix, the chief held 7 and 6: no epoch in common, progress lost
    resumed = _finish([_start(tmp_path, out, args, _env(ports, i)) for i in range(2)])
    assert [code for code, _, _ in resumed] == [0, 0], resumed
    assert any("4 epochs done, continuing at epoch 5" in stdout for _, stdout, _ in resumed)
    assert {_digest(stdout) for _, stdout, _ in resumed} == {digest}
    assert (out / files.HISTORY).read_bytes() == history


@pytest.mark.slow
def test_a_chief_killed_while_writing_its_results_resumes_from_the_final_commit(left_alone, tmp_path):
    from kill_points import env_killed_at

    digest, history = left_alone
    out = tmp_path / "run"
    ports = free_ports(2)
    args = [*ARGS, "--peer-timeout", "20"]
    hooked = env_killed_at(tmp_path / "hook", "kerasreg.pipeline", "write_results")
    results = _finish([_start(tmp_path, out, args, _env(ports, i, hooked if i == 0 else None)) for i in range(2)])
    assert [code for code, _, _ in results] == [-signal.SIGKILL, 3], results
    # Worker 1 kept its backup until the chief's results were on disk (before the fix it had removed it, and the
    # rerun started over from epoch 1).
    assert json.loads((worker_dir(out, 1) / files.BACKUP / "latest.json").read_text())["finished"]
    resumed = _finish([_start(tmp_path, out, args, _env(ports, i)) for i in range(2)])
    assert [code for code, _, _ in resumed] == [0, 0], resumed
    assert all("8 epochs done" in stdout for _, stdout, _ in resumed)
    assert {_digest(stdout) for _, stdout, _ in resumed} == {digest}
    assert (out / files.HISTORY).read_bytes() == history and (out / files.METRICS).is_file()


@pytest.mark.slow
def test_a_cluster_run_killed_during_its_l2_search_searches_again_to_the_same_result(tmp_path):
    from kill_points import env_killed_at

    auto = [*ARGS[:-2], "--l2-folds", "1"]  # without --l2: the default, auto, a search (on the split) and the refit
    ports = free_ports(2)
    alone = _finish([_start(tmp_path, tmp_path / "alone", auto, _env(ports, i)) for i in range(2)])
    assert [code for code, _, _ in alone] == [0, 0], alone
    # Worker 1 dies as the search's third strength (l2 = 1) begins: each worker checkpointed the search on its own.
    hooked = env_killed_at(tmp_path / "hook", "kerasreg.l2_search.path", "_train_point", "args[3] == 1.0")
    ports = free_ports(2)
    envs = [_env(ports, 0), _env(ports, 1, hooked)]
    killed = _finish([_start(tmp_path, tmp_path / "run", auto, envs[i]) for i in range(2)])
    assert [code for code, _, _ in killed] == [3, -signal.SIGKILL], killed
    resumed = _finish([_start(tmp_path, tmp_path / "run", auto, _env(ports, i)) for i in range(2)])
    assert [code for code, _, _ in resumed] == [0, 0], resumed
    assert {_digest(out) for _, out, _ in resumed} == {_digest(out) for _, out, _ in alone}
    assert (tmp_path / "run" / files.HISTORY).read_bytes() == (tmp_path / "alone" / files.HISTORY).read_bytes()


@pytest.mark.slow
def test_a_peer_that_stops_answering_ends_the_survivor_within_the_timeout(tmp_path):
    from kill_points import env_killed_at

    # Worker 1 freezes (SIGSTOP: a hung process, a cut network) as epoch 4 begins; its process stays.
    hooked = env_killed_at(tmp_path / "hook", *KILL_POINTS["mid-epoch"], signal_name="SIGSTOP")
    ports = free_ports(2)
    args = [*ARGS, "--peer-timeout", "4"]
    frozen = _start(tmp_path, tmp_path / "run", args, _env(ports, 1, hooked))
    survivor = _start(tmp_path, tmp_path / "run", args, _env(ports, 0))
    try:
        [(code, _, lines)] = _finish([survivor], timeout=90)
    finally:
        frozen.kill()  # its training child dies with it (PR_SET_PDEATHSIG)
    assert code == 3, lines
    assert len(lines) == 1
    said = re.fullmatch(
        rf"python -m kerasreg\.train: error: worker 1 \(127\.0\.0\.1:{ports[1]}\) (.*); this worker's backups are in "
        rf"{re.escape(str(tmp_path / 'run' / files.BACKUP))}; rerun the same command on every worker to resume\.",
        lines[0],
    )
    print(lines[0])
    # Whichever of TensorFlow's two clocks runs out first: the heartbeat or the collective's own timeout.
    assert said and said.group(1) in ("stopped answering (no heartbeat for 4 s)", "did not answer within 4 s"), lines
    assert json.loads((tmp_path / "run" / files.BACKUP / "latest.json").read_text())["epoch"] == 3  # resumable

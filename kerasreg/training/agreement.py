"""What a cluster's workers agree on before the first step: the options, the data, and the epoch to resume from.

Each worker sends what it has (its result-changing options, its dataset's identity,
the epochs its backups hold, or why it refuses to start) in one exchange; each then
decides the same thing from the same list. A worker that refuses, options or data
that differ, or backups that share no epoch stop every worker with one line and exit
code 2, before anything is written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from kerasreg.config import TrainConfig
from kerasreg.datasets import ImageDataset
from kerasreg.distribution.cluster import exchange
from kerasreg.distribution.strategy import StrategyChoice
from kerasreg.errors import RESTART, KerasregError

# Options that may differ between workers: the data's folder and the GPUs are the machine's own; how often
# to back up is the chief's to decide; how long to wait and what is printed do not change what is trained.
NOT_COMPARED_ACROSS_WORKERS = ("data_dir", "devices", "backup_interval", "peer_timeout", "print_cost_every")
START = (0, False)  # the epoch every worker holds: none trained


@dataclass(frozen=True)
class Agreement:
    """Where every worker resumes: the (epoch, finished) commit (START: none), and whether the finished L2
    search each holds is kept (True when every worker holds one, or no search runs)."""

    resume_at: tuple[int, bool]
    keep_search: bool


def agree(
    choice: StrategyChoice,
    config: TrainConfig,
    data: ImageDataset | None,
    commits: list[tuple[int, bool]],
    refusal: str | None,
    searched: bool = True,
) -> Agreement:
    """What every worker resumes from; KerasregError when the workers cannot train together (each raises the
    same line). `searched`: this worker holds a finished `--l2 auto` search (True when none runs).

    A search checkpointed part way is never resumed in a cluster (each worker took its own, by its own
    clock): unless every worker holds the finished search, all of them search again, to the same result.
    """
    mine = {
        "options": {k: v for k, v in config.to_dict().items() if k not in NOT_COMPARED_ACROSS_WORKERS},
        "dataset": None if data is None else dataset_identity(data),
        "commits": [list(commit) for commit in commits],
        "refusal": refusal,
        "searched": searched,
    }
    everyone = exchange(choice, mine)
    if refusal is not None:
        raise KerasregError(refusal)
    refused = [(i, worker["refusal"]) for i, worker in enumerate(everyone) if worker["refusal"] is not None]
    if refused:
        i, why = refused[0]
        raise KerasregError(f"worker {i} ({choice.peers[i]}) cannot start: {why}")
    for part, noun in (("options", "options"), ("dataset", "datasets")):
        differences = _differences([worker[part] for worker in everyone])
        if differences:
            raise KerasregError(
                f"the workers' {noun} differ: {'; '.join(differences)}. Give every worker the same "
                f"{'options' if part == 'options' else 'data (the same files on each machine)'}; nothing was written."
            )
    keep_search = all(worker["searched"] for worker in everyone)
    if not keep_search:
        return Agreement(START, False)  # a refit's commits come after the search: no worker can hold one
    return Agreement(resume_point([[tuple(c) for c in worker["commits"]] for worker in everyone]), True)


def resume_point(commits: list[list[tuple[int, bool]]]) -> tuple[int, bool]:
    """The newest commit every worker holds; START when a worker holds none; KerasregError when all hold some
    and no commit is common (left by a run that can no longer be resumed)."""
    common = set.intersection(*(set(worker) for worker in commits))
    if common:
        return max(common)
    if all(commits):
        held = "; ".join(
            f"worker {i}: epochs {', '.join(str(e) for e, _ in sorted(set(c)))}" for i, c in enumerate(commits)
        )
        raise KerasregError(
            f"the workers' backups share no epoch ({held}): they cannot be resumed together; "
            f"{RESTART.replace('pass --restart', 'rerun every worker with --restart')}."
        )
    return START


def dataset_identity(data: ImageDataset) -> dict:
    """What makes two workers' datasets the same one: the name, source, shapes, classes, and checksums of the labels
    and of every pixel (XXH3: 3.9 GB of pixels in well under a second; labels alone let two machines with other
    images agree). Where each worker read only its shard of the training images, those are not compared (no two
    workers hold the same ones): the labels of every image and the test images still are."""
    import xxhash

    labels = hashlib.sha256()
    for array in (data.train_labels, data.test_labels):
        labels.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    pixels = xxhash.xxh3_128()
    for array in (data.train_images, data.test_images) if data.shard is None else (data.test_images,):
        pixels.update(np.ascontiguousarray(array))
    return {
        "name": data.name,
        "source": data.source.split(":", 1)[0].split("@", 1)[0],  # files or tfds, not the folder: it is the machine's
        "task": data.task,
        "input_shape": list(data.input_shape),
        "class_names": list(data.class_names),
        "n_train": int(len(data.train_labels)),
        "n_test": int(len(data.test_labels)),
        "labels_sha256": labels.hexdigest()[:16],
        "pixels_xxh3": pixels.hexdigest()[:16],
    }


def _differences(values: list[dict]) -> list[str]:
    """'key (worker 0: a, worker 1: b)' for every key whose value is not the same on every worker."""
    keys = sorted({k for value in values for k in value})
    return [
        f"{k} ({', '.join(f'worker {i}: {value.get(k)!r}' for i, value in enumerate(values))})"
        for k in keys
        if len({repr(value.get(k)) for value in values}) > 1
    ]


def chief_interval(choice: StrategyChoice):
    """`EpochBackup`'s `agree_every` for a cluster: every worker takes the chief's number of epochs."""
    return lambda mine: int(exchange(choice, mine)[0])

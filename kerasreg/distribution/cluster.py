"""A cluster's workers: what they exchange, and the one line when one is lost.

TensorFlow's own settings bound every wait (kerasreg/distribution/coordination.py,
no timer of ours). What they raise (UnavailableError when a peer's process is gone,
DeadlineExceededError past a timeout) names the task in its text; `peer_lost` turns
it into one line, exit 3. The exchange rides on the strategy's own collectives, so it
shares their timeout and their failures.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kerasreg.distribution.strategy import StrategyChoice, parse_tf_config
from kerasreg.errors import PeerLost

RESUME = "rerun the same command on every worker to resume"
_TASK = re.compile(r"/job:(chief|worker)(?:/replica:\d+)?/task:(\d+)")
_PEER_ERRORS = ("UnavailableError", "DeadlineExceededError", "AbortedError", "CancelledError")


def is_peer_failure(error: BaseException) -> bool:
    """Whether `error` is TensorFlow's word that a peer is gone or late (not a bug of ours)."""
    return type(error).__name__ in _PEER_ERRORS and type(error).__module__.startswith("tensorflow")


def peer_lost(error: BaseException, tf_config: str, peer_timeout: float, backups: str) -> PeerLost:
    """The one line for a peer failure: which worker (index and address), what happened, where this worker's
    backups are, and how to resume."""
    cluster = parse_tf_config(tf_config) or {"peers": [], "cluster": {}, "type": "worker", "index": 0}
    has_chief = bool(cluster["cluster"].get("chief"))
    me = _index(cluster["type"], cluster["index"], has_chief)
    text = str(error)
    others = [i for i in range(len(cluster["peers"])) if i != me]
    named = [_index(job, int(task), has_chief) for job, task in _TASK.findall(text)]
    # A collective's own timeout names no task: with one other worker, it is that one.
    suspects = [i for i in named if i in others][:1] or others
    if len(suspects) == 1:
        who = f"worker {suspects[0]} ({cluster['peers'][suspects[0]]})"
    elif suspects:
        who = "one of " + ", ".join(f"worker {i} ({cluster['peers'][i]})" for i in suspects)
    else:
        who = "a peer"
    if "stopped sending heartbeats" in text:
        what = f"stopped answering (no heartbeat for {peer_timeout:g} s)"
    elif "register" in text.lower() and type(error).__name__ == "DeadlineExceededError":
        what = f"did not join the cluster within {peer_timeout:g} s"
    elif type(error).__name__ == "DeadlineExceededError":
        what = f"did not answer within {peer_timeout:g} s"
    else:
        what = "was lost: its process ended or its machine cannot be reached"
    return PeerLost(f"{who} {what}; this worker's backups are in {backups}; {RESUME}.")


def _index(job: str, task: int, has_chief: bool) -> int:
    """A task's worker index as kerasreg counts them: the chief first, then the workers."""
    return task + 1 if has_chief and job == "worker" else task


def exchange(choice: StrategyChoice, value: Any) -> list:
    """Every worker's `value` (anything JSON can hold), in worker order: the same call must run on every worker.

    Two all-gathers: the lengths, then the bytes padded to the longest.
    """
    import numpy as np

    data = np.frombuffer(json.dumps(value, sort_keys=True).encode(), np.uint8).astype(np.int32)
    lengths = _gather(choice, np.array([len(data)], np.int32))
    padded = np.zeros((1, int(lengths.max())), np.int32)
    padded[0, : len(data)] = data
    rows = _gather(choice, padded)
    return [json.loads(row[:n].astype(np.uint8).tobytes()) for row, n in zip(rows, lengths, strict=True)]


def _gather(choice: StrategyChoice, array) -> Any:
    """`array` (1, ...) of every worker, concatenated: one row per worker."""
    import tensorflow as tf

    strategy = choice.strategy
    local = tf.constant(array)

    # Timed, unlike the training's collectives (kerasreg/distribution/strategy.py): a run makes a few of these.
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=choice.peer_timeout)

    @tf.function
    def gather():
        return strategy.run(lambda: tf.distribute.get_replica_context().all_gather(local, axis=0, options=options))

    rows = strategy.experimental_local_results(gather())[0].numpy()
    return rows[:: max(1, len(rows) // choice.num_workers)]  # one replica per worker: each has the same value

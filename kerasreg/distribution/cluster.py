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

    All-gathers of one fixed shape, `_BLOCK` int32 at a time: first the lengths, then the bytes, four to an int32,
    padded to the longest. One shape, so one trace of the gather serves the whole run (a gather traced anew for
    each shape made TensorFlow warn of retracing on stderr from a run's fifth exchange).
    """
    import numpy as np

    data = json.dumps(value, sort_keys=True).encode()
    header = np.zeros((1, _BLOCK), np.int32)
    header[0, 0] = len(data)
    lengths = _gather(choice, header)[:, 0]
    words = -(-int(lengths.max()) // 4)
    blocks = max(1, -(-words // _BLOCK))
    padded = np.zeros(blocks * _BLOCK * 4, np.uint8)
    padded[: len(data)] = np.frombuffer(data, np.uint8)
    padded = padded.view(np.int32).reshape(blocks, 1, _BLOCK)
    rows = np.concatenate([_gather(choice, block) for block in padded], axis=1).view(np.uint8)
    return [json.loads(row[:n].tobytes()) for row, n in zip(rows, lengths, strict=True)]


_BLOCK = 16384  # int32 an all-gather: 64 KiB of an exchange's bytes
_GATHERS: dict = {}


def _gather(choice: StrategyChoice, array) -> Any:
    """`array` (1, _BLOCK) int32 of every worker, concatenated: one row per worker."""
    rows = choice.strategy.experimental_local_results(_gather_function(choice)(array))[0].numpy()
    return rows[:: max(1, len(rows) // choice.num_workers)]  # one replica per worker: each has the same value


def _gather_function(choice: StrategyChoice):
    """One traced all-gather per strategy, for every exchange of the run."""
    import tensorflow as tf

    key = (id(choice.strategy), choice.peer_timeout)
    if key not in _GATHERS:
        strategy = choice.strategy
        # Timed, unlike the training's collectives (kerasreg/distribution/strategy.py): a run makes a few of these.
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=choice.peer_timeout)

        @tf.function(input_signature=[tf.TensorSpec([1, _BLOCK], tf.int32)])
        def gather(local):
            # The identity is made in the replica's device scope: a function's input has no device, which the gather
            # refuses ("destinations can not be empty").
            def gather_one():
                return tf.distribute.get_replica_context().all_gather(tf.identity(local), axis=0, options=options)

            return strategy.run(gather_one)

        _GATHERS[key] = gather
    return _GATHERS[key]

"""Choosing the `tf.distribute` strategy: one function decides, config.json records it.

    TF_CONFIG names a cluster     -> MultiWorkerMirroredStrategy (collective ops)
    two or more GPUs visible      -> MirroredStrategy over all of them (or --devices)
    otherwise                     -> the default strategy on the one GPU or the CPU

`plan_strategy` makes the decision from plain values (so every branch is
testable on a CPU); `choose_strategy` reads the environment and builds it. A
multi-worker strategy must be built before TensorFlow runs any op, so call
`choose_strategy` first thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kerasreg.errors import KerasregError

COLLECTIVE_CHOICES = ("auto", "ring", "nccl")
# One strategy per device set per process: a second MirroredStrategy over the same
# devices reuses TensorFlow's collective instance keys, and its first all-reduce
# then aborts with "Shape mismatch in the collective instance" (seen on TF 2.21).
_BUILT: dict[tuple, object] = {}


@dataclass(frozen=True)
class StrategyPlan:
    """Which strategy to build, on which devices, and this process's role."""

    kind: str  # "default" | "mirrored" | "multi_worker"
    devices: tuple[str, ...]
    is_chief: bool = True
    worker_index: int = 0
    num_workers: int = 1
    collective: str = "auto"
    peers: tuple[str, ...] = ()  # every worker's host:port, by worker index (the chief first)
    peer_timeout: float = 120.0


@dataclass(frozen=True)
class StrategyChoice:
    """The strategy in force and why: what config.json records about distribution."""

    strategy: Any  # tf.distribute.Strategy
    kind: str
    devices: tuple[str, ...]
    is_chief: bool = True  # only the chief writes the run directory
    worker_index: int = 0
    num_workers: int = 1
    peers: tuple[str, ...] = ()
    peer_timeout: float = 120.0

    @property
    def replicas(self) -> int:
        """Replicas that train in sync; the global batch is split across them."""
        return int(self.strategy.num_replicas_in_sync)

    def describe(self) -> dict:
        """A JSON-ready summary for config.json."""
        return {
            "kind": self.kind,
            "replicas": self.replicas,
            "devices": list(self.devices),
            "is_chief": self.is_chief,
            "worker_index": self.worker_index,
            "num_workers": self.num_workers,
        }


def parse_tf_config(text: str | None) -> dict | None:
    """The TF_CONFIG cluster description, or None when it names no cluster."""
    if not text:
        return None
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config.get("task", {})
        workers = list(cluster.get("chief", [])) + list(cluster.get("worker", []))
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise KerasregError(
            'TF_CONFIG is not valid: expected {"cluster": {"worker": ["host:port", ...]}, '
            '"task": {"type": "worker", "index": 0}}.'
        ) from None
    if kind not in ("chief", "worker") or not 0 <= index < len(cluster.get(kind, [])):
        raise KerasregError(f"TF_CONFIG task {kind}:{index} is not in its cluster {sorted(cluster)}.")
    return {"cluster": cluster, "type": kind, "index": index, "num_workers": len(workers), "peers": workers}


def plan_strategy(
    tf_config: str | None,
    gpus: list[str],
    devices: str | None = None,
    collective: str = "auto",
    peer_timeout: float = 120.0,
) -> StrategyPlan:
    """Decide the strategy for a TF_CONFIG value, the visible GPUs and a --devices choice."""
    if collective not in COLLECTIVE_CHOICES:
        raise KerasregError(f"Received collective={collective!r}. Expected one of: {', '.join(COLLECTIVE_CHOICES)}.")
    cluster = parse_tf_config(tf_config)
    if devices:
        gpus = _select_devices(devices, gpus)
    if cluster is not None:
        has_chief = bool(cluster["cluster"].get("chief"))
        is_chief = cluster["type"] == "chief" or (not has_chief and cluster["index"] == 0)
        index = cluster["index"] + (1 if has_chief and cluster["type"] == "worker" else 0)
        return StrategyPlan(
            "multi_worker",
            tuple(gpus) or ("/CPU:0",),
            is_chief,
            index,
            cluster["num_workers"],
            collective,
            tuple(str(peer) for peer in cluster["peers"]),
            peer_timeout,
        )
    if len(gpus) > 1:
        return StrategyPlan("mirrored", tuple(gpus))
    return StrategyPlan("default", (gpus[0] if gpus else "/CPU:0",))


def _select_devices(devices: str, gpus: list[str]) -> list[str]:
    try:
        indices = [int(part) for part in devices.split(",")]
    except ValueError:
        raise KerasregError(f"Received devices={devices!r}. Expected GPU indices like 0,2.") from None
    bad = [i for i in indices if not 0 <= i < len(gpus)] + [i for i in indices if indices.count(i) > 1]
    if bad:
        raise KerasregError(
            f"Received devices={devices!r}. {len(gpus)} GPUs are visible"
            + (f": indices 0..{len(gpus) - 1}, each once." if gpus else "; --devices needs at least one.")
        )
    return [gpus[i] for i in indices]


def even_global_batch(batch_size: int, replicas: int) -> int:
    """The largest global batch <= batch_size that splits evenly across replicas.

    tf.distribute needs equal per-replica batches (Keras's fit fails on 127 over 2).
    """
    fitted = batch_size - batch_size % replicas
    if fitted == 0:
        raise KerasregError(
            f"Received batch_size={batch_size}. Expected at least one example for each of the {replicas} replicas."
        )
    return fitted


def build_strategy(plan: StrategyPlan) -> StrategyChoice:
    """Create the tf.distribute strategy that `plan` describes (once per process and device set)."""
    import tensorflow as tf

    if plan.kind == "default":
        strategy = tf.distribute.get_strategy()
    else:
        key = (plan.kind, plan.devices, plan.collective)
        if key not in _BUILT:
            _BUILT[key] = _new_strategy(plan)
        strategy = _BUILT[key]
    return StrategyChoice(
        strategy,
        plan.kind,
        plan.devices,
        plan.is_chief,
        plan.worker_index,
        plan.num_workers,
        plan.peers,
        plan.peer_timeout,
    )


def _new_strategy(plan: StrategyPlan):
    import tensorflow as tf

    if plan.kind == "mirrored":
        return tf.distribute.MirroredStrategy(list(plan.devices))
    implementation = {
        "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
        "ring": tf.distribute.experimental.CommunicationImplementation.RING,
        "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
    }[plan.collective]
    from kerasreg.distribution.coordination import configure_coordination

    configure_coordination(plan.peer_timeout)
    # Said before the wait, which is silent: the others may take minutes to come (and Ctrl-C ends it at once).
    print(
        f"worker {plan.worker_index} of {plan.num_workers}: waiting up to {plan.peer_timeout:g} s for the others "
        "to join the cluster",
        flush=True,
    )
    # No timeout on the training's collectives: TensorFlow (2.21, base_collective_executor.cc) starts a thread per
    # timed collective that sleeps out the timeout, so a worker at batch 8 grew to 14,000 threads in 16 s and died
    # (std::system_error). A peer that dies or stops is found by the coordination service's heartbeat within
    # --peer-timeout instead; the few exchanges of a run's start keep a timeout of their own (cluster.exchange).
    return tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(implementation=implementation)
    )


def choose_strategy(
    devices: str | None = None, collective: str = "auto", tf_config: str | None = None, peer_timeout: float = 120.0
) -> StrategyChoice:
    """Read TF_CONFIG and the visible GPUs (memory growth on), then build the strategy.

    `tf_config` is the TF_CONFIG text; the caller reads it from the environment.
    """
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)  # share the GPU; don't grab it all at start
        except RuntimeError:
            pass  # already initialised (a second run in one process): growth was set the first time
    gpus = [f"/gpu:{i}" for i, _ in enumerate(tf.config.list_physical_devices("GPU"))]
    return build_strategy(plan_strategy(tf_config, gpus, devices, collective, peer_timeout))


def wrap_strategy(strategy: Any) -> StrategyChoice:
    """Describe a strategy given from outside (tests, notebooks) as a StrategyChoice."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        resolver = strategy.cluster_resolver
        task, index = resolver.task_type, int(resolver.task_id or 0)
        is_chief = task in (None, "chief") or (
            task == "worker" and index == 0 and "chief" not in resolver.cluster_spec().as_dict()
        )
        devices = tuple(getattr(strategy.extended, "worker_devices", ()) or ())
        return StrategyChoice(
            strategy,
            "multi_worker",
            devices,
            is_chief,
            index,
            max(1, sum(len(v) for v in resolver.cluster_spec().as_dict().values())),
        )
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        kind = "mirrored"
    else:
        kind = "default"
    devices = tuple(getattr(strategy.extended, "worker_devices", ()) or ())
    return StrategyChoice(strategy, kind, devices)

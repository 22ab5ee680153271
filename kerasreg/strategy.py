"""Choosing the `tf.distribute` strategy: one function decides, config.json records it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StrategyChoice:
    """The strategy in force and why: what config.json records about distribution."""

    strategy: Any  # tf.distribute.Strategy
    kind: str  # "default" | "mirrored" | "multi_worker"
    devices: tuple[str, ...]
    is_chief: bool = True  # only the chief writes the run directory

    @property
    def replicas(self) -> int:
        """Replicas that train in sync; the global batch is split across them."""
        return int(self.strategy.num_replicas_in_sync)

    def describe(self) -> dict:
        """A JSON-ready summary for config.json."""
        return {"kind": self.kind, "replicas": self.replicas, "devices": list(self.devices), "is_chief": self.is_chief}


def choose_strategy(gpus: list[str] | None = None) -> StrategyChoice:
    """MirroredStrategy over every visible GPU when there are two or more, else the default.

    `gpus` are logical device names (default: every visible GPU).
    """
    import tensorflow as tf

    if gpus is None:
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if len(gpus) > 1:
        return StrategyChoice(tf.distribute.MirroredStrategy(gpus), "mirrored", tuple(gpus))
    device = gpus[0] if gpus else "/CPU:0"
    return StrategyChoice(tf.distribute.get_strategy(), "default", (device,))


def wrap_strategy(strategy: Any) -> StrategyChoice:
    """Describe a strategy given from outside (tests, notebooks) as a StrategyChoice."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        kind = "multi_worker"
    elif isinstance(strategy, tf.distribute.MirroredStrategy):
        kind = "mirrored"
    else:
        kind = "default"
    devices = tuple(getattr(strategy.extended, "worker_devices", ()) or ())
    return StrategyChoice(strategy, kind, devices)

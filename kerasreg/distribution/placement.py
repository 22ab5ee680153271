"""Where the training features live: shared in host memory, or copied once to each accelerator replica.

Every step, each replica gathers its slice of a batch drawn from all the training
examples (a global shuffle, the same on every worker). From host memory that is a
host-to-device copy of every batch, every epoch; from a copy on the replica's own
device it is a gather in device memory. So an accelerator replica gets its own
whole copy, made once before the first epoch, where one fits; CPU replicas share
the host's (a copy each would only double the memory).

The rule is `place_features`, a function of plain values (tested on this CPU-only
machine with logical devices, tests/test_placement.py); `free_accelerator_bytes`
asks the driver. Not measured here, for want of a GPU: the speed gained, and the
free memory nvidia-smi reports against what TensorFlow's allocator will grant.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

HOST, REPLICAS = "host", "replicas"
# At most this share of a device's free memory goes to the features: the rest is for
# TensorFlow's own workspace (the batch's gather, logits and gradients, cuBLAS).
HEADROOM = 0.5


@dataclass(frozen=True)
class Placement:
    """The decision and its reason, as config.json records it."""

    where: str  # HOST or REPLICAS
    reason: str


def device_kind(device: str) -> str:
    """'GPU', 'TPU' or 'CPU' from a TensorFlow device name ('/job:worker/replica:0/task:1/device:GPU:0', '/gpu:1')."""
    name = device.rsplit("/", 1)[-1].upper().removeprefix("DEVICE:")
    return name.split(":", 1)[0]


def place_features(feature_bytes: int, devices: list[str], free_bytes: list[int | None]) -> Placement:
    """Replicas when every replica is an accelerator with room for a whole copy (HEADROOM of its free memory)."""
    mib = feature_bytes / 2**20
    if not devices or any(device_kind(d) not in ("GPU", "TPU") for d in devices):
        return Placement(HOST, "CPU replicas share host memory: a copy each would only double it")
    for device, free in zip(devices, free_bytes, strict=True):
        if free is None:
            return Placement(HOST, f"the free memory of {device} is unknown")
        if feature_bytes > HEADROOM * free:
            return Placement(HOST, f"{mib:.0f} MiB of features exceed half of {device}'s {free / 2**20:.0f} MiB free")
    return Placement(REPLICAS, f"{mib:.0f} MiB of features copied once to each of {len(devices)} replicas")


def replica_devices(strategy) -> list[str]:
    """The devices of this worker's replicas; for the default strategy its one device (the first GPU, or the CPU)."""
    import tensorflow as tf

    try:
        return list(strategy.extended.worker_devices)
    except (RuntimeError, AttributeError):  # "worker_devices() method unsupported by default tf.distribute.Strategy"
        gpus = tf.config.list_logical_devices("GPU")
        return [gpus[0].name if gpus else tf.config.list_logical_devices("CPU")[0].name]


def free_accelerator_bytes(device: str) -> int | None:
    """The free memory of a GPU as nvidia-smi reports it; None for other devices or when it cannot tell."""
    if device_kind(device) != "GPU" or shutil.which("nvidia-smi") is None:
        return None
    index = int(device.rsplit(":", 1)[-1])
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else None
    physical = ids[index] if ids is not None and index < len(ids) else str(index)
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--id={physical}", "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
        return int(out.strip().splitlines()[0]) * 2**20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None

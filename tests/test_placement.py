"""Where the training features live: the rule, and a copy per replica that trains exactly as the shared host copy."""

import numpy as np
import pytest

from kerasreg.distribution.placement import HEADROOM, HOST, REPLICAS, device_kind, place_features

GIB = 2**30


@pytest.mark.parametrize(
    ("device", "kind"),
    [
        ("/job:localhost/replica:0/task:0/device:GPU:1", "GPU"),
        ("/job:worker/replica:0/task:1/device:CPU:0", "CPU"),
        ("/gpu:0", "GPU"),
        ("/device:TPU:3", "TPU"),
    ],
)
def test_device_kind_reads_tensorflow_device_names(device, kind):
    assert device_kind(device) == kind


def test_cpu_replicas_share_the_host_copy_whatever_the_memory():
    decision = place_features(100 * 2**20, ["/cpu:0", "/cpu:1"], [None, None])
    assert decision.where == HOST and "share host memory" in decision.reason
    assert place_features(1, ["/gpu:0", "/cpu:0"], [GIB, None]).where == HOST  # any CPU replica: host


def test_accelerators_get_a_copy_each_when_it_fits_in_their_headroom():
    features = 614 * 2**20  # CIFAR-10's 50,000 training images as float32
    fits = place_features(features, ["/gpu:0", "/gpu:1"], [16 * GIB, 16 * GIB])
    assert fits.where == REPLICAS and "2 replicas" in fits.reason
    exactly = place_features(int(HEADROOM * 2 * GIB), ["/gpu:0"], [2 * GIB])
    assert exactly.where == REPLICAS
    one_short = place_features(features, ["/gpu:0", "/gpu:1"], [16 * GIB, GIB])
    assert one_short.where == HOST and "/gpu:1" in one_short.reason
    unknown = place_features(features, ["/gpu:0"], [None])
    assert unknown.where == HOST and "unknown" in unknown.reason


def _trained(strategy, placement, features, labels, epochs=3):
    import keras

    from kerasreg.model import build_model
    from kerasreg.training.compiled_epoch import CompiledEpoch, epoch_data

    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build_model((8, 8, 1), 10, "multiclass")
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
        model.optimizer.build(model.trainable_variables)
    loop = CompiledEpoch(model, strategy, "multiclass", 100, 0.01)
    train = epoch_data(features[:1000], labels[:1000], "multiclass", None)
    val = epoch_data(features[1000:], labels[1000:], "multiclass", None)
    loop.compile(train, val, placement=placement)
    logs = [loop.run_epoch(0, epoch) for epoch in range(epochs)]
    return loop, logs, [np.asarray(w) for w in model.get_layer("classifier").get_weights()]


def test_a_copy_on_each_replica_trains_exactly_as_the_shared_host_copy(two_cpu_strategy):
    # On two logical CPUs: the copies are real (one per device) and every step reads its own.
    from kerasreg.datasets import load_dataset
    from kerasreg.datasets.views import aligned_empty

    data = load_dataset("digits")
    features = aligned_empty((len(data.train_images), 64), np.float32)
    features[:] = data.train_images.reshape(len(features), -1) / 16.0
    host_loop, host_logs, host_weights = _trained(two_cpu_strategy, HOST, features, data.train_labels)
    copy_loop, copy_logs, copy_weights = _trained(two_cpu_strategy, REPLICAS, features, data.train_labels)
    assert copy_loop.placement.where == REPLICAS and host_loop.placement.where == HOST
    devices = two_cpu_strategy.extended.worker_devices
    assert [d.lower() for d in copy_loop.feature_devices] == [d.lower() for d in devices]
    assert copy_logs == host_logs
    for a, b in zip(host_weights, copy_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    default_loop, _, _ = _trained(two_cpu_strategy, None, features, data.train_labels, epochs=1)
    assert default_loop.placement.where == HOST and "share host memory" in default_loop.placement.reason


def test_host_features_are_read_in_place_not_copied():
    from kerasreg.datasets.views import aligned_empty
    from kerasreg.training.compiled_epoch import host_tensor

    features = aligned_empty((300, 784), np.float32)
    features[:] = 1.0
    tensor = host_tensor(features)
    features[0, 0] = 5.0  # the tensor sees the array's own memory
    assert float(tensor[0, 0]) == 5.0
    unaligned = np.ones(301 * 784 + 1, np.float32)[1:].reshape(301, 784)  # 4 bytes past an aligned start at best
    copied = host_tensor(unaligned)
    unaligned[0, 0] = 7.0
    assert float(copied[0, 0]) == 1.0

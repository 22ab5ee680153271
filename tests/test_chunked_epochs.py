"""Epochs run several to a compiled call: the same training as one call an epoch, and, for plain full-batch
descent, the same iterates through the images' Gram matrix (kerasreg/training/gram_descent.py)."""

import keras
import numpy as np
import pytest

from kerasreg.datasets.views import aligned_empty
from kerasreg.model import build_model
from kerasreg.training import gram_descent
from kerasreg.training.compiled_epoch import CompiledEpoch, epoch_data


def _data(n: int, d: int, classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    features = aligned_empty((n, d), np.float32)
    features[:] = rng.random((n, d), dtype=np.float32)
    labels = rng.integers(0, classes, n)
    return features, labels


def _loop(features, labels, task, *, optimizer, batch, l2=0.0, weights=None, init="glorot", strategy=None):
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(0)
    classes = int(labels.max()) + 1
    with strategy.scope():
        model = build_model((1, 1, features.shape[1]), max(classes, 2), task, init=init)
        model.compile(optimizer=optimizer)
        model.optimizer.build(model.trainable_variables)
    loop = CompiledEpoch(model, strategy, task, batch, l2)
    return loop.compile(epoch_data(features, labels, task, weights), None), model


def _weights(model):
    return [np.asarray(w) for w in model.get_layer("classifier").get_weights()]


@pytest.mark.parametrize(
    ("task", "classes", "weighted"),
    [("binary", 2, False), ("multiclass", 4, True)],
)
def test_gram_descent_follows_plain_full_batch_descent(task, classes, weighted):
    features, labels = _data(40, 300, classes)
    weights = np.where(labels == 0, 2.0, 0.5).astype(np.float32) if weighted else None
    plain, plain_model = _loop(features, labels, task, optimizer=keras.optimizers.SGD(0.05), batch=40, weights=weights)
    plain_logs = [plain.run_epoch(0, e) for e in range(60)]
    fast, fast_model = _loop(features, labels, task, optimizer=keras.optimizers.SGD(0.05), batch=40, weights=weights)
    assert fast.use_chunks(total_epochs=60, chunk=25) == "gram"
    before = fast.objective()
    rows = []
    for first, count in ((0, 25), (25, 25), (50, 10)):  # three calls: the weights carry over between them
        rows += fast.run_epochs(0, first, count)[1]
    assert before["loss"] == pytest.approx(np.log(2) if task == "binary" else plain_logs[0]["loss"], abs=0.2)
    np.testing.assert_allclose([r["loss"] for r in rows], [r["loss"] for r in plain_logs], rtol=2e-5, atol=1e-6)
    assert [r["accuracy"] for r in rows] == pytest.approx([r["accuracy"] for r in plain_logs], abs=1 / 40 + 1e-6)
    for a, b in zip(_weights(fast_model), _weights(plain_model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)
    assert int(fast_model.optimizer.iterations.numpy()) == int(plain_model.optimizer.iterations.numpy()) == 60


def test_chunked_epochs_train_exactly_as_one_call_an_epoch():
    # Adam over mini-batches: not Gram's case; the epoch function in a loop, the same arithmetic.
    features, labels = _data(100, 50, 3)
    one, one_model = _loop(features, labels, "multiclass", optimizer=keras.optimizers.Adam(0.01), batch=32, l2=0.01)
    one_logs = [one.run_epoch(5, e) for e in range(12)]
    many, many_model = _loop(features, labels, "multiclass", optimizer=keras.optimizers.Adam(0.01), batch=32, l2=0.01)
    assert many.use_chunks(total_epochs=12, chunk=8) == "epochs"
    before, first = many.run_epochs(5, 0, 8)
    _, rest = many.run_epochs(5, 8, 4)
    assert [r["loss"] for r in first + rest] == [r["loss"] for r in one_logs]
    for a, b in zip(_weights(many_model), _weights(one_model), strict=True):
        np.testing.assert_array_equal(a, b)
    assert before["loss"] > one_logs[0]["loss"]  # the logs before the first epoch: the starting weights'


def test_chunks_on_two_replicas_train_as_one_call_an_epoch(two_cpu_strategy):
    features, labels = _data(64, 20, 2)
    kwargs = {"optimizer": None, "batch": 16, "strategy": two_cpu_strategy}
    one, one_model = _loop(features, labels, "binary", **{**kwargs, "optimizer": keras.optimizers.SGD(0.1)})
    one_logs = [one.run_epoch(1, e) for e in range(6)]
    many, many_model = _loop(features, labels, "binary", **{**kwargs, "optimizer": keras.optimizers.SGD(0.1)})
    assert many.use_chunks(total_epochs=6, chunk=4) == "epochs"  # two replicas: never Gram's
    rows = many.run_epochs(1, 0, 4)[1] + many.run_epochs(1, 4, 2)[1]
    np.testing.assert_allclose([r["loss"] for r in rows], [r["loss"] for r in one_logs], rtol=1e-6)
    for a, b in zip(_weights(many_model), _weights(one_model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("optimizer", "batch", "l2", "why"),
    [
        (lambda: keras.optimizers.Adam(0.01), 40, 0.0, "Adam keeps moments"),
        (lambda: keras.optimizers.SGD(0.01, momentum=0.9), 40, 0.0, "momentum"),
        (lambda: keras.optimizers.SGD(0.01), 16, 0.0, "mini-batches"),
        (lambda: keras.optimizers.SGD(0.01), 40, 0.1, "L2 shrinks the weights"),
    ],
)
def test_gram_descent_is_chosen_only_where_it_is_plain_descent(optimizer, batch, l2, why):
    features, labels = _data(40, 300, 2)
    loop, _ = _loop(features, labels, "binary", optimizer=optimizer(), batch=batch, l2=l2)
    assert loop.use_chunks(total_epochs=2000, chunk=512) == "epochs", why


def test_gram_descent_is_chosen_only_where_it_costs_less():
    # The course's 209 images of 12,288 pixels: 2,000 steps pay for K many times over; 10 do not.
    assert gram_descent.pays(209, 12288, 1, 2000, 512)
    assert not gram_descent.pays(209, 12288, 1, 10, 512)
    assert not gram_descent.pays(5000, 784, 10, 2000, 512)  # more images than pixels: K is the larger product

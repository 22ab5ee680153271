"""Wide inputs train through `_wide_matmul`, whose kernel gradient is computed in the faster order: the same
training as the layer's own autodiff, within float32 rounding."""

import keras
import numpy as np
import pytest

from kerasreg.datasets.views import aligned_empty
from kerasreg.model import build_model
from kerasreg.training import compiled_epoch
from kerasreg.training.compiled_epoch import CompiledEpoch, epoch_data


def _trained(task: str, classes: int, wide_from: int, monkeypatch) -> tuple[list[np.ndarray], list[float]]:
    import tensorflow as tf

    monkeypatch.setattr(compiled_epoch, "WIDE_FEATURES", wide_from)
    monkeypatch.setattr(compiled_epoch, "WIDE_BATCH", wide_from)
    rng = np.random.default_rng(0)
    pixels = aligned_empty((300, 1200), np.uint8)
    pixels[:] = rng.integers(0, 256, pixels.shape, dtype=np.uint8)
    labels = rng.integers(0, classes, len(pixels))
    keras.utils.set_random_seed(0)
    model = build_model((20, 20, 3), classes, task, mean=np.full(1200, 0.5, np.float32), variance=np.full(1200, 0.08))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.optimizer.build(model.trainable_variables)
    loop = CompiledEpoch(model, tf.distribute.get_strategy(), task, 64, 0.01)
    rows = np.arange(0, 300, 2)  # every other image: a part of the pixels, as a split is
    loop.compile(epoch_data(pixels, labels[rows], task, None, rows), None)
    losses = [loop.run_epoch(0, epoch)["loss"] for epoch in range(3)]
    return [np.asarray(w) for w in model.get_layer("classifier").get_weights()], losses


@pytest.mark.parametrize(("task", "classes"), [("binary", 2), ("multiclass", 10)])
def test_wide_steps_train_as_the_layers_own_gradient_does(task, classes, monkeypatch):
    calls = []
    wide = compiled_epoch._wide_matmul
    monkeypatch.setattr(compiled_epoch, "_wide_matmul", lambda *a: calls.append(1) or wide(*a))
    weights, losses = _trained(task, classes, 1024, monkeypatch)
    assert calls  # 1,200 features: the wide path was traced (a batch of 64 would not have chosen it)
    calls.clear()
    reference, reference_losses = _trained(task, classes, 10**9, monkeypatch)
    assert not calls  # and here the layer's own call
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(losses, reference_losses, rtol=1e-5)
    for ours, theirs in zip(weights, reference, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)

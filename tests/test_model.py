import keras
import numpy as np
import pytest

from kerasreg.model import VARIANCE_FLOOR, build_model, pixel_statistics


@pytest.mark.parametrize(
    "shape, classes, task, params",
    [
        ((8, 8, 1), 10, "multiclass", 64 * 10 + 10),
        ((28, 28, 1), 10, "multiclass", 7850),
        ((32, 32, 3), 10, "multiclass", 30730),
        ((32, 32, 3), 2, "binary", 3072 + 1),
        ((64, 64, 3), 2, "binary", 12288 + 1),
    ],
)
def test_model_takes_raw_pixels_and_has_the_textbook_parameter_count(shape, classes, task, params):
    model = build_model(shape, classes, task)
    assert model.count_params() == params
    assert model.inputs[0].dtype == "uint8" and tuple(model.inputs[0].shape[1:]) == shape
    images = np.random.default_rng(0).integers(0, 256, (3, *shape), dtype=np.uint8)
    out = np.asarray(model(images))
    if task == "binary":
        assert out.shape == (3, 1) and ((out > 0) & (out < 1)).all()
    else:
        assert out.shape == (3, classes)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_standardisation_lives_in_the_graph():
    images = np.random.default_rng(0).integers(0, 256, (50, 8, 8, 1), dtype=np.uint8)
    mean, variance = pixel_statistics(images)
    model = build_model((8, 8, 1), 10, "multiclass", mean=mean, variance=variance)
    standardised = model.get_layer("standardize")(model.get_layer("flatten")(images.astype("float32") / 255.0))
    np.testing.assert_allclose(np.asarray(standardised).mean(axis=0), 0.0, atol=1e-4)
    assert model.count_params() == 650  # the statistics are not trainable parameters
    # The classifier gives logits (the training loop's stable loss reads them); softmax is a layer of its own.
    logits = model.get_layer("classifier")(standardised)
    probabilities = np.asarray(model(images))
    np.testing.assert_allclose(probabilities, np.asarray(keras.ops.softmax(logits)), atol=1e-6)


def test_pixel_statistics_floor_constant_pixels():
    images = np.zeros((10, 2, 2, 1), np.uint8)
    images[:, 0, 0, 0] = np.arange(10) * 25
    mean, variance = pixel_statistics(images)
    assert mean[1] == 0 and variance[1] == pytest.approx(VARIANCE_FLOOR)
    assert variance[0] == pytest.approx(
        ((np.arange(10) * 25 / 255.0) ** 2).mean() - (np.arange(10) * 25 / 255.0).mean() ** 2, rel=1e-5
    )


@pytest.mark.parametrize(
    "task, classes, normalize", [("multiclass", 10, True), ("binary", 2, True), ("multiclass", 3, False)]
)
def test_folded_affine_is_the_whole_model_as_one_map(task, classes, normalize):
    from kerasreg.model import folded_affine

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 6, 5, 3), dtype=np.uint8)
    mean, variance = pixel_statistics(images) if normalize else (None, None)
    model = build_model((6, 5, 3), classes, task, mean=mean, variance=variance)
    classifier = model.get_layer("classifier")
    classifier.set_weights([rng.normal(size=w.shape).astype("float32") for w in classifier.get_weights()])
    kernel, bias = folded_affine(model)
    logits = images.reshape(40, -1).astype(np.float64) @ kernel + bias
    expected = 1 / (1 + np.exp(-logits)) if task == "binary" else np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(model(images)), expected, atol=2e-5)


def test_set_affine_moves_a_model_onto_other_statistics_with_the_same_outputs():
    # The refit after --l2 auto starts from the search's model, whose standardisation saw fewer images.
    from kerasreg.model import folded_affine, set_affine

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 6, 5, 1), dtype=np.uint8)
    mean, variance = pixel_statistics(images[:30])
    search = build_model((6, 5, 1), 4, "multiclass", mean=mean, variance=variance)
    classifier = search.get_layer("classifier")
    classifier.set_weights([rng.normal(size=w.shape).astype("float32") for w in classifier.get_weights()])
    mean, variance = pixel_statistics(images)
    refit = build_model((6, 5, 1), 4, "multiclass", mean=mean, variance=variance)
    set_affine(refit, *folded_affine(search))
    assert not np.allclose(refit.get_layer("classifier").get_weights()[0], classifier.get_weights()[0])
    np.testing.assert_allclose(np.asarray(refit(images)), np.asarray(search(images)), atol=1e-5)


def test_preprocess_is_the_models_own_preprocessing():
    from kerasreg.model import preprocess

    images = np.random.default_rng(0).integers(0, 256, (30, 8, 8, 1), dtype=np.uint8)
    mean, variance = pixel_statistics(images)
    model = build_model((8, 8, 1), 10, "multiclass", mean=mean, variance=variance)
    layers = model.get_layer("standardize")(model.get_layer("flatten")(model.get_layer("rescale")(images)))
    np.testing.assert_allclose(preprocess(model, images), np.asarray(layers), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mixed", [False, True], ids=["float32", "mixed-float16"])
@pytest.mark.parametrize("standardised", [False, True], ids=["rescaled", "standardised"])
def test_a_batch_standardised_in_the_graph_is_bit_for_bit_the_numpy_features(mixed, standardised):
    """Training keeps pixels as bytes and standardises each batch in the graph: the features it reads must be the
    very ones `preprocess` makes, or a run would not be the same run."""
    import tensorflow as tf

    from kerasreg.model import pixel_rows, standardisation
    from kerasreg.training.compiled_epoch import _without_graph_rewrites

    images = np.random.default_rng(2).integers(0, 256, (64, 7, 5, 3), dtype=np.uint8)
    mean, variance = pixel_statistics(images) if standardised else (None, None)
    model = build_model((7, 5, 3), 4, "multiclass", mean=mean, variance=variance, mixed_precision=mixed)
    rows = pixel_rows(images)
    assert rows.dtype == np.uint8 and rows.shape == (64, 105) and rows.ctypes.data % 64 == 0
    maths = standardisation(model)
    with _without_graph_rewrites():  # as the compiled epoch runs it
        in_graph = tf.function(maths.in_graph, autograph=False)(tf.constant(rows)).numpy()
    assert in_graph.dtype == maths.in_numpy(rows).dtype == (np.float16 if mixed else np.float32)
    assert in_graph.tobytes() == maths.in_numpy(rows).tobytes()


def test_pixel_rows_share_an_aligned_array_and_copy_any_other():
    from kerasreg.datasets.views import aligned_empty
    from kerasreg.model import pixel_rows

    aligned = aligned_empty((10, 4, 4, 1), np.uint8)
    aligned[:] = 3
    assert np.shares_memory(pixel_rows(aligned), aligned)
    unaligned = np.zeros(10 * 16 + 1, np.uint8)[1:].reshape(10, 4, 4, 1)
    rows = pixel_rows(unaligned)
    assert not np.shares_memory(rows, unaligned) and rows.ctypes.data % 64 == 0

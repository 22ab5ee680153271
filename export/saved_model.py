"""Keras model -> SavedModel with a `serving_default` signature: images -> probabilities."""

from __future__ import annotations

from pathlib import Path

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"


def probability_fn(model, binary: bool):
    """A function images -> [batch, K] probabilities; a sigmoid's p becomes (1-p, p)."""
    import tensorflow as tf

    def probabilities(images):
        p = model(images, training=False)
        if binary:
            p = tf.concat([1.0 - p, p], axis=1)
        return p

    return probabilities


def write_saved_model(model, input_shape: tuple[int, int, int], binary: bool, path: Path) -> None:
    """Write `model` as a SavedModel whose serving_default takes `images` (uint8) and returns `probabilities`.

    `keras.export.ExportArchive` rather than `model.export`: only an endpoint that
    returns a dict names the output (model.export calls it output_0).
    """
    import keras
    import tensorflow as tf

    fn = probability_fn(model, binary)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=lambda images: {OUTPUT_NAME: fn(images)},
        input_signature=[tf.TensorSpec((None, *input_shape), tf.uint8, name=INPUT_NAME)],
    )
    archive.write_out(str(path), verbose=False)


def load_saved_model_fn(path: Path):
    """The reloaded SavedModel's serving_default as a function uint8 array -> numpy probabilities."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return lambda images: signature(**{INPUT_NAME: tf.constant(images)})[OUTPUT_NAME].numpy()

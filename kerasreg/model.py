"""The model: logistic regression as a one-layer network that takes raw pixels.

    Input(uint8 [H,W,C]) -> Rescaling(1/255) -> Flatten -> (Normalization)   the features
      -> Dense(K|1) "classifier" (logits) -> softmax|sigmoid "probabilities"

Preprocessing is part of the graph, so the saved model, the SavedModel and the ONNX
file all take pixel values exactly as decoded from an image file. The logits have a
layer of their own so the training loop can take a numerically stable loss from
them; the L2 penalty belongs to the training objective (kerasreg/training/compiled_epoch.py), not
to the model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from kerasreg.datasets import BINARY
from kerasreg.datasets.views import aligned_empty

# A pixel that barely varies in training (MNIST's borders) would be divided by a
# tiny std and blow up the rare test image that lights it; flooring the variance
# at 0.01 (std 0.1 on the [0, 1] scale) caps that gain at 10.
VARIANCE_FLOOR = 1e-2


CHUNK_VALUES = 1 << 22  # values per chunk where a whole-set float copy would be the run's largest array: 32 MiB


def chunk_rows(values_per_row: int, most: int = 4096) -> int:
    """Rows per chunk of work on a float copy of images: at most `most`, and at most CHUNK_VALUES values.

    By values, not rows alone: 4,096 rows of 64x64x3 pixels were 400 MB of float64 (and 800 MB with the
    division's own copy), the largest transient of a 30,000-image run.
    """
    return max(1, min(most, CHUNK_VALUES // max(values_per_row, 1)))


def pixel_statistics(images: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean and floored variance of uint8 images (or of their `rows` only) on the [0, 1] scale."""
    total, squares = pixel_sums(images, rows)
    return statistics_of(total, squares, len(images) if rows is None else len(rows))


def pixel_sums(images: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel sums of the values and of their squares on the [0, 1] scale (float64), of `images` or their `rows`.

    Summed a chunk of images at a time: a float64 copy of the whole
    set would be 8 times the images (339 MB for MNIST's 54,000).
    """
    flat = images.reshape(len(images), -1)
    rows = np.arange(len(flat)) if rows is None else rows
    total = np.zeros(flat.shape[1], np.float64)
    squares = np.zeros(flat.shape[1], np.float64)
    step = chunk_rows(flat.shape[1])
    for start in range(0, len(rows), step):
        chunk = flat[rows[start : start + step]].astype(np.float64)
        chunk /= 255.0
        total += chunk.sum(axis=0)
        squares += np.square(chunk).sum(axis=0)
    return total, squares


def statistics_of(total: np.ndarray, squares: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, floored variance) as float32 from `pixel_sums` over `n` images."""
    n = max(n, 1)
    mean = total / n
    variance = np.maximum(squares / n - np.square(mean), 0.0)  # in [0, 1]: float64 keeps the difference exact enough
    return mean.astype(np.float32), np.maximum(variance, VARIANCE_FLOOR).astype(np.float32)


def build_model(
    input_shape: tuple[int, int, int],
    num_classes: int,
    task: str,
    *,
    mean: np.ndarray | None = None,
    variance: np.ndarray | None = None,
    mixed_precision: bool = False,
    name: str = "logreg",
    init: str = "glorot",
):
    """A Keras logistic-regression model; standardises pixels when mean/variance are given.

    `init` "zeros" starts every weight at zero (the course's notebook); "glorot" is Keras's default.

    Returns a `keras.Model` with input "images" (uint8) and a softmax over
    `num_classes` outputs, or for a binary task one sigmoid output. With
    `mixed_precision` the layers compute in float16 but the final activation runs
    in float32, so the output (and every export) stays float32.
    """
    import keras
    from keras import layers

    policy = "mixed_float16" if mixed_precision else None
    inputs = keras.Input(shape=input_shape, dtype="uint8", name="images")
    x = layers.Rescaling(1.0 / 255.0, name="rescale", dtype=policy)(inputs)
    x = layers.Flatten(name="flatten", dtype=policy)(x)  # [batch, H*W*C]
    if mean is not None:
        x = layers.Normalization(mean=mean, variance=variance, name="standardize", dtype=policy)(x)
    binary = task == BINARY
    activation = "sigmoid" if binary else "softmax"
    kernel = "zeros" if init == "zeros" else "glorot_uniform"
    logits = layers.Dense(1 if binary else num_classes, name="classifier", dtype=policy, kernel_initializer=kernel)(x)
    outputs = layers.Activation(activation, dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name=name)


def _preprocessing(model) -> tuple[float, float, np.ndarray | None, np.ndarray | None]:
    """The rescale's scale and offset, and the standardisation's mean and divisor (None without one)."""
    import keras

    rescale = model.get_layer("rescale")
    if not any(layer.name == "standardize" for layer in model.layers):
        return float(rescale.scale), float(rescale.offset), None, None
    norm = model.get_layer("standardize")
    mean = np.asarray(norm.mean, np.float32).reshape(-1)
    # As the Normalization layer divides: by max(sqrt(variance), epsilon).
    divisor = np.maximum(np.sqrt(np.asarray(norm.variance, np.float32).reshape(-1)), keras.backend.epsilon())
    return float(rescale.scale), float(rescale.offset), mean, divisor.astype(np.float32)


@dataclass(frozen=True)
class Standardisation:
    """The model's preprocessing as arithmetic on pixel rows: one multiply and one add per pixel value,
    x * gain + shift, with gain = scale / divisor and shift = (offset - mean) / divisor (scale and offset alone
    without per-pixel standardisation).

    Training keeps the pixels as bytes and applies this to each batch in the graph (`in_graph`): a quarter of
    the memory of float32 features, and the same arithmetic in the same order and precision as `in_numpy`, so
    the features a step reads are bit for bit those `in_numpy` makes (with Grappler off, as the compiled epoch
    runs). Two operations rather than the layers' four ((x * scale + offset - mean) / divisor, equal to within
    float32 rounding): at 60,000 MNIST images the four cost 16 ms of a 117 ms epoch.
    """

    scale: float
    offset: float
    mean: np.ndarray | None  # [D] float32, or None without standardisation
    divisor: np.ndarray | None
    dtype: str  # the classifier's compute dtype: float32, or float16 under mixed precision

    @property
    def gain(self) -> np.ndarray | np.float32:
        """What each pixel value is multiplied by: [D] float32, or one number without standardisation."""
        if self.mean is None:
            return np.float32(self.scale)
        return (np.float32(self.scale) / self.divisor).astype(np.float32)

    @property
    def shift(self) -> np.ndarray | np.float32:
        """What is added after: [D] float32, or one number without standardisation."""
        if self.mean is None:
            return np.float32(self.offset)
        return ((np.float32(self.offset) - self.mean) / self.divisor).astype(np.float32)

    def in_numpy(self, rows: np.ndarray) -> np.ndarray:
        """Features [N, D] of pixel rows [N, D], in one 64-byte-aligned array (TensorFlow takes it without a copy)."""
        x = aligned_empty(rows.shape, np.float32)
        np.copyto(x, rows, casting="unsafe")
        x *= self.gain
        x += self.shift
        if self.dtype == "float32":
            return x
        half = aligned_empty(rows.shape, self.dtype)
        np.copyto(half, x, casting="same_kind")
        return half

    def in_graph(self, rows):
        """Features of a tensor of pixel rows (uint8 [N, D]), as TensorFlow ops."""
        import tensorflow as tf

        x = tf.cast(rows, tf.float32) * self.gain + self.shift
        return x if self.dtype == "float32" else tf.cast(x, self.dtype)


def standardisation(model) -> Standardisation:
    """`model`'s preprocessing layers as a `Standardisation`."""
    scale, offset, mean, divisor = _preprocessing(model)
    return Standardisation(scale, offset, mean, divisor, model.get_layer("classifier").compute_dtype)


def pixel_rows(images: np.ndarray) -> np.ndarray:
    """Images [N, H, W, C] as the rows training reads, [N, H*W*C] uint8: a view where they are already C-ordered
    and 64-byte aligned (TensorFlow then shares their memory), else one aligned copy."""
    flat = images.reshape(len(images), -1)
    if flat.dtype == np.uint8 and flat.flags.c_contiguous and flat.ctypes.data % 64 == 0:
        return flat
    rows = aligned_empty(flat.shape, np.uint8)
    np.copyto(rows, flat, casting="unsafe")
    return rows


def preprocess(model, images: np.ndarray) -> np.ndarray:
    """The features the classifier reads, [N, H*W*C]: the model's preprocessing layers' arithmetic in numpy, as
    training computes it (`Standardisation`: equal to the layers' within float32 rounding; float16 out for mixed
    precision), in one 64-byte-aligned array that TensorFlow can take without a copy."""
    return standardisation(model).in_numpy(images.reshape(len(images), -1))


def folded_affine(model) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's weights with the rescale and standardisation folded in, as float32.

    logits = flatten(pixels) @ kernel + bias gives the model's logits for raw pixel
    values: the whole model as one affine map, for exports (computed in float64).
    """
    scale, offset, mean, divisor = _preprocessing(model)
    kernel, bias = (np.asarray(w, np.float64) for w in model.get_layer("classifier").get_weights())
    if mean is None:
        mean, divisor = np.zeros(kernel.shape[0]), np.ones(kernel.shape[0])
    divisor = divisor.astype(np.float64)
    folded_kernel = kernel * (scale / divisor)[:, np.newaxis]
    folded_bias = bias + ((offset - mean.astype(np.float64)) / divisor) @ kernel
    return folded_kernel.astype(np.float32), folded_bias.astype(np.float32)


def set_affine(model, kernel: np.ndarray, bias: np.ndarray) -> None:
    """Give `model`'s classifier the weights that make the whole model the affine map (kernel, bias) on raw pixels.

    The inverse of `folded_affine`, through this model's own preprocessing: a model
    whose standardisation has other statistics computes the same logits.
    """
    scale, offset, mean, divisor = _preprocessing(model)
    kernel, bias = np.asarray(kernel, np.float64), np.asarray(bias, np.float64)
    if mean is None:
        mean, divisor = np.zeros(kernel.shape[0]), np.ones(kernel.shape[0])
    divisor = divisor.astype(np.float64)
    unfolded = kernel * (divisor / scale)[:, np.newaxis]
    unfolded_bias = bias - ((offset - mean.astype(np.float64)) / divisor) @ unfolded
    model.get_layer("classifier").set_weights([unfolded.astype(np.float32), unfolded_bias.astype(np.float32)])


PREDICT_BATCH = 1024


def class_probabilities(outputs: np.ndarray, task: str) -> np.ndarray:
    """[N, K] probabilities from model outputs; a binary [N,1] sigmoid becomes (1-p, p)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if task == BINARY:
        p = outputs.reshape(-1)
        return np.stack([1.0 - p, p], axis=1)
    return outputs


def predict_probabilities(model, images: np.ndarray, task: str, rows: np.ndarray | None = None) -> np.ndarray:
    """[N, K] class probabilities of `images` (or of their `rows` only), calling the model directly in batches
    (works under any strategy)."""
    n = len(images) if rows is None else len(rows)

    def batch(i: int) -> np.ndarray:
        return images[i : i + PREDICT_BATCH] if rows is None else images[rows[i : i + PREDICT_BATCH]]

    outputs = [np.asarray(model(batch(i), training=False), dtype=np.float32) for i in range(0, n, PREDICT_BATCH)]
    width = 1 if task == BINARY else 0
    stacked = np.concatenate(outputs) if outputs else np.zeros((0, width), np.float32)
    return class_probabilities(stacked, task)


def weights_digest(model) -> str:
    """sha256 of the model's weights: equal on every worker of a synchronous run."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()


def _is_mixed(dtype) -> bool:
    name = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
    return isinstance(name, str) and name.startswith("mixed_")


def as_float32(model):
    """`model` with every mixed-precision layer rebuilt to compute in float32, same weights.

    Mixed precision keeps float32 variables and only computes in float16, so the
    float32 twin is the same model at full precision: what exports should carry.
    """
    import keras

    config = model.get_config()
    mixed = [layer for layer in config["layers"] if _is_mixed(layer["config"].get("dtype"))]
    if not mixed:
        return model
    for layer in mixed:
        layer["config"]["dtype"] = "float32"
    twin = keras.Model.from_config(config)
    twin.set_weights(model.get_weights())
    return twin

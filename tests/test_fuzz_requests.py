"""Property-based fuzzing of both protocols and of image decoding.

Every answer is either a 4xx whose body is `{"error": "<a sentence>"}`, or a 200 with
one probability per class that sums to 1; never a 5xx. Bodies drawn valid must get
the 200. Under CI the draws are derandomized (tests/conftest.py), so a landing never
depends on luck; `make fuzz` runs long random campaigns (KERASREG_FUZZ_EXAMPLES), and
each failure one finds stays here as an @example.
"""

import base64
import io
import json
import os

import numpy as np
import pytest
from http_servers import answer, app_for
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("KERASREG_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MAX_BATCH = 8


@pytest.fixture(scope="module")
def app(digits_export):
    return app_for(digits_export, max_batch=MAX_BATCH)


def check(app, path: str, body: bytes, valid: bool = False) -> int:
    """Ask; hold the answer to the invariant of the module docstring; the status."""
    status, reply = answer(app, "POST", path, body)
    if valid:
        assert status == 200, reply
    assert status < 500, reply
    if status >= 400:
        assert list(reply) == ["error"] and isinstance(reply["error"], str) and reply["error"], reply
        return status
    assert status == 200
    if path.endswith("/infer"):
        (tensor,) = reply["outputs"]
        probabilities = np.reshape(tensor["data"], tensor["shape"])
    else:
        probabilities = np.asarray(reply["predictions" if "predictions" in reply else "outputs"])
    assert probabilities.ndim == 2 and probabilities.shape[1] == 10 and 1 <= len(probabilities) <= MAX_BATCH
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    return status


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-300, 300) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=20,
)
pixels = st.integers(0, 255)
image = st.lists(st.lists(st.lists(pixels, min_size=1, max_size=1), min_size=8, max_size=8), min_size=8, max_size=8)


@FUZZ
@given(
    tensor=st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["images", "x"]) | json_values,
            "shape": st.lists(st.integers(0, 8) | st.booleans(), max_size=5) | json_values,
            "datatype": st.sampled_from(["UINT8", "INT8", "FP32", "BYTES"]) | json_values,
            "data": st.lists(pixels | st.booleans() | st.floats(allow_nan=False), max_size=70) | json_values,
        },
    ),
    extra=st.dictionaries(st.sampled_from(["id", "parameters", "outputs"]), json_values, max_size=2),
)
# Found by the outside probe: a shape of [] made a 0-d array whose len() raised (a 500).
@example(tensor={"name": "images", "shape": [], "datatype": "UINT8", "data": [0]}, extra={})
# INT8 cannot hold 255, nor UINT8 3.7: both were 200.
@example(tensor={"name": "images", "shape": [1, 8, 8, 1], "datatype": "INT8", "data": [255] * 64}, extra={})
@example(tensor={"name": "images", "shape": [1, 8, 8, 1], "datatype": "UINT8", "data": [3.7] * 64}, extra={})
@example(tensor={"name": "images", "datatype": "INT8", "data": True}, extra={})  # data not a list at all
def test_v2_infer_answers_a_json_error_or_probabilities(app, tensor, extra):
    status = check(app, "/v2/models/digits/infer", json.dumps({"inputs": [tensor], **extra}).encode())
    data = tensor.get("data")
    if tensor.get("datatype") == "INT8" and isinstance(data, list) and any(type(v) is int and v > 127 for v in data):
        assert status == 400


@FUZZ
@given(body=json_values)
@example(body={"inputs": 5})  # a number as v1 "inputs": a 0-d array whose len() raised (a 500)
def test_any_json_body_to_either_protocol_answers_a_json_error_or_probabilities(app, body):
    raw = json.dumps(body).encode()
    check(app, "/v2/models/digits/infer", raw)
    check(app, "/v1/models/digits:predict", raw)


@FUZZ
@given(
    instances=st.lists(
        image | json_values | st.fixed_dictionaries({"b64": st.text(max_size=12) | json_values}) | st.just({}),
        max_size=3,
    ),
    columnar=st.booleans(),
)
def test_v1_predict_answers_a_json_error_or_probabilities(app, instances, columnar):
    body = {"inputs": {"images": instances}} if columnar else {"instances": instances}
    check(app, "/v1/models/digits:predict", json.dumps(body).encode())


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@FUZZ
@given(
    size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    channels=st.sampled_from([1, 3, 4]),
    cut=st.integers(0, 200),
    flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
)
def test_corrupted_images_answer_400_or_probabilities(app, size, channels, cut, flips):
    shape = size if channels == 1 else (*size, channels)
    data = bytearray(_png(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)))
    for position, value in flips:  # corrupt a few bytes, then maybe truncate
        if position < len(data):
            data[position] = value
    data = bytes(data[: len(data) - cut] if cut < len(data) else data)
    body = json.dumps({"instances": [{"b64": base64.b64encode(data).decode()}]}).encode()
    assert check(app, "/v1/models/digits:predict", body) in (200, 400)


# Valid bodies, in every form each protocol allows: all must get their probabilities.
PIXEL_DATATYPES = ["UINT8", "UINT16", "UINT32", "UINT64", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"]
batches = st.integers(1, MAX_BATCH).flatmap(
    lambda n: st.lists(st.integers(0, 255), min_size=n * 64, max_size=n * 64).map(
        lambda values: np.asarray(values, np.uint8).reshape(n, 8, 8, 1)
    )
)


@FUZZ
@given(
    images=batches,
    datatype=st.sampled_from(PIXEL_DATATYPES),
    nested=st.booleans(),
    one_without_batch_axis=st.booleans(),
)
def test_every_valid_v2_body_gets_probabilities(app, images, datatype, nested, one_without_batch_axis):
    if one_without_batch_axis:
        images = images[0]  # [8, 8, 1]: a single image may leave out the batch axis
    data = images.tolist() if nested else images.ravel().tolist()
    tensor = {"name": "images", "shape": list(images.shape), "datatype": datatype, "data": data}
    check(app, "/v2/models/digits/infer", json.dumps({"inputs": [tensor]}).encode(), valid=True)


@FUZZ
@given(
    images=batches,
    form=st.sampled_from(["nested", "without channel axis", "images key", "b64 png", "columnar"]),
    spaced=st.booleans(),
)
def test_every_valid_v1_body_gets_probabilities(app, images, form, spaced):
    if form == "nested":
        body = {"instances": images.tolist()}
    elif form == "without channel axis":
        body = {"instances": images[..., 0].tolist()}
    elif form == "images key":
        body = {"instances": [{"images": image.tolist()} for image in images]}
    elif form == "b64 png":
        body = {"instances": [{"b64": base64.b64encode(_png(image[..., 0])).decode()} for image in images]}
    else:
        body = {"inputs": {"images": images.tolist()}}
    separators = (", ", ": ") if spaced else (",", ":")
    check(app, "/v1/models/digits:predict", json.dumps(body, separators=separators).encode(), valid=True)

"""Property-based fuzzing of both protocols' JSON handling and of image decoding: never a 5xx.

`KERASREG_FUZZ_EXAMPLES` raises the number of cases per property (default 200).
"""

import base64
import io
import json
import os

import numpy as np
import pytest
from http_servers import answer, app_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

EXAMPLES = int(os.environ.get("KERASREG_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def app(digits_export):
    return app_for(digits_export, max_batch=8)


def _status(app, method: str, path: str, body: bytes) -> int:
    return answer(app, method, path, body)[0]  # answer() also checks that the body is JSON


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
            "datatype": st.sampled_from(["UINT8", "FP32", "BYTES"]) | json_values,
            "data": st.lists(pixels | st.booleans() | st.floats(allow_nan=False), max_size=70) | json_values,
        },
    ),
    extra=st.dictionaries(st.sampled_from(["id", "parameters", "outputs"]), json_values, max_size=2),
)
def test_v2_infer_never_answers_5xx(app, tensor, extra):
    body = json.dumps({"inputs": [tensor], **extra}).encode()
    assert _status(app, "POST", "/v2/models/digits/infer", body) < 500


@FUZZ
@given(body=json_values)
def test_any_json_body_to_either_protocol_is_never_5xx(app, body):
    raw = json.dumps(body).encode()
    assert _status(app, "POST", "/v2/models/digits/infer", raw) < 500
    assert _status(app, "POST", "/v1/models/digits:predict", raw) < 500


@FUZZ
@given(
    instances=st.lists(
        image | json_values | st.fixed_dictionaries({"b64": st.text(max_size=12) | json_values}) | st.just({}),
        max_size=3,
    ),
    columnar=st.booleans(),
)
def test_v1_predict_never_answers_5xx(app, instances, columnar):
    body = {"inputs": {"images": instances}} if columnar else {"instances": instances}
    assert _status(app, "POST", "/v1/models/digits:predict", json.dumps(body).encode()) < 500


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
def test_corrupted_images_are_400_never_5xx(app, size, channels, cut, flips):
    shape = size if channels == 1 else (*size, channels)
    data = bytearray(_png(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)))
    for position, value in flips:  # corrupt a few bytes, then maybe truncate
        if position < len(data):
            data[position] = value
    data = bytes(data[: len(data) - cut] if cut < len(data) else data)
    body = json.dumps({"instances": [{"b64": base64.b64encode(data).decode()}]}).encode()
    assert _status(app, "POST", "/v1/models/digits:predict", body) in (200, 400)

"""Both HTTP protocols through a real server: `serve http` in a subprocess on 127.0.0.1, TensorFlow blocked."""

import base64
import io
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from http_servers import answer, app_for, start_server
from PIL import Image

from kerasreg.datasets import load_dataset
from serve import Model

pytestmark = pytest.mark.slow  # a real server process

MAX_BODY = 200_000


@pytest.fixture(scope="module")
def server(digits_export, no_tensorflow_env):
    process, port = start_server(
        digits_export, no_tensorflow_env, "--max-batch", "8", "--max-body-bytes", str(MAX_BODY)
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    yield client
    client.close()
    process.terminate()
    process.communicate(timeout=20)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def expected(digits_export, digits):
    return Model.load(digits_export).predict(digits.test_images[:4])


def test_health_and_model_status(server):
    assert server.get("/v2/health/live").json() == {"live": True}
    assert server.get("/v2/health/ready").json() == {"ready": True}
    assert server.get("/v2/models/digits/ready").json() == {"name": "digits", "ready": True}
    assert server.get("/v1/models/digits").json() == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


def test_metadata_of_both_protocols(server):
    v2 = server.get("/v2/models/digits").json()
    assert v2["inputs"] == [{"name": "images", "datatype": "UINT8", "shape": [-1, 8, 8, 1]}]
    assert v2["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    assert v2["parameters"]["classes"] == list("0123456789")
    sig = server.get("/v1/models/digits/metadata").json()["metadata"]["signature_def"]["signature_def"]
    assert sig["serving_default"]["inputs"]["images"]["dtype"] == "DT_UINT8"
    assert [d["size"] for d in sig["serving_default"]["outputs"]["probabilities"]["tensor_shape"]["dim"]] == [
        "-1",
        "10",
    ]


def test_v1_predict_rows_columns_and_b64(server, digits, expected):
    images = digits.test_images[:4]
    rows = server.post("/v1/models/digits:predict", json={"instances": images.tolist()})
    assert rows.status_code == 200
    np.testing.assert_allclose(rows.json()["predictions"], expected, atol=1e-6)
    columns = server.post("/v1/models/digits:predict", json={"inputs": {"images": images.tolist()}})
    np.testing.assert_allclose(columns.json()["outputs"], expected, atol=1e-6)
    buffer = io.BytesIO()
    Image.fromarray(images[0, ..., 0], "L").save(buffer, format="PNG")
    b64 = server.post(
        "/v1/models/digits:predict", json={"instances": [{"b64": base64.b64encode(buffer.getvalue()).decode()}]}
    )
    np.testing.assert_allclose(b64.json()["predictions"], expected[:1], atol=1e-6)


def test_versioned_paths(server, digits, expected):
    body = {"instances": digits.test_images[:4].tolist()}
    response = server.post("/v1/models/digits/versions/1:predict", json=body)
    np.testing.assert_allclose(response.json()["predictions"], expected, atol=1e-6)
    assert server.get("/v2/models/digits/versions/1/ready").json() == {"name": "digits", "ready": True}
    assert server.get("/v2").json()["name"] == "serve"


SEND_PIXELS = "send UINT8 pixel values (or UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64)."


def test_v2_infer(server, digits, expected):
    images = digits.test_images[:4]
    body = {
        "id": "r1",
        "inputs": [
            {"name": "images", "shape": list(images.shape), "datatype": "UINT8", "data": images.reshape(-1).tolist()}
        ],
    }
    response = server.post("/v2/models/digits/infer", json=body)
    assert response.status_code == 200
    out = response.json()
    assert out["id"] == "r1" and out["model_name"] == "digits"
    (tensor,) = out["outputs"]
    assert tensor["name"] == "probabilities" and tensor["shape"] == [4, 10] and tensor["datatype"] == "FP32"
    np.testing.assert_allclose(np.reshape(tensor["data"], (4, 10)), expected, atol=1e-6)


@pytest.mark.parametrize(
    "method, path, kwargs, status, body",
    [
        ("post", "/v1/models/digits:predict", {"content": b"{not json"}, 400, None),
        (
            "post",
            "/v1/models/digits:predict",
            {"json": {"instances": [[[0]]]}},
            400,
            {"error": "images have shape [1, 1, 1]; expected [N,8,8,1] or [8,8,1]."},
        ),
        (
            "post",
            "/v1/models/digits:predict",
            {"json": {"instances": [[["x"] * 8] * 8]}},
            400,
            {"error": "instances[0] must hold numbers 0..255, got text."},
        ),
        (
            "post",
            "/v1/models/digits:predict",
            {"json": {"instances": [{"b64": "aGVsbG8="}]}},
            400,
            {"error": "instances[0]: not a readable PNG, JPEG, BMP, GIF or WebP image (UnidentifiedImageError)."},
        ),
        (
            "post",
            "/v1/models/digits:predict",
            {"json": {"instances": [[[0] * 8] * 8] * 9}},
            400,
            {"error": "batch of 9 images exceeds this server's limit of 8; split it."},
        ),
        (
            "post",
            "/v1/models/digits:predict",
            {"json": {"inputs": [], "instances": []}},
            400,
            {"error": 'request must have exactly one of "instances" (row format) or "inputs" (columnar format).'},
        ),
        (
            "post",
            "/v1/models/mnist:predict",
            {"json": {"instances": []}},
            404,
            {"error": "model 'mnist' not found; this server has: digits."},
        ),
        ("get", "/v2/models/mnist", {}, 404, {"error": "model 'mnist' not found; this server has: digits."}),
        (
            "post",
            "/v2/models/digits/infer",
            {"json": {"inputs": [{"name": "images", "shape": [1, 8, 8, 1], "datatype": "UINT8", "data": [1, 2]}]}},
            400,
            {"error": '"data" holds 2 values but shape [1, 8, 8, 1] needs 64.'},
        ),
        (
            "post",
            "/v2/models/digits/infer",
            {"json": {"inputs": [{"name": "images", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}},
            400,
            {"error": "\"datatype\" 'BYTES' is not supported; " + SEND_PIXELS},
        ),
        (
            "post",
            "/v1/models/digits:predict",
            {"content": b"[" + b"0," * MAX_BODY + b"0]"},
            413,
            {"error": f"request body of {2 * MAX_BODY + 3} bytes exceeds the limit of {MAX_BODY}."},
        ),
        (
            "post",
            "/v2/models/digits/infer",
            {"content": b"[" * 100_000},
            400,
            {"error": "request body nests JSON too deeply."},
        ),
        (
            "post",
            "/v2/models/digits/infer",
            {"json": {"inputs": [{"name": "images", "shape": [1, 8, 8, 1], "datatype": "UINT8", "data": [True] * 64}]}},
            400,
            {"error": '"data" must hold numbers 0..255, got true or false.'},
        ),
        (
            "post",
            "/v2/models/digits/infer",
            {"json": {"inputs": [{"name": "images", "shape": [True, 8, 8, 1], "datatype": "UINT8", "data": [0] * 64}]}},
            400,
            {"error": '"shape" must be a list of non-negative integers, e.g. [N, H, W, C].'},
        ),
        (
            "post",
            "/v2/models/digits/infer",
            {"json": {"inputs": [{"name": "images", "shape": [1, 8, 8, 1], "datatype": ["UINT8"], "data": [0] * 64}]}},
            400,
            {"error": "\"datatype\" ['UINT8'] is not supported; " + SEND_PIXELS},
        ),
        (
            "post",
            "/v1/models/digits:predict",
            {"json": {"instances": [[[[0]] * 8] * 7 + [[[True]] * 8]]}},
            400,
            {"error": "instances[0] must hold numbers 0..255, got true or false."},
        ),
        ("get", "/v3/nothing", {}, 404, {"error": "Not Found"}),
        (
            "get",
            "/v1/models/digits/versions/2",
            {},
            404,
            {"error": "model 'digits' has no version 2; it has: 1."},
        ),
        ("get", "/v2/models/digits/infer", {}, 405, {"error": "Method Not Allowed"}),
    ],
)
def test_errors_are_json_with_the_right_status(server, method, path, kwargs, status, body):
    response = getattr(server, method)(path, **kwargs)
    assert response.status_code == status
    if body is None:
        assert response.json()["error"].startswith("request body is not valid JSON")
    else:
        assert response.json() == body
    assert server.get("/v2/health/ready").status_code == 200  # and it keeps serving


def test_concurrent_requests_all_succeed(server, digits, expected):
    payload = json.dumps({"instances": digits.test_images[:4].tolist()})

    def call(_):
        r = server.post("/v1/models/digits:predict", content=payload, headers={"content-type": "application/json"})
        return r.status_code, r.json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(64)))
    assert all(code == 200 for code, _ in results)
    for _, body in results:
        np.testing.assert_allclose(body["predictions"], expected, atol=1e-6)


def test_slow_inference_answers_503_and_the_app_recovers(digits_export, digits, monkeypatch):
    import time

    from serve.limits import INLINE_MAX_VALUES, INLINE_PARSE_BYTES, Limits
    from serve.plane import dataplane
    from serve.protocols import oip_v2

    # Only a batch too large to run on the event loop goes to a thread under the timeout.
    n = INLINE_MAX_VALUES // 64 + 1
    images = np.resize(digits.test_images, (n, 8, 8, 1))
    tensor = {"name": "images", "shape": list(images.shape), "datatype": "UINT8", "data": images.ravel().tolist()}
    body = json.dumps({"inputs": [tensor]}).encode()
    assert len(body) > INLINE_PARSE_BYTES  # so its parsing leaves the event loop too, under the same timeout
    hasty = app_for(digits_export, max_batch=n, limits=Limits(timeout_seconds=0.05))
    real_parse = oip_v2.parse_json

    def slow_parse(data):  # a parse that outlives the timeout, whatever the machine's speed
        time.sleep(0.2)
        return real_parse(data)

    monkeypatch.setattr(oip_v2, "parse_json", slow_parse)
    status, reply = answer(hasty, "POST", "/v2/models/digits/infer", body)
    assert (status, reply) == (503, {"error": "parsing timed out after 0.05 s; retry later."})
    monkeypatch.setattr(oip_v2, "parse_json", real_parse)
    monkeypatch.setattr(dataplane, "INLINE_PARSE_BYTES", len(body))  # parsed on the loop: the inference times out
    session = hasty.plane.repository.served["digits"][1].model.session
    run, stop = session.stoppable()

    def slow_run(batch):
        time.sleep(0.2)
        return run(batch)

    monkeypatch.setattr(session, "stoppable", lambda: (slow_run, stop))
    status, reply = answer(hasty, "POST", "/v2/models/digits/infer", body)
    assert (status, reply) == (503, {"error": "inference timed out after 0.05 s; retry later."})
    status, reply = answer(app_for(digits_export, max_batch=n), "POST", "/v2/models/digits/infer", body)
    assert status == 200 and reply["outputs"][0]["shape"] == [n, 10]


def test_an_endpoint_that_fails_is_a_logged_500_that_says_nothing(digits_export, caplog):
    from serve.protocols.routes import ROUTES, Route, Router

    app = app_for(digits_export)

    async def broken(plane, request):
        raise KeyError("secret detail")

    app.router = Router((*ROUTES, Route("/v2/broken", "v2", {"GET": broken})))
    with caplog.at_level("ERROR", logger="serve.http"):
        assert answer(app, "GET", "/v2/broken") == (500, {"error": "internal server error"})
    assert "GET /v2/broken failed" in caplog.text and "secret detail" in caplog.text

"""No request can stall the server: batch caps before decoding, pixel limits from headers, big work off the loop."""

import base64
import io
import json
import struct
import zlib

import numpy as np
import pytest
from http_servers import answer, app_for
from PIL import Image

from serve import BadInput, Model
from serve.limits import Limits
from serve.limits import image_pixel_limit as max_pixels_for
from serve.plane.image_budget import plan_decoding
from serve.runtime.image_input import decode_image


def _answer(app, path: str, body: dict) -> tuple[int, dict]:
    return answer(app, "POST", path, json.dumps(body).encode())


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 9999, height: int = 9999) -> bytes:
    """A small PNG that declares width x height 1-bit pixels (its data would inflate to all of them)."""
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
    rows = zlib.compress(b"\0" * ((width + 7) // 8 + 1) * 64)  # a start of the data is enough to hold the shape
    return b"\x89PNG\r\n\x1a\n" + header + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model(digits_export):
    return Model.load(digits_export)


def test_the_limit_is_sized_to_the_model():
    assert max_pixels_for((8, 8, 1)) == 4_000_000  # the floor
    assert max_pixels_for((28, 28, 1)) == 12_288 * 28 * 28
    assert max_pixels_for((64, 64, 3)) == 50_000_000  # any phone photo, for the course's 64x64 cats
    assert max_pixels_for((2000, 2000, 3)) == 50_000_000  # the ceiling


def test_images_declaring_too_many_pixels_are_refused_before_decoding(model):
    app = app_for(model.path, max_batch=32)
    status, body = _answer(app, "/v1/models/digits:predict", {"instances": [_b64(bomb_png())] * 30})
    assert (status, body) == (
        400,
        {"error": "instances[0]: 99,980,001 pixels exceeds the limit of 4,000,000; send it smaller."},
    )
    # Each image under the limit, together over four times it.
    app = app_for(model.path, max_batch=32, limits=Limits(max_image_pixels=10_000))
    small = _png(np.zeros((100, 90), np.uint8))
    status, body = _answer(app, "/v1/models/digits:predict", {"instances": [_b64(small)] * 5})
    assert (status, body) == (
        400,
        {
            "error": "the images of this request declare 45,000 pixels (a progressive JPEG's once per 16 scans); "
            "the limit is 40,000; split it."
        },
    )


def test_the_batch_cap_comes_before_any_decoding(model, monkeypatch):
    from serve.plane import image_budget

    def decode_must_not_run(*args, **kwargs):
        raise AssertionError("decoded before the batch cap was checked")

    monkeypatch.setattr(image_budget, "decode_image", decode_must_not_run)
    app = app_for(model.path, max_batch=8)
    status, body = _answer(app, "/v1/models/digits:predict", {"instances": [_b64(bomb_png())] * 9})
    assert (status, body) == (400, {"error": "batch of 9 images exceeds this server's limit of 8; split it."})


def test_large_images_are_decoded_off_the_loop_under_the_timeout(model):
    big = {0: _png(np.zeros((1200, 1000), np.uint8))}  # 1.2 Mpx: more than the loop decodes itself (and ~5 ms)
    small = {0: _png(np.zeros((100, 100), np.uint8))}
    assert not plan_decoding(big, model, Limits()).small
    assert plan_decoding(small, model, Limits()).run()[0].shape == (8, 8, 1)
    instances = [_b64(big[0])]
    status, body = _answer(
        app_for(model.path, limits=Limits(timeout_seconds=1e-9)),
        "/v1/models/digits:predict",
        {"instances": instances},
    )
    assert (status, body) == (503, {"error": "decoding the images timed out after 1e-09 s; retry later."})
    status, body = _answer(app_for(model.path), "/v1/models/digits:predict", {"instances": instances})
    assert status == 200 and len(body["predictions"][0]) == 10


@pytest.mark.parametrize("fmt", ["TIFF", "ICO", "PCX", "TGA"])
def test_only_the_documented_formats_are_decoded(fmt):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buffer, format=fmt)
    with pytest.raises(
        BadInput, match=r"^x: not a readable PNG, JPEG, BMP, GIF or WebP image \(UnidentifiedImageError\)\.$"
    ):
        decode_image(buffer.getvalue(), "x", (8, 8), 1)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_gif_and_webp_are_decoded_as_the_training_folder_decodes_them(fmt):
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(buffer, format=fmt)
    decoded = decode_image(buffer.getvalue(), "x", (8, 8), 1)
    assert decoded.shape == (8, 8, 1) and abs(int(decoded.mean()) - 200) <= 3


def test_the_cli_refuses_an_image_over_the_models_limit(digits_export, tmp_path, capsys):
    from serve.cli import main

    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png())
    assert main(["predict", str(digits_export), str(path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"python -m serve: error: {path}: 9999x9999 pixels exceeds the limit of 4,000,000; send it smaller."
    )

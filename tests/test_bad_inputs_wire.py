"""The bad-input matrix, continued (tests/test_bad_inputs.py has the rest): the v2 binary header, uploads and
multipart bodies, and gRPC messages. Each row's exact outcome; after each, the same server answers a good request.
"""

from __future__ import annotations

import json
import struct
import zlib

import hostile_images
import httpx
import numpy as np
import pytest
from http_servers import free_port, start_server

from serve.plane.versions import RULE

pytestmark = pytest.mark.slow  # one server, with gRPC, for the module
PIXELS = bytes(64)  # one 8x8x1 image


def binary_body(header: dict, data: bytes = PIXELS) -> tuple[dict, bytes]:
    encoded = json.dumps(header).encode()
    return {LENGTH: str(len(encoded))}, encoded + data


def tensor(**fields) -> dict:
    parameters = fields.pop("parameters", {"binary_data_size": 64})
    return {"inputs": [{"name": "images", "shape": [1, 8, 8, 1], "datatype": "UINT8", "parameters": parameters,
                        **fields}]}  # fmt: skip


def png(width: int = 8, height: int = 8) -> bytes:
    """A valid gray PNG of this size (its IDAT compressed zeros)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(width) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))  # fmt: skip


def form(*parts: tuple[str, str | None, bytes], boundary: str = "B0undary") -> tuple[dict, bytes]:
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return {"content-type": f"multipart/form-data; boundary={boundary}"}, body + f"--{boundary}--\r\n".encode()


NOT_ENCODED = "this is not an image a camera or an encoder writes. Re-encode it."
INFER = "/v2/models/digits/infer"
CLASSIFY = "/models/digits/classify"
NOT_BYTES = "is not a byte count; send the JSON header's length in bytes."
LENGTH = "inference-header-content-length"
# (path, headers, body, status, the exact error)
BINARY_ROWS = [
    (INFER, {LENGTH: "abc"}, b"{}", 400, f"Inference-Header-Content-Length 'abc' {NOT_BYTES}"),
    (INFER, {LENGTH: "-1"}, b"{}", 400, f"Inference-Header-Content-Length '-1' {NOT_BYTES}"),
    (INFER, {LENGTH: "9" * 18}, b"{}", 400,
     f"Inference-Header-Content-Length says the JSON header has {int('9' * 18):,} bytes, but the body has only 2."),
    (INFER, {LENGTH: "9" * 5000}, b"{}", 400, f"Inference-Header-Content-Length '{'9' * 40}' {NOT_BYTES}"),
    (INFER, {LENGTH: "0"}, b"{}", 400,
     "Inference-Header-Content-Length is 0: the body must start with a JSON header."),
    (INFER, *binary_body(tensor(parameters={"binary_data_size": 65})), 400,
     "inputs[0].parameters.binary_data_size is 65 bytes, more than the 64 bytes of binary data after the JSON header."),
    (INFER, *binary_body(tensor(parameters={"binary_data_size": 32})), 400,
     "the inputs' binary_data_size add up to 32 bytes, but 64 bytes follow the JSON header "
     "(Inference-Header-Content-Length)."),
    (INFER, *binary_body(tensor(parameters={"binary_data_size": -64})), 400,
     "inputs[0].parameters.binary_data_size '-64' is not a byte count."),
    (INFER, *binary_body(tensor(parameters={"binary_data_size": "64"})), 400,
     "inputs[0].parameters.binary_data_size '64' is not a byte count."),
    (INFER, *binary_body(tensor(parameters=[64])), 400, "the input tensor's \"parameters\" must be an object."),
    (INFER, *binary_body(tensor(datatype="FP32")), 400,
     "the input tensor's binary data holds 64 bytes but FP32 [1, 8, 8, 1] needs 256 (64 values of 4 bytes)."),
    (INFER, *binary_body(tensor(data=[0] * 64)), 400,
     'the input tensor has both "data" and parameters.binary_data_size; send one.'),
    (INFER, *binary_body(tensor(shape=[9, 8, 8, 1], parameters={"binary_data_size": 576}), bytes(576)), 400,
     "batch of 9 images exceeds this server's limit of 8; split it."),
    (INFER, *binary_body({**tensor(), "outputs": [{"name": "logits"}]}), 400,
     '"outputs" names \'logits\'; this model has one output, "probabilities".'),
    (INFER, *binary_body({**tensor(), "parameters": "binary"}), 400,
     '"parameters" must be an object, e.g. {"binary_data_output": true}.'),
    (INFER, *binary_body({**tensor(), "outputs": [{"name": "probabilities", "parameters": {"classification": 0}}]}),
     400, "outputs[0].parameters.classification '0' is not a positive integer: the number of classes to answer."),
    (INFER, *binary_body({**tensor(), "outputs": [{"name": "probabilities", "parameters": {"classification": "3"}}]}),
     400, "outputs[0].parameters.classification '3' is not a positive integer: the number of classes to answer."),
    (INFER, {"content-encoding": "gzip"}, b"\x1f\x8b", 415,
     "Content-Encoding 'gzip' is not taken; send the body uncompressed."),
]  # fmt: skip
UPLOAD_ROWS = [
    (CLASSIFY, {"content-type": "multipart/form-data"}, b"--x--", 400,
     "multipart/form-data without a boundary in its Content-Type; let the client set the header."),
    (CLASSIFY, form(("image", "a.png", png()))[0], form(("image", "a.png", png()))[1][:-20], 400,
     "the multipart/form-data body ends before its closing boundary; send it whole."),
    (CLASSIFY, *form(("file", "a.png", png())), 400,
     "form field 'file' is not taken; send each image as a file in field 'image'."),
    (CLASSIFY, *form(*[("image", f"{i}.png", png()) for i in range(9)]), 400,
     "the form holds more than 8 parts; send at most 8 images a request."),
    (CLASSIFY, *form(("image", "a.png", b"GIF89a?")), 400,
     "image 0 ('a.png'): not a readable PNG, JPEG, BMP, GIF or WebP image (UnidentifiedImageError)."),
    (CLASSIFY, *form(), 400, "the form holds no files; send each image as a file in field 'image'."),
    (CLASSIFY, *form(("image", None, b"x" * 2000)), 400, "a form field that is no file holds more than 1024 bytes."),
    (CLASSIFY, *form(("image", "big.png", png(20000, 5000)[:33])), 400,
     "image 0 ('big.png'): 100,000,000 pixels exceeds the limit of 4,000,000; send it smaller."),
    (CLASSIFY, {"content-type": "text/plain"}, png(), 415,
     "Content-Type 'text/plain' is not taken here; send the image as the body (image/png, image/jpeg, image/bmp, "
     "image/gif, image/webp, application/octet-stream) or as multipart/form-data with field 'image'."),
    (CLASSIFY, {"content-type": "image/png"}, b"", 400,
     "the request body is empty; send the image's bytes as the body."),
    (CLASSIFY, {"content-type": "image/png"}, b"\x89PNG\r\n\x1a\nnot really", 400,
     "image 0: not a readable PNG, JPEG, BMP, GIF or WebP image (OSError)."),
    (CLASSIFY + "?top_k=abc", {"content-type": "image/png"}, png(), 400,
     f"top_k 'abc' is not a positive integer (at most {2**63 - 1})."),
    (CLASSIFY + "?top_k=0", {"content-type": "image/png"}, png(), 400,
     f"top_k '0' is not a positive integer (at most {2**63 - 1})."),
    # Numbers of more digits than Python converts (4,300): a 500 with a traceback before (issue 32).
    (CLASSIFY + "?top_k=" + "9" * 5000, {"content-type": "image/png"}, png(), 400,
     f"top_k '{'9' * 40}' is not a positive integer (at most {2**63 - 1})."),
    (CLASSIFY, {"content-type": "multipart/form-data; boundary=" + "b" * 300}, b"--x--", 400,
     "the multipart/form-data body does not parse (Boundary length 300 exceeds maximum of 256)."),
    (CLASSIFY + "?k=3", {"content-type": "image/png"}, png(), 400,
     "unknown query parameter 'k'; this route takes top_k."),
    ("/models/mnist/classify", {"content-type": "image/png"}, png(), 404,
     "model 'mnist' not found; this server has: digits."),
    ("/models/digits/versions/01/classify", {"content-type": "image/png"}, png(), 404,
     f"model 'digits' has no version '01'; {RULE}."),
    # Headers that ask for unbounded work before the pixels (issue 32): refused before Pillow reads them.
    (CLASSIFY, {"content-type": "image/jpeg"}, hostile_images.jpeg_comments(45_000), 400,
     f"image 0: its header holds more than 4,272 markers, junk or table entries; {NOT_ENCODED}"),
    (CLASSIFY, {"content-type": "image/png"}, hostile_images.png_chunks(15_000), 400,
     f"image 0: it holds more than 4,271 PNG chunks; {NOT_ENCODED}"),
    (CLASSIFY, {"content-type": "image/gif"}, hostile_images.gif_comments(60_000), 400,
     f"image 0: it holds more than 4,271 GIF blocks before its first image; {NOT_ENCODED}"),
    (CLASSIFY, *form(("image", "scans.jpg", hostile_images.jpeg_scans(300))), 400,
     f"image 0 ('scans.jpg'): it holds 310 JPEG scans, more than the 256 allowed; {NOT_ENCODED}"),
    (CLASSIFY, {"content-type": "image/jpeg"}, hostile_images.jpeg_scans(200, 1500, 1500), 400,
     "the images of this request declare 31,500,000 pixels (a progressive JPEG's once per 16 scans); the limit is "
     "16,000,000; split it."),
]  # fmt: skip


@pytest.fixture(scope="module")
def server(digits_export, no_tensorflow_env):
    grpc_port = free_port()
    process, port = start_server(
        digits_export, no_tensorflow_env, "--max-batch", "8", "--max-body-bytes", "200000", "--grpc-port",
        str(grpc_port)
    )  # fmt: skip
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client, grpc_port
    process.terminate()
    process.communicate(timeout=20)


def _serves_on(client: httpx.Client) -> None:
    good = client.post(CLASSIFY, content=png(), headers={"content-type": "image/png"})
    assert good.status_code == 200 and good.json()["predictions"][0]["top"][0]["class"] in "0123456789"


@pytest.mark.parametrize(
    "path, headers, body, status, error",
    BINARY_ROWS + UPLOAD_ROWS,
    ids=[f"{r[0]} {i}" for i, r in enumerate(BINARY_ROWS + UPLOAD_ROWS)],
)
def test_a_bad_binary_or_upload_request_is_a_4xx_json_error_and_the_server_serves_on(
    server, path, headers, body, status, error
):
    client, _ = server
    response = client.post(path, content=body, headers=headers)
    assert (response.status_code, response.json()) == (status, {"error": error})
    _serves_on(client)


def _infer_request(**fields):
    from serve.protocols.grpc.messages import message

    request = message("ModelInferRequest")
    tensor = request.InferInputTensor(name="images", datatype="UINT8", shape=[1, 8, 8, 1])
    fields = {"model_name": "digits", "inputs": [tensor], "raw_input_contents": fields.pop("raw", [PIXELS]), **fields}
    return request(**fields)


def _tensor_with(**fields):
    from serve.protocols.grpc.messages import message

    contents = fields.pop("contents", None)
    tensor = message("ModelInferRequest").InferInputTensor(
        name=fields.pop("name", "images"),
        datatype=fields.pop("datatype", "UINT8"),
        shape=fields.pop("shape", [1, 8, 8, 1]),
    )
    if contents is not None:
        tensor.contents.CopyFrom(message("InferTensorContents")(**contents))
    return tensor


GRPC_ROWS = [
    (lambda: _infer_request(model_name="nope"), "NOT_FOUND", "model 'nope' not found; this server has: digits."),
    (lambda: _infer_request(model_version="01"), "NOT_FOUND", f"model 'digits' has no version '01'; {RULE}."),
    (lambda: _infer_request(inputs=[_tensor_with(), _tensor_with()], raw=[PIXELS, PIXELS]), "INVALID_ARGUMENT",
     'the request must have one input tensor, named "images".'),
    (lambda: _infer_request(inputs=[], raw=[]), "INVALID_ARGUMENT",
     'the request must have one input tensor, named "images".'),
    (lambda: _infer_request(inputs=[_tensor_with(name="x")]), "INVALID_ARGUMENT",
     "input tensor is named 'x'; expected \"images\"."),
    (lambda: _infer_request(inputs=[_tensor_with(datatype="BOOL")]), "INVALID_ARGUMENT",
     "datatype 'BOOL' is not supported; send UINT8 pixel values (or UINT16, UINT32, UINT64, INT8, INT16, INT32, "
     "INT64, FP16, FP32, FP64)."),
    (lambda: _infer_request(inputs=[_tensor_with(shape=[1, 8, 8, 2])]), "INVALID_ARGUMENT",
     '"shape" [1, 8, 8, 2] does not hold images of this model; expected [N,8,8,1] or [8,8,1].'),
    (lambda: _infer_request(inputs=[_tensor_with(shape=[9, 8, 8, 1])], raw=[bytes(576)]), "INVALID_ARGUMENT",
     "batch of 9 images exceeds this server's limit of 8; split it."),
    (lambda: _infer_request(raw=[bytes(63)]), "INVALID_ARGUMENT",
     "raw_input_contents[0] holds 63 bytes but UINT8 [1, 8, 8, 1] needs 64 (64 values of 1 bytes)."),
    (lambda: _infer_request(raw=[PIXELS, PIXELS]), "INVALID_ARGUMENT",
     "raw_input_contents holds 2 tensors; the request has 1."),
    (lambda: _infer_request(inputs=[_tensor_with(contents={"uint_contents": [0] * 64})]), "INVALID_ARGUMENT",
     "the input tensor has both contents and raw_input_contents; send one."),
    (lambda: _infer_request(inputs=[_tensor_with(contents={"uint_contents": [0] * 3})], raw=[]), "INVALID_ARGUMENT",
     "contents.uint_contents holds 3 values but shape [1, 8, 8, 1] needs 64."),
    (lambda: _infer_request(inputs=[_tensor_with(contents={"fp32_contents": [0.0] * 64})], raw=[]),
     "INVALID_ARGUMENT", "a UINT8 tensor's values go in contents.uint_contents, not contents.fp32_contents."),
    (lambda: _infer_request(inputs=[_tensor_with(datatype="FP16")], raw=[]), "INVALID_ARGUMENT",
     "FP16 has no typed contents; send it in raw_input_contents."),
    (lambda: _infer_request(inputs=[_tensor_with(contents={"uint_contents": [300] * 64})], raw=[]),
     "INVALID_ARGUMENT", "contents.uint_contents holds 300..300, outside UINT8's range 0..255."),
    (lambda: _infer_request(outputs=[{"name": "probabilities", "parameters": {"classification": {"int64_param": -3}}}]),
     "INVALID_ARGUMENT", "outputs[].parameters.classification.int64_param '-3' is not a positive integer: the number "
     "of classes to answer."),
    (lambda: _infer_request(outputs=[{"name": "logits"}]), "INVALID_ARGUMENT",
     "outputs names 'logits'; this model has one output, \"probabilities\"."),
    (lambda: _infer_request(inputs=[_tensor_with(shape=[3000, 8, 8, 1])], raw=[bytes(192000 + 9000)]),
     "RESOURCE_EXHAUSTED", None),  # over --max-body-bytes: grpc refuses it before any handler
]  # fmt: skip


@pytest.fixture(scope="module")
def grpc_stub(server):
    import grpc

    from serve.protocols.grpc.messages import message

    _, port = server
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=30)
    yield channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=message("ModelInferResponse").FromString,
    )
    channel.close()


@pytest.mark.parametrize("make, code, details", GRPC_ROWS, ids=[f"grpc {i}" for i in range(len(GRPC_ROWS))])
def test_a_bad_grpc_message_is_its_status_with_the_reason_and_the_server_serves_on(grpc_stub, make, code, details):
    import grpc

    with pytest.raises(grpc.RpcError) as raised:
        grpc_stub(make(), timeout=10)
    assert raised.value.code().name == code
    if details is not None:
        assert raised.value.details() == details
    good = grpc_stub(_infer_request(), timeout=10)
    probabilities = np.frombuffer(good.raw_output_contents[0], "<f4")
    assert probabilities.shape == (10,) and abs(probabilities.sum() - 1) < 1e-5


def test_the_wire_matrix_covers_each_part():
    assert len(BINARY_ROWS) >= 12 and len(UPLOAD_ROWS) >= 20 and len(GRPC_ROWS) >= 15
    assert {path.split("?")[0] for path, *_ in UPLOAD_ROWS} >= {CLASSIFY, "/models/mnist/classify"}

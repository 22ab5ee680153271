"""Stock clients with their defaults against `serve http --grpc-port`, on real MNIST digits: tritonclient over HTTP
(binary tensor data both ways) and over gRPC (raw contents), curl uploading PNGs raw and as a form. Every answer
equals the JSON path's. And gRPC shares HTTP's TLS, workers, metrics and drain."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from http_servers import free_port, start_server
from PIL import Image
from test_real_data import mnist_8k_2k
from test_serve_operations import certificate  # noqa: F401 - a fixture

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


@pytest.fixture(scope="module")
def mnist(real_data, tmp_path_factory):
    """A real MNIST model (8k training images, 3 epochs), exported; and 256 real test digits with their labels."""
    from export.exporter import export_run
    from kerasreg.config import TrainConfig
    from kerasreg.pipeline import train_and_evaluate

    data = mnist_8k_2k(real_data)
    root = tmp_path_factory.mktemp("mnist-export")
    train_and_evaluate(TrainConfig(dataset="mnist", epochs=3, l2=0.01), root / "run", datasets=data)
    export_run(root / "run", root / "export")
    return root / "export" / "model.onnx", data.test_images[:256], data.test_labels[:256]


@pytest.fixture(scope="module")
def server(mnist, no_tensorflow_env):
    model, _, _ = mnist
    grpc_port = free_port()
    process, port = start_server(model, no_tensorflow_env, "--grpc-port", str(grpc_port), "--drain-seconds", "0")
    _wait_for_grpc(f"127.0.0.1:{grpc_port}")
    yield port, grpc_port
    process.terminate()
    process.communicate(timeout=20)


def _wait_for_grpc(address: str, credentials=None) -> None:
    import grpc

    channel = grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=30)
    channel.close()


def _json_answer(port: int, images: np.ndarray) -> np.ndarray:
    body = {"inputs": [{"name": "images", "shape": list(images.shape), "datatype": "UINT8",
                        "data": images.reshape(-1).tolist()}]}  # fmt: skip
    response = httpx.post(f"http://127.0.0.1:{port}/v2/models/mnist/infer", json=body, timeout=30)
    assert response.status_code == 200, response.text
    output = response.json()["outputs"][0]
    return np.asarray(output["data"], np.float32).reshape(output["shape"])


def test_tritonclient_with_its_defaults_answers_as_the_json_path_does(server, mnist):
    import tritonclient.grpc as triton_grpc
    import tritonclient.http as triton_http

    port, grpc_port = server
    _, images, labels = mnist
    expected = _json_answer(port, images)
    assert (expected.argmax(axis=1) == labels).mean() > 0.85  # a real model on real digits
    answers = {}
    clients = (("http", triton_http, f"127.0.0.1:{port}"), ("grpc", triton_grpc, f"127.0.0.1:{grpc_port}"))
    for name, module, url in clients:
        client = module.InferenceServerClient(url)
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("mnist")
        metadata = client.get_model_metadata("mnist")
        inputs = (
            metadata["inputs"]
            if isinstance(metadata, dict)
            else [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in metadata.inputs]
        )
        assert inputs == [{"name": "images", "datatype": "UINT8", "shape": [-1, 28, 28, 1]}]
        tensor = module.InferInput("images", list(images.shape), "UINT8")
        tensor.set_data_from_numpy(images)  # the defaults: binary over HTTP, raw contents over gRPC
        result = client.infer("mnist", [tensor])
        answers[name] = result.as_numpy("probabilities")
        client.close()
    np.testing.assert_array_equal(answers["http"], expected)
    np.testing.assert_array_equal(answers["grpc"], expected)
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert 'kerasreg_requests_total{model="mnist",protocol="grpc",status="OK",version="1"}' in metrics


def test_tritonclients_classification_extension_answers_the_top_classes(server, mnist):
    # class_count was ignored silently before (issue 32): the client got probabilities where it asked for classes.
    import tritonclient.grpc as triton_grpc
    import tritonclient.http as triton_http

    port, grpc_port = server
    _, images, _ = mnist
    expected = _json_answer(port, images[:5])
    tops = np.argsort(-expected, axis=1, kind="stable")[:, :3]
    want = [[f"{expected[i, j]:f}:{j}:{j}".encode() for j in row] for i, row in enumerate(tops)]
    clients = (("http", triton_http, f"127.0.0.1:{port}"), ("grpc", triton_grpc, f"127.0.0.1:{grpc_port}"))
    for name, module, url in clients:
        client = module.InferenceServerClient(url)
        tensor = module.InferInput("images", [5, 28, 28, 1], "UINT8")
        tensor.set_data_from_numpy(images[:5])
        for binary in (True, False) if name == "http" else (True,):
            options = {"binary_data": binary} if name == "http" else {}
            asked = module.InferRequestedOutput("probabilities", class_count=3, **options)
            answer = client.infer("mnist", [tensor], outputs=[asked]).as_numpy("probabilities")
            assert answer.shape == (5, 3), (name, binary)
            got = [[value if isinstance(value, bytes) else value.encode() for value in row] for row in answer]
            assert got == want, (name, binary)
        client.close()
    assert "classification" in httpx.get(f"http://127.0.0.1:{port}/v2").json()["extensions"]


def test_grpc_typed_contents_answer_as_raw_contents_do(server, mnist):
    import tritonclient.grpc as triton_grpc
    from tritonclient.grpc import service_pb2

    _, grpc_port = server
    _, images, _ = mnist
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    request = service_pb2.ModelInferRequest(model_name="mnist", model_version="1")
    tensor = request.inputs.add(name="images", datatype="UINT8", shape=[8, 28, 28, 1])
    tensor.contents.uint_contents.extend(images[:8].reshape(-1).tolist())
    typed = client._client_stub.ModelInfer(request)  # the stub itself: tritonclient's infer always sends raw bytes
    probabilities = np.frombuffer(typed.raw_output_contents[0], "<f4").reshape(8, 10)
    tensor_raw = triton_grpc.InferInput("images", [8, 28, 28, 1], "UINT8")
    tensor_raw.set_data_from_numpy(images[:8])
    np.testing.assert_array_equal(probabilities, client.infer("mnist", [tensor_raw]).as_numpy("probabilities"))
    assert typed.model_version == "1" and typed.outputs[0].shape == [8, 10]
    client.close()


def test_curl_uploads_an_image_as_it_is_and_as_a_form(server, mnist, tmp_path):
    port, _ = server
    _, images, labels = mnist
    files = []
    for i in range(3):
        path = tmp_path / f"digit-{i}.png"
        Image.fromarray(images[i, ..., 0]).save(path)
        files.append(path)
    expected = _json_answer(port, images[:3])
    url = f"http://127.0.0.1:{port}/models/mnist/classify"
    raw = subprocess.run(
        ["curl", "-sS", "--data-binary", f"@{files[0]}", "-H", "Content-Type: image/png", url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    import json

    answer = json.loads(raw.stdout)
    assert (answer["model_name"], answer["model_version"]) == ("mnist", "1")
    (prediction,) = answer["predictions"]
    assert [t["class"] for t in prediction["top"]] == [str(k) for k in np.argsort(-expected[0], kind="stable")[:3]]
    assert prediction["top"][0]["probability"] == pytest.approx(float(expected[0].max()), abs=1e-6)
    form = subprocess.run(
        ["curl", "-sS", *[a for f in files for a in ("-F", f"image=@{f}")], url + "?top_k=1"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    predictions = json.loads(form.stdout)["predictions"]
    assert [p["filename"] for p in predictions] == [f.name for f in files]
    assert [p["top"][0]["class"] for p in predictions] == [str(k) for k in expected.argmax(axis=1)]
    assert [len(p["top"]) for p in predictions] == [1, 1, 1]


def test_grpc_shares_tls_workers_and_the_drain(mnist, no_tensorflow_env, certificate):  # noqa: F811
    import grpc
    import tritonclient.grpc as triton_grpc

    model, images, _ = mnist
    cert, key = certificate
    grpc_port = free_port()
    process, port = start_server(
        model, no_tensorflow_env, "--grpc-port", str(grpc_port), "--workers", "2", "--ssl-certificate", str(cert),
        "--ssl-keyfile", str(key), "--drain-seconds", "3", tls=cert,
    )  # fmt: skip
    try:
        credentials = grpc.ssl_channel_credentials(cert.read_bytes())
        _wait_for_grpc(f"127.0.0.1:{grpc_port}", credentials)
        client = triton_grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}", ssl=True, root_certificates=str(cert))
        tensor = triton_grpc.InferInput("images", [4, 28, 28, 1], "UINT8")
        tensor.set_data_from_numpy(images[:4])
        for _ in range(8):  # both workers serve the one port
            assert client.infer("mnist", [tensor]).as_numpy("probabilities").shape == (4, 10)
        plain = triton_grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        with pytest.raises(Exception):  # noqa: B017 - TLS only: a plain-text client gets no answer
            plain.is_server_live(client_timeout=3)
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        while client.is_server_ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not client.is_server_ready() and client.is_server_live()  # draining: not ready, still answering
        assert process.wait(timeout=30) == 0
        client.close()
    finally:
        if process.poll() is None:
            process.kill()


def test_a_grpc_port_taken_or_the_http_port_is_one_line_and_exit_2(mnist, no_tensorflow_env):
    import socket

    model, _, _ = mnist
    port = free_port()
    same = subprocess.run(
        [sys.executable, "-m", "serve", "http", str(model), "--port", str(port), "--grpc-port", str(port)],
        env=no_tensorflow_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert same.returncode == 2
    assert (
        same.stderr.strip()
        .splitlines()[-1]
        .endswith(f"--grpc-port {port} is --port too; give gRPC a port of its own (Triton's: 8001).")
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        grpc_port = taken.getsockname()[1]
        busy = subprocess.run(
            [sys.executable, "-m", "serve", "http", str(model), "--port", str(free_port()), "--grpc-port",
             str(grpc_port)],
            env=no_tensorflow_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert busy.returncode == 2
    assert (
        busy.stderr.strip()
        .splitlines()[-1]
        .endswith(f"cannot listen on 127.0.0.1:{grpc_port}: another process serves it; choose another --grpc-port.")
    )


def test_the_serving_pages_grpc_snippets_run(server, tmp_path):
    """The serving page's protoc command, tritonclient and compiled-stub snippets, as a user copies them, against the
    live server."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    page = (repo / "docs" / "serving.md").read_text()
    section = page.split("## Clients: tritonclient, gRPC, curl", 1)[1].split("\n## ")[0]
    snippets = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(snippets) == 2
    [protoc] = re.findall(r"```bash\n(mkdir -p client .*?)```", section, flags=re.S)
    _, grpc_port = server
    subprocess.run(["bash", "-c", protoc], cwd=repo, check=True, capture_output=True, env={
        **os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})  # fmt: skip
    client = repo / "client"
    try:
        shutil.copytree(client, tmp_path / "client")
    finally:
        shutil.rmtree(client, ignore_errors=True)  # the command writes it in the checkout, as a user's would
    for snippet in snippets:
        code = snippet.replace("localhost:8001", f"127.0.0.1:{grpc_port}") + "\nprint(tuple(probabilities.shape))\n"
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path / "client", capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip().splitlines()[-1] in ("(4, 10)", "(2, 10)")

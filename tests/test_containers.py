"""The images `make image` builds, run with podman (`make test-deploy`): the serve image with stock clients on a
repository of two models, and a training cluster of two train containers killed and resumed.

Everything talks on 127.0.0.1 (--network host). Skipped unless KERASREG_CONTAINER_TESTS is set (make
test-deploy sets it, after building the images), or where podman or the images are missing, saying which.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from http_servers import free_port
from local_cluster import free_ports, tf_config

REPO = Path(__file__).resolve().parent.parent
SERVE_IMAGE = "localhost/kerasreg-serve"
TRAIN_IMAGE = "localhost/kerasreg-train"
PODMAN = ["podman", "--runtime", "runc"]
ENV = {**os.environ, "CONTAINERS_CONF": str(REPO / "deploy" / "containers.conf")}
USER = "10001"  # the images' user: what it may read and write on the host's volumes

pytestmark = [pytest.mark.slow]


def _podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([*PODMAN, *args], env=ENV, capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture(scope="module", autouse=True)
def images():
    if not os.environ.get("KERASREG_CONTAINER_TESTS"):
        pytest.skip("the container tests run in make test-deploy, which builds the images first")
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: apt-get install podman runc mmdebstrap")
    for image in (SERVE_IMAGE, TRAIN_IMAGE):
        if _podman("image", "exists", image, check=False).returncode != 0:
            pytest.skip(f"{image} is not built: run make image")


def _shared(path: Path) -> Path:
    """`path` (made if need be) opened to the images' user (the tests run as another): a volume it reads and
    writes."""
    path.mkdir(parents=True, exist_ok=True)
    for folder in [path, *path.parents][:4]:
        folder.chmod(folder.stat().st_mode | 0o755)
    subprocess.run(["chmod", "-R", "a+rwX", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def repository(tmp_path_factory, digits_export):
    """A repository of two models: a real MNIST model (8k training images) and the digits one."""
    from test_real_data import mnist_8k_2k

    from export.exporter import export_run
    from kerasreg.config import TrainConfig
    from kerasreg.pipeline import train_and_evaluate

    data_dir = os.environ.get("KERASREG_TEST_DATA")
    if not data_dir:
        pytest.skip("KERASREG_TEST_DATA is not set: the serve image is checked on a real MNIST model")
    data = mnist_8k_2k(Path(data_dir))
    root = tmp_path_factory.mktemp("containers")
    train_and_evaluate(TrainConfig(dataset="mnist", epochs=3, l2=0.01), root / "run", datasets=data)
    export_run(root / "run", root / "export")
    models = root / "models"
    (models / "mnist" / "1").mkdir(parents=True)
    (models / "digits" / "1").mkdir(parents=True)
    shutil.copy(root / "export" / "model.onnx", models / "mnist" / "1")
    shutil.copy(digits_export, models / "digits" / "1")
    return _shared(models), data.test_images[:256], data.test_labels[:256]


def _start_serve(models: Path, name: str) -> tuple[int, int, float]:
    """The serve image on `models` (read-only, as the manifests run it); (HTTP port, gRPC port, seconds to ready)."""
    port, grpc_port = free_port(), free_port()
    started = time.monotonic()
    _podman(
        "run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
        "-v", f"{models}:/models:ro", SERVE_IMAGE,
        "http", "/models", "--host", "127.0.0.1", "--port", str(port), "--grpc-port", str(grpc_port),
        "--poll-seconds", "0.5",
    )  # fmt: skip
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                return port, grpc_port, time.monotonic() - started
        except httpx.TransportError:
            pass
        if time.monotonic() - started > 60:
            logs = _podman("logs", name, check=False).stderr
            _podman("rm", "-f", name, check=False)
            raise RuntimeError(f"the serve container did not get ready: {logs[-2000:]}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def serving(repository):
    models, _, _ = repository
    name = f"kerasreg-test-serve-{os.getpid()}"
    port, grpc_port, ready_after = _start_serve(models, name)
    yield name, port, grpc_port, ready_after
    _podman("rm", "-f", name, check=False)


def test_the_serve_image_is_ready_in_under_two_seconds_with_no_tensorflow_as_a_user(serving):
    name, _, _, ready_after = serving
    print(f"ready {ready_after:.2f} s after podman run")
    assert ready_after < 2.0
    probe = _podman("exec", name, "python", "-c", "import tensorflow", check=False)
    assert probe.returncode == 1 and "No module named 'tensorflow'" in probe.stderr
    assert _podman("exec", name, "id", "-u").stdout.strip() == USER
    wrote = _podman("exec", name, "touch", "/opt/kerasreg/x", check=False)
    assert wrote.returncode != 0 and "Read-only file system" in wrote.stderr


def test_stock_clients_with_their_defaults_and_a_real_upload_answer_from_the_container(serving, repository, tmp_path):
    import tritonclient.grpc as triton_grpc
    import tritonclient.http as triton_http
    from PIL import Image

    _, port, grpc_port, _ = serving
    _, images, labels = repository
    answers = {}
    clients = (("http", triton_http, f"127.0.0.1:{port}"), ("grpc", triton_grpc, f"127.0.0.1:{grpc_port}"))
    for kind, module, url in clients:
        client = module.InferenceServerClient(url)
        assert client.is_server_ready() and client.is_model_ready("mnist") and client.is_model_ready("digits")
        tensor = module.InferInput("images", list(images.shape), "UINT8")
        tensor.set_data_from_numpy(images)  # the defaults: binary over HTTP, raw contents over gRPC
        answers[kind] = client.infer("mnist", [tensor]).as_numpy("probabilities")
        client.close()
    np.testing.assert_array_equal(answers["http"], answers["grpc"])
    assert (answers["http"].argmax(axis=1) == labels).mean() > 0.85  # a real model on real digits
    digit = tmp_path / "digit.png"
    Image.fromarray(images[0, :, :, 0]).save(digit)
    with digit.open("rb") as image:
        upload = httpx.post(f"http://127.0.0.1:{port}/models/mnist/classify", files={"image": image}, timeout=30)
    assert upload.status_code == 200, upload.text
    [top] = upload.json()["predictions"]
    assert top["top"][0]["class"] == str(answers["http"][0].argmax())  # the PNG's pixels, answered alike
    assert top["top"][0]["probability"] == pytest.approx(float(answers["http"][0].max()), abs=1e-6)


def test_a_version_added_on_the_host_is_served_by_the_running_container(serving, repository, digits_export):
    _, port, _, _ = serving
    models, _, _ = repository
    (models / "digits" / "2").mkdir()
    shutil.copy(digits_export, models / "digits" / "2")
    _shared(models / "digits" / "2")
    deadline = time.monotonic() + 20
    while httpx.get(f"http://127.0.0.1:{port}/v2/models/digits/versions/2/ready").status_code != 200:
        assert time.monotonic() < deadline, "version 2 was not served within 20 s"
        time.sleep(0.2)
    assert sorted(httpx.get(f"http://127.0.0.1:{port}/v2/models/digits").json()["versions"]) == ["1", "2"]


def test_podman_stop_under_load_loses_no_request_in_flight_and_exits_0(repository):
    models, images, _ = repository
    name = f"kerasreg-test-stop-{os.getpid()}"
    port, _, _ = _start_serve(models, name)
    body = {"inputs": [{"name": "images", "shape": [8, 28, 28, 1], "datatype": "UINT8",
                        "data": images[:8].reshape(-1).tolist()}]}  # fmt: skip
    before_stop, after_stop = [], []  # (status or the error) of each request, by when it was sent
    stop_sent = threading.Event()
    stop = threading.Event()

    def load():
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                record = after_stop if stop_sent.is_set() else before_stop
                try:
                    record.append(client.post(f"http://127.0.0.1:{port}/v2/models/mnist/infer", json=body).status_code)
                except httpx.TransportError as e:
                    record.append(type(e).__name__)
                    time.sleep(0.01)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    stop_sent.set()
    stopped = _podman("stop", "--time", "30", name)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    code = _podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    logs = _podman("logs", name, check=False).stderr
    _podman("rm", "-f", name, check=False)
    assert stopped.returncode == 0
    assert len(before_stop) > 50, "the load ran before the stop"
    # Every request sent before the stop was answered, in full: none was in flight and lost.
    assert set(before_stop) == {200}, {r for r in before_stop if r != 200}
    # After it: answered while the server drained (200, or 503 once it says it is not ready), then refused.
    # A request sent as the server stops listening may find its connection closed unanswered; a client that
    # follows readiness (a Service, a load balancer) has stopped sending by then.
    assert set(after_stop) <= {200, 503, "ConnectError", "RemoteProtocolError", "ReadError"}, set(after_stop)
    assert 200 in after_stop and "ConnectError" in after_stop  # it drained, answering, then stopped listening
    assert code == "0", logs[-2000:]


def _train(name: str, runs: Path, ports: list[int], index: int, args: list[str]) -> subprocess.Popen:
    """One worker of a training cluster: the train image with the run directory's volume at /runs."""
    command = [
        *PODMAN, "run", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
        "-e", f"TF_CONFIG={tf_config(ports, index)}", "-v", f"{runs}:/runs", TRAIN_IMAGE, *args,
    ]  # fmt: skip
    return subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _cluster_run(runs: Path, args: list[str], tag: str, kill_at_epoch: int | None = None):
    """Both workers to the end, or until worker 1 is killed (podman kill) once the shared volume holds
    `kill_at_epoch` in both workers' backups; each worker's (exit code, stdout, stderr)."""
    ports = free_ports(2)
    names = [f"kerasreg-test-{tag}-{i}-{os.getpid()}" for i in range(2)]
    workers = [_train(names[i], runs, ports, i, args) for i in range(2)]
    try:
        if kill_at_epoch is not None:
            backups = [runs / "run" / "backup" / "latest.json", runs / "run.worker1" / "backup" / "latest.json"]
            deadline = time.monotonic() + 300
            while not all(_epoch(b) >= kill_at_epoch for b in backups):
                assert workers[1].poll() is None, workers[1].communicate()
                assert time.monotonic() < deadline, "the cluster did not reach the epoch to kill at"
                time.sleep(0.02)
            _podman("kill", names[1])
        return [(w.wait(timeout=300), *w.communicate(timeout=60)) for w in workers]
    finally:
        for name in names:
            _podman("rm", "-f", name, check=False)


def _epoch(latest: Path) -> int:
    try:
        return json.loads(latest.read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return -1


def test_a_training_cluster_in_containers_killed_mid_run_resumes_to_the_same_weights(tmp_path):
    args = ["--dataset", "digits", "--epochs", "40", "--batch-size", "128", "--backup-interval", "0", "--l2",
            "0.01", "--patience", "100", "--tol", "0", "--peer-timeout", "30", "--out", "/runs/run"]  # fmt: skip
    alone = _shared(tmp_path / "alone")
    left_alone = _cluster_run(alone, args, "alone")
    assert [code for code, _, _ in left_alone] == [0, 0], left_alone
    digest = {re.search(r"weights sha256 (\w+)", out).group(1) for _, out, _ in left_alone}
    assert len(digest) == 1
    runs = _shared(tmp_path / "killed")
    killed = _cluster_run(runs, args, "killed", kill_at_epoch=5)
    assert [code for code, _, _ in killed] == [3, 137], killed  # the chief: a peer was lost; worker 1: SIGKILL
    # Worker 1's backup outlived its container: it is on the volume, beside --out.
    held = _epoch(runs / "run.worker1" / "backup" / "latest.json")
    assert held >= 5
    resumed = _cluster_run(runs, args, "resumed")
    assert [code for code, _, _ in resumed] == [0, 0], resumed
    continued = [re.search(r"(\d+) epochs done, continuing", out) for _, out, _ in resumed]
    assert all(continued), [out for _, out, _ in resumed]
    assert {int(m.group(1)) for m in continued} == {int(m.group(1)) for m in continued[:1]} and int(
        continued[0].group(1)
    ) >= held - 1  # the newest commit both workers held (a kill can leave them one apart), not the start
    assert {re.search(r"weights sha256 (\w+)", out).group(1) for _, out, _ in resumed} == digest
    assert (runs / "run" / "history.csv").read_bytes() == (alone / "run" / "history.csv").read_bytes()
    assert not (runs / "run.worker1").exists()  # gone with the finished run
    print(f"killed at epoch {held} (worker 1's newest commit); resumed at epoch {continued[0].group(1)}")

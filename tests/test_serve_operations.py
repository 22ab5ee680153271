"""What operators need of `serve http`: TLS with HTTP/2, metrics, access log, CORS, versions reloaded under load."""

import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from http_servers import start_server
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow  # server processes

IMAGE = [[[0]] * 8] * 8


def _stop(process) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return err


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made now (PKCS#8 key, as the server reads)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a certificate with")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_over_tls_a_client_speaks_http_2_and_http_1_1(digits_export, no_tensorflow_env, certificate):
    cert, key = certificate
    process, port = start_server(
        digits_export,
        no_tensorflow_env,
        "--ssl-certificate",
        str(cert),
        "--ssl-keyfile",
        str(key),
        "--drain-seconds",
        "0",
        tls=cert,
    )
    try:
        for http2 in (True, False):
            with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=str(cert), http2=http2) as client:
                response = client.post("/v1/models/digits:predict", json={"instances": [IMAGE]})
                assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
                assert response.status_code == 200 and len(response.json()["predictions"][0]) == 10
                assert client.get("/v2/health/ready").json() == {"ready": True}
        with pytest.raises(httpx.TransportError):  # TLS only: a plain-text client gets no answer
            httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=5)
    finally:
        _stop(process)


def _samples(text: str) -> dict:
    """Every sample of the Prometheus text, parsed by prometheus-client's own parser: (name, labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_exactly_the_requests_sent_across_two_workers(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env, "--workers", "2", "--drain-seconds", "0")
    try:
        base = f"http://127.0.0.1:{port}"
        before = _samples(httpx.get(f"{base}/metrics").text)
        # A new connection for each request, so both workers take some.
        for _ in range(7):
            assert httpx.post(f"{base}/v1/models/digits:predict", json={"instances": [IMAGE] * 2}).status_code == 200
        tensor = {"name": "images", "shape": [3, 8, 8, 1], "datatype": "UINT8", "data": [0] * 192}
        for _ in range(4):
            assert httpx.post(f"{base}/v2/models/digits/infer", json={"inputs": [tensor]}).status_code == 200
        for _ in range(2):
            assert httpx.post(f"{base}/v1/models/digits:predict", content=b"{").status_code == 400
        assert httpx.get(f"{base}/v2/models/nope").status_code == 404
        after = _samples(httpx.get(f"{base}/metrics").text)
    finally:
        _stop(process)

    def moved(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    requests = "kerasreg_requests_total"
    assert moved(requests, model="digits", version="1", protocol="v1", status="200") == 7
    assert moved(requests, model="digits", version="1", protocol="v2", status="200") == 4
    assert moved(requests, model="digits", version="1", protocol="v1", status="400") == 2
    assert moved(requests, model="", version="", protocol="v2", status="404") == 1  # no label for a made-up name
    assert moved("kerasreg_images_total", model="digits", version="1") == 7 * 2 + 4 * 3
    assert moved("kerasreg_request_duration_seconds_count", model="digits") == 13
    assert after[("kerasreg_model_versions_loaded", (("model", "digits"),))] == 1


def test_the_access_log_is_one_line_per_request_and_off_by_default(digits_export, no_tensorflow_env):
    line = re.compile(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO serve\.access: 127\.0\.0\.1:\d+ "
        r'"POST /v1/models/digits:predict HTTP/1\.1" 200 (\d+) \d+\.\d{3}ms$'
    )
    for flag in (["--access-log"], []):
        process, port = start_server(digits_export, no_tensorflow_env, "--drain-seconds", "0", *flag)
        try:
            reply = httpx.post(f"http://127.0.0.1:{port}/v1/models/digits:predict", json={"instances": [IMAGE]})
        finally:
            err = _stop(process)
        logged = [m for m in map(line.match, err.splitlines()) if m]
        if flag:
            assert len(logged) == 1 and int(logged[0].group(1)) == len(reply.content), err
        else:
            assert logged == [] and "serve.access" not in err


def test_cors_only_when_asked_for_and_only_for_the_origins_given(digits_export, no_tensorflow_env):
    origin = "https://app.example"
    preflight = {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    for flag in (["--cors-origin", origin], []):
        process, port = start_server(digits_export, no_tensorflow_env, "--drain-seconds", "0", *flag)
        url = f"http://127.0.0.1:{port}/v1/models/digits:predict"
        try:
            asked = httpx.options(url, headers=preflight)
            posted = httpx.post(url, json={"instances": [IMAGE]}, headers={"origin": origin})
            stranger = httpx.post(url, json={"instances": [IMAGE]}, headers={"origin": "https://evil.example"})
        finally:
            _stop(process)
        assert asked.status_code == 204 and posted.status_code == 200
        assert "access-control-allow-origin" not in stranger.headers
        if flag:
            assert asked.headers["access-control-allow-origin"] == origin
            assert asked.headers["access-control-allow-methods"] == "POST"
            assert asked.headers["access-control-allow-headers"] == "content-type, inference-header-content-length"
            assert posted.headers["access-control-allow-origin"] == origin and posted.headers["vary"] == "Origin"
        else:
            assert not [h for h in (*asked.headers, *posted.headers) if h.startswith("access-control-")]


class Load:
    """Requests in a loop on one keep-alive connection, without a version; what answered, and anything not 200."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/v1/models/digits:predict"
        self.versions: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(self.url, json={"instances": [IMAGE]})
                except httpx.HTTPError as e:
                    self.failures.append(repr(e))
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text}")
                else:
                    self.versions.append(response.json()["model_version"])

    def stop(self) -> "Load":
        self._stop.set()
        self.thread.join(timeout=30)
        return self


def _until(condition, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_versions_swap_in_and_out_under_load_without_a_failed_request(digits_export, no_tensorflow_env, tmp_path):
    root = tmp_path / "models"
    (root / "digits" / "1").mkdir(parents=True)
    shutil.copy(digits_export, root / "digits" / "1" / "model.onnx")
    process, port = start_server(root, no_tensorflow_env, "--poll-seconds", "0.2", "--drain-seconds", "0")
    status_url = f"http://127.0.0.1:{port}/v1/models/digits"

    def states():
        return {s["version"]: s["state"] for s in httpx.get(status_url).json()["model_version_status"]}

    try:
        load = Load(port)
        assert _until(lambda: len(load.versions) > 20)
        (root / "digits" / "2").mkdir()
        shutil.copy(digits_export, root / "digits" / "2" / "model.onnx")
        assert _until(lambda: load.versions and load.versions[-1] == "2")  # the newest answers once it is in
        shutil.rmtree(root / "digits" / "1")
        assert _until(lambda: states() == {"2": "AVAILABLE"})
        (root / "digits" / "3").mkdir()
        (root / "digits" / "3" / "model.onnx").write_bytes(b"garbage")
        assert _until(lambda: states().get("3") == "END")
        served_before = len(load.versions)
        assert _until(lambda: len(load.versions) > served_before + 20)
        load.stop()
        ready = httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").json()
        metadata = httpx.get(f"http://127.0.0.1:{port}/v2/models/digits").json()
    finally:
        err = _stop(process)
    assert load.failures == [] and set(load.versions) == {"1", "2"} and load.versions[-1] == "2"
    assert ready == {"ready": True}
    assert err.count("model digits version 3 is not served") == 1, err
    assert "model digits version 1 removed" in err and "model digits version 1 drained" in err
    assert metadata["versions"] == ["2"] and metadata["parameters"]["version"] == "2"
    assert [(s["version"], s["state"]) for s in metadata["parameters"]["version_states"]] == [
        ("3", "FAILED"),
        ("2", "AVAILABLE"),
    ]

"""`make bench` can start on a fresh machine: each benchmark script's set-up runs, not its timings.

The baseline endpoint and the server answer every request kind the benchmark sends;
wrk drives a server; every script builds its command line; the training and
export commands the benchmarks measure start and finish on small data.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from benchmarks import serve_bench
from benchmarks.measure import PYTHON, REPO, free_port, start_server, stop_server, wrk

pytestmark = pytest.mark.slow  # servers and subprocesses
# The scripts a user runs (those with a __main__); the rest are modules they import (measure.py, ...).
SCRIPTS = sorted(
    p.name
    for p in (REPO / "benchmarks").glob("*.py")
    if 'if __name__ == "__main__":' in p.read_text() and p.name != "naive_endpoint.py"
)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_benchmark_script_builds_its_command_line(script):
    done = subprocess.run([PYTHON, str(REPO / "benchmarks" / script), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr[-2000:]


@pytest.fixture(scope="module")
def export(digits_export) -> Path:
    return digits_export.parent


@pytest.fixture(scope="module")
def servers(export):
    """Both servers the serving benchmark measures, each on a port of its own, started as the benchmark starts them."""
    model, started = export / "model.onnx", {}
    try:
        for name, command in serve_bench.server_commands(model).items():
            port = free_port()
            started[name] = (
                start_server([*command, *(["--port", str(port)] if name == "serve" else [str(port)])], port),
                port,
            )
        yield {name: port for name, (_, port) in started.items()}
    finally:
        for process, _ in started.values():
            stop_server(process)


@pytest.mark.parametrize("server", ["naive", "serve"])
def test_both_servers_answer_every_request_kind_the_benchmark_sends(export, servers, tmp_path, server):
    bodies = serve_bench.request_bodies(export, tmp_path)
    for kind, path in serve_bench.KINDS.items():
        reply = httpx.post(f"http://127.0.0.1:{servers[server]}{path}", content=bodies[kind].read_bytes())
        assert reply.status_code == 200, (server, kind, reply.text)
        answer = reply.json()
        probabilities = answer["outputs"][0]["data"] if "v2" in kind else answer["predictions"][0]
        assert np.isclose(sum(probabilities), 1.0, atol=1e-5)


def test_wrk_drives_the_server(export, servers, tmp_path):
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed: apt-get install wrk (.ci/run installs it)")
    body = serve_bench.request_bodies(export, tmp_path)["v2 infer"]
    result = wrk(f"http://127.0.0.1:{servers['serve']}{serve_bench.KINDS['v2 infer']}", body, seconds=1)
    assert result["requests_per_s"] > 0 and result["errors"] == 0


@pytest.mark.realdata
def test_the_training_benchmarks_command_starts_on_its_folder(real_data, tmp_path):
    from benchmarks.train_bench import kerasreg_train, mnist_8k_2k_folder

    folder = tmp_path / "mnist-8k-2k"
    folder.mkdir()
    mnist_8k_2k_folder(real_data, folder)
    args = ["--dataset", "mnist", "--source", "files", "--data-dir", str(folder), "--l2", "0.01", "--epochs", "2"]
    ours = kerasreg_train([*args, "--batch-size", "1024"], tmp_path / "run")
    assert ours["n_test"] == 2000 and ours["epochs_trained"] == 2
    assert {"steady_epoch_seconds", "compiled_call_seconds", "fixed_seconds_per_epoch"} <= set(ours["timings"])


def test_the_search_benchmarks_baseline_runs(tmp_path):
    from benchmarks.l2_search_bench import sklearn_search
    from kerasreg.datasets import load_dataset

    found = sklearn_search(load_dataset("digits"), (1e-2, 1e-3), 0.1, 0)
    assert 0.9 < found["accuracy"] <= 1 and found["C"] > 0


def test_the_artifacts_benchmarks_export_command_starts(digits_export, tmp_path):
    run = digits_export.parent.parent / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "export",
            str(run),
            "--out",
            str(tmp_path / "all"),
            "--litert",
            "--c",
            "--quantize",
            "int8",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    card = json.loads((tmp_path / "all" / "model.json").read_text())
    assert {"model.onnx", "model.int8.onnx", "model.tflite", "model.int8.tflite", "c"} <= set(card["files"])


def test_the_protocol_benchmark_sends_every_kind_and_measures_them(export, tmp_path):
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed: apt-get install wrk (.ci/run installs it)")
    from benchmarks import protocol_bench

    images = np.random.default_rng(0).integers(0, 256, (protocol_bench.BATCH, 8, 8, 1), dtype=np.uint8)
    results = protocol_bench.run(export, images, rounds=1, seconds=1, work=tmp_path)
    (only,) = results["rounds"]
    assert set(only["batch"]) == {"json", "binary", "grpc"} and all(s > 0 for s in only["batch"].values())
    assert only["single"]["grpc"]["requests_per_s"] > 0 and only["single"]["http"]["errors"] == 0
    assert [t["status"] for t in results["targets"]][2] == "info" and len(results["targets"]) == 3


@pytest.mark.realdata
def test_the_course_benchmark_runs_the_notebook_loop(real_data):
    from benchmarks.course_bench import notebook_loop

    seconds, cost = notebook_loop(real_data / "catvnoncat")
    assert seconds > 0 and cost == pytest.approx(0.1362, abs=1e-3)  # the notebook's cost before its last update


def test_the_soaks_hostile_phases_get_every_answer_they_expect(export, no_tensorflow_env):
    from benchmarks.soak_phases import HealthProbe, grpc_phase, upload_phase

    port, grpc_port = free_port(), free_port()
    command = [PYTHON, "-m", "serve", "http", str(export / "model.onnx"), "--name", "soak", "--port", str(port),
               "--grpc-port", str(grpc_port), "--max-batch", "32"]  # fmt: skip
    server = start_server(command, port)
    try:
        with HealthProbe(port) as probe:
            grpc = grpc_phase(grpc_port, (8, 8, 1), 120)
            uploads = upload_phase(port, 40)
    finally:
        stop_server(server)
    assert grpc["calls"] == 120 and grpc["unexpected"] == [] and grpc["outcomes"]["valid: OK"] > 90
    assert uploads["uploads"] == 40 and uploads["unexpected"] == []
    assert uploads["outcomes"]["2M JPEG comments: 400"] >= 1 and uploads["outcomes"]["20k progressive scans: 400"] >= 1
    assert probe.summary()["failed"] == 0

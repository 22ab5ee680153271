"""The wire formats against each other, on one `serve http --grpc-port` in one run: a batch of 256 real MNIST
images as v2 JSON, v2 binary tensor data and gRPC; and single images over gRPC beside HTTP.

    python benchmarks/protocol_bench.py EXPORT_DIR [--data DIR] [--rounds 3] [--seconds 3]

- Batch: each kind's request is built once (JSON text, the binary body, the serialized
  gRPC message) and sent 40 times in a row over one kept-alive connection from this
  process; the figure is the median time per request. Building and reading the
  messages is left out on purpose: what differs between the formats is what the
  server does with them (parse 200,704 numbers, or take the bytes as they are).
- Single images: wrk (HTTP, v2 JSON) and a grpc.aio client (16 calls in flight, the
  same as wrk's 16 connections), each pinned to core 1 with the server on core 0. The
  gRPC client is Python and costs far more per request than wrk: the row says how much
  of its core it used, so a figure held down by the client reads as such.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import (  # noqa: E402
    PYTHON,
    Target,
    add_data_argument,
    free_port,
    median,
    median_seconds,
    start_server,
    stop_server,
    wrk,
)

BATCH = 256
REPEATS = 40

# A grpc.aio load generator: `in_flight` calls at once for `seconds`; its rate, latencies and own CPU time.
_GRPC_LOAD = """
import asyncio, json, resource, sys, time
import grpc
address, body, seconds, in_flight = sys.argv[1], open(sys.argv[2], "rb").read(), float(sys.argv[3]), int(sys.argv[4])
async def main():
    channel = grpc.aio.insecure_channel(address)
    call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
    await call(body)
    latencies, stop = [], time.perf_counter() + seconds
    async def worker():
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await call(body)
            latencies.append(time.perf_counter() - started)
    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    latencies.sort()
    print(json.dumps({"requests_per_s": len(latencies) / wall, "p50_s": latencies[len(latencies) // 2],
                      "p99_s": latencies[int(len(latencies) * 0.99)], "client_cpu_share": cpu / wall}))
    await channel.close()
asyncio.run(main())
"""


def bodies(images: np.ndarray, work: Path) -> dict:
    """Each kind's request, built once: (path or method, headers, body)."""
    from serve.protocols.grpc.messages import message

    flat = images.reshape(-1)
    tensor = {"name": "images", "shape": list(images.shape), "datatype": "UINT8"}
    as_json = json.dumps({"inputs": [{**tensor, "data": flat.tolist()}]}).encode()
    header = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": flat.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()  # fmt: skip
    request = message("ModelInferRequest")
    grpc_tensor = request.InferInputTensor(name="images", datatype="UINT8", shape=list(images.shape))
    serialized = request(model_name="bench", inputs=[grpc_tensor], raw_input_contents=[flat.tobytes()])
    one = images[:1].reshape(-1).tolist()
    single = json.dumps({"inputs": [{**tensor, "shape": [1, *images.shape[1:]], "data": one}]})
    single_grpc = request(
        model_name="bench",
        inputs=[request.InferInputTensor(name="images", datatype="UINT8", shape=[1, *images.shape[1:]])],
        raw_input_contents=[images[:1].tobytes()],
    )
    (work / "single.json").write_text(single)
    (work / "single.grpc").write_bytes(single_grpc.SerializeToString())
    return {
        "json": {"content-type": "application/json"}, "json_body": as_json,
        "binary": {"inference-header-content-length": str(len(header)), "content-type": "application/octet-stream"},
        "binary_body": header + flat.tobytes(),
        "grpc_body": serialized.SerializeToString(),
    }  # fmt: skip


def batch_round(http_port: int, grpc_port: int, built: dict) -> dict:
    """Median seconds per request of each kind, the same batch."""
    import grpc
    import httpx

    url = f"http://127.0.0.1:{http_port}/v2/models/bench/infer"
    results = {}
    with httpx.Client(timeout=60) as client:
        for kind in ("json", "binary"):

            def send(kind=kind):
                response = client.post(url, content=built[f"{kind}_body"], headers=built[kind])
                assert response.status_code == 200, response.text[:300]

            results[kind] = median_seconds(send, REPEATS, warmup=1)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
    results["grpc"] = median_seconds(lambda: call(built["grpc_body"], timeout=60), REPEATS, warmup=1)
    channel.close()
    return results


def single_round(http_port: int, grpc_port: int, work: Path, seconds: float, pinned: bool) -> dict:
    """Single images: wrk on HTTP v2 JSON, and the grpc.aio load generator, each on core 1."""
    cpus = "1" if pinned else None
    url = f"http://127.0.0.1:{http_port}/v2/models/bench/infer"
    wrk(url, work / "single.json", 1, cpus=cpus)
    http = wrk(url, work / "single.json", seconds, cpus=cpus)
    prefix = ["taskset", "-c", cpus] if cpus else []
    command = [*prefix, PYTHON, "-c", _GRPC_LOAD, f"127.0.0.1:{grpc_port}", str(work / "single.grpc")]
    subprocess.run([*command, "1", "16"], check=True, capture_output=True)  # warm-up
    out = subprocess.run([*command, str(seconds), "16"], check=True, capture_output=True, text=True).stdout
    return {"http": http, "grpc": json.loads(out.strip().splitlines()[-1])}


def run(export: Path, images: np.ndarray, rounds: int, seconds: float, work: Path) -> dict:
    """Every round's figures and the targets."""
    built = bodies(images[:BATCH], work)
    pinned = (os.cpu_count() or 1) >= 2
    http_port, grpc_port = free_port(), free_port()
    command = [PYTHON, "-m", "serve", "http", str(export / "model.onnx"), "--name", "bench", "--port", str(http_port),
               "--grpc-port", str(grpc_port), "--max-batch", str(BATCH)]  # fmt: skip
    process = start_server(command, http_port, "0" if pinned else None)
    per_round = []
    try:
        for r in range(rounds):
            batch = batch_round(http_port, grpc_port, built)
            single = single_round(http_port, grpc_port, work, seconds, pinned)
            per_round.append({"batch": batch, "single": single})
            print(
                f"  round {r + 1}: batch of {BATCH}: JSON {batch['json'] * 1e3:.2f} ms, binary "
                f"{batch['binary'] * 1e3:.2f} ms, gRPC {batch['grpc'] * 1e3:.2f} ms; single: HTTP "
                f"{single['http']['requests_per_s']:.0f} req/s, gRPC {single['grpc']['requests_per_s']:.0f} req/s "
                f"(client {single['grpc']['client_cpu_share']:.0%} of a core)",
                flush=True,
            )
    finally:
        stop_server(process)
    json_ms = median(r["batch"]["json"] for r in per_round) * 1e3
    targets = []
    for kind, label in (("binary", "v2 binary tensor data over HTTP"), ("grpc", "gRPC, raw contents")):
        ratio = median(r["batch"][kind] / r["batch"]["json"] for r in per_round)
        targets.append(Target(
            f"a batch of {BATCH} MNIST images: {label}, time per request",
            f"{median(r['batch'][kind] for r in per_round) * 1e3:.2f} ms",
            f"v2 JSON {json_ms:.2f} ms",
            ratio,
            "<= 1/3 (aim 1/5)",
            ratio <= 1 / 3,
        ))  # fmt: skip
    grpc_rps = median(r["single"]["grpc"]["requests_per_s"] for r in per_round)
    http_rps = median(r["single"]["http"]["requests_per_s"] for r in per_round)
    share = median(r["single"]["grpc"]["client_cpu_share"] for r in per_round)
    targets.append(Target(
        "1 image over gRPC, 16 calls in flight (a Python grpc.aio client)",
        f"{grpc_rps:,.0f} req/s, p99 {median(r['single']['grpc']['p99_s'] for r in per_round) * 1e3:.2f} ms; the "
        f"client used {share:.0%} of its core",
        f"HTTP v2 JSON with wrk {http_rps:,.0f} req/s",
        grpc_rps / http_rps,
        "report",
        None,
    ))  # fmt: skip
    return {"targets": [t.row() for t in targets], "rounds": per_round, "batch": BATCH}


def main() -> int:
    """Run the protocol benchmark on an export of real MNIST, and print its JSON."""
    from kerasreg.datasets.idx_files import read_idx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="an export of a model of MNIST's 28x28x1 images (python -m export)")
    add_data_argument(parser)
    parser.add_argument("--rounds", type=int, default=3, help="repeats; medians are reported (default: 3)")
    parser.add_argument("--seconds", type=float, default=3, help="length of each load run (default: 3)")
    args = parser.parse_args()
    images = read_idx(args.data / "mnist" / "t10k-images-idx3-ubyte.gz")[-BATCH:, ..., None]
    with tempfile.TemporaryDirectory() as work:
        print(json.dumps(run(args.export, images, args.rounds, args.seconds, Path(work)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

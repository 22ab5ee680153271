"""The artifacts a user chooses from, on real MNIST 8k/2k: size, runtime, accuracy, agreement, latency.

Run by run_all.py (make bench) on the MNIST run it trains, exported with
`python -m export RUN_DIR --out EXPORT_DIR --litert --c --quantize int8`. For each of
SavedModel, ONNX, ONNX int8, LiteRT, LiteRT int8, C float and C int8, on the 2,000
real test images: the file's size (a C model's flash), the runtime it needs and that
runtime's installed size, test accuracy, argmax agreement with the Keras model, and
the median latency of one image and of a batch of 1,024, beside bare onnxruntime (an
InferenceSession with its default options on model.onnx) timed in the same run. The
C models are timed by a harness compiled with -O2 that calls kerasreg_predict in a
loop (clock_gettime).
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import median_seconds  # noqa: E402

BATCH = 1024
ROUNDS = 200  # single-image calls timed per artifact; batches: ROUNDS // 20
C_TIMER = """\
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c99 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    long n = argc > 2 ? atol(argv[1]) : 0, rounds = argc > 2 ? atol(argv[2]) : 0, r, k;
    unsigned char *pixels = malloc((size_t)n * KERASREG_INPUTS);
    float probabilities[KERASREG_CLASSES];
    double start, single, batch;
    volatile int sink = 0;
    if (fread(pixels, KERASREG_INPUTS, (size_t)n, stdin) != (size_t)n) return 2;
    start = now();
    for (r = 0; r < rounds; r++) sink += kerasreg_predict(pixels + (r % n) * KERASREG_INPUTS, probabilities);
    single = (now() - start) / rounds;
    start = now();
    for (r = 0; r < rounds / 20 + 1; r++) {
        for (k = 0; k < n; k++) sink += kerasreg_predict(pixels + k * KERASREG_INPUTS, probabilities);
    }
    batch = (now() - start) / (rounds / 20 + 1);
    printf("%.9f %.9f %d\\n", single, batch, sink & 1);
    free(pixels);
    return 0;
}
"""


def installed_mb(*distributions: str) -> float:
    """The installed size of these distributions' files, in MB."""
    total = 0
    for name in distributions:
        for file in importlib.metadata.distribution(name).files or []:
            path = Path(file.locate())
            if path.is_file():
                total += path.stat().st_size
    return total / 1e6


def folder_bytes(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def python_runners(export: Path) -> dict:
    """Run functions (images -> probabilities) of the artifacts Python runs, by name."""
    import onnxruntime as ort
    import tensorflow as tf

    from serve import Model

    signature = tf.saved_model.load(str(export / "saved_model")).signatures["serving_default"]
    bare = ort.InferenceSession(str(export / "model.onnx"), providers=["CPUExecutionProvider"])
    files = ("model.onnx", "model.int8.onnx", "model.tflite", "model.int8.tflite")
    models = {name: Model.load(export / name) for name in files}
    return {
        "bare onnxruntime (model.onnx)": lambda x: bare.run(None, {"images": x})[0],
        "SavedModel": lambda x: signature(images=tf.constant(x))["probabilities"].numpy(),
        "ONNX": models["model.onnx"].run,
        "ONNX int8": models["model.int8.onnx"].run,
        "LiteRT": models["model.tflite"].run,
        "LiteRT int8": models["model.int8.tflite"].run,
    }


def c_results(export: Path, images: np.ndarray, work: Path) -> dict:
    """(single-image seconds, batch seconds, probabilities) of the float and int8 C models."""
    from export.c_model import CFLAGS, HARNESS, find_compiler

    compiler = find_compiler()
    results = {}
    for name, folder in (("C float", export / "c"), ("C int8", export / "c" / "int8")):
        if compiler is None:
            continue
        for program, source in (("harness", HARNESS), ("timer", C_TIMER)):
            (work / f"{program}.c").write_text(source)
            sources = [str(folder / "model.c"), str(work / f"{program}.c")]
            subprocess.run([compiler, *CFLAGS, f"-I{folder}", *sources, "-o", str(work / program), "-lm"], check=True)

        def execute(program: str, *args, data: np.ndarray) -> bytes:
            command = [str(work / program), *args]
            return subprocess.run(command, input=data.tobytes(), capture_output=True, check=True).stdout

        outputs = execute("harness", str(len(images)), data=images)
        probabilities = np.frombuffer(outputs, np.float32).reshape(len(images), -1)
        single, batch = execute("timer", str(BATCH), str(ROUNDS * 50), data=images[:BATCH]).split()[:2]
        results[name] = (float(single), float(batch), probabilities)
    return results


RUNTIMES = {
    "SavedModel": ("TensorFlow", ("tensorflow", "keras")),
    "ONNX": ("onnxruntime", ("onnxruntime",)),
    "ONNX int8": ("onnxruntime", ("onnxruntime",)),
    "LiteRT": ("ai-edge-litert", ("ai-edge-litert",)),
    "LiteRT int8": ("ai-edge-litert", ("ai-edge-litert",)),
    "C float": ("none (libm)", ()),
    "C int8": ("none (libm)", ()),
}
FILES = {
    "SavedModel": "saved_model",
    "ONNX": "model.onnx",
    "ONNX int8": "model.int8.onnx",
    "LiteRT": "model.tflite",
    "LiteRT int8": "model.int8.tflite",
    "C float": "c/model.c",
    "C int8": "c/int8/model.c",
}


def run(run_dir: Path, export: Path, images: np.ndarray, labels: np.ndarray) -> dict:
    """Every artifact's row, and bare onnxruntime's latencies, as results.json keeps them."""
    import json

    from kerasreg.model import predict_probabilities
    from kerasreg.run_directory.record import RunRecord

    finished = RunRecord.open(run_dir)
    flash = json.loads((export / "model.json").read_text())["c"]["flash_bytes"]
    keras = predict_probabilities(finished.load_model(), images, finished.task)
    batch = images[:BATCH]
    rows, measured = [], {}
    for name, fn in python_runners(export).items():
        probabilities = fn(images)
        single = median_seconds(lambda fn=fn: fn(images[:1]), ROUNDS, warmup=5)
        whole = median_seconds(lambda fn=fn: fn(batch), ROUNDS // 20, warmup=5)
        measured[name] = (single, whole, probabilities)
    with tempfile.TemporaryDirectory() as work:
        measured.update(c_results(export, images, Path(work)))
    bare_single, bare_batch, _ = measured.pop("bare onnxruntime (model.onnx)")
    for name, (single, whole, probabilities) in measured.items():
        runtime, distributions = RUNTIMES[name]
        file = export / FILES[name]
        rows.append(
            {
                "artifact": name,
                "file": FILES[name],
                "bytes": folder_bytes(file),
                "flash_bytes": flash["int8" if name == "C int8" else "float"] if name.startswith("C ") else None,
                "runtime": runtime,
                "runtime_mb": round(installed_mb(*distributions), 1) if distributions else 0.0,
                "accuracy": float((probabilities.argmax(1) == labels).mean()),
                "argmax_agreement": float((probabilities.argmax(1) == keras.argmax(1)).mean()),
                "single_us": single * 1e6,
                "batch_ms": whole * 1e3,
                "single_vs_bare": single / bare_single,
                "batch_vs_bare": whole / bare_batch,
            }
        )
    return {
        "rows": rows,
        "bare_onnxruntime": {"single_us": bare_single * 1e6, "batch_ms": bare_batch * 1e3},
        "keras_accuracy": float((keras.argmax(1) == labels).mean()),
        "n_test": int(len(labels)),
    }


def markdown(results: dict) -> list[str]:
    """The README's artifact table."""
    bare = results["bare_onnxruntime"]
    lines = [
        "",
        f"The artifacts of one MNIST 8k/2k run (`--litert --c --quantize int8`), on the {results['n_test']:,} real "
        f"test images; Keras's accuracy {results['keras_accuracy']:.4f}. Latency: the median of one image and of a "
        f"batch of 1,024, beside bare onnxruntime on model.onnx in the same run ({bare['single_us']:.1f} us, "
        f"{bare['batch_ms']:.2f} ms).",
        "",
        "| artifact | file size | runtime (installed) | test accuracy | argmax = Keras | 1 image | vs bare "
        "| 1,024 images | vs bare |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        runtime = f"{row['runtime']} ({row['runtime_mb']:.0f} MB)" if row["runtime_mb"] else row["runtime"]
        size = f"{row['bytes'] / 1024:,.1f} KiB"
        if row["flash_bytes"] is not None:  # a C model's cost on a board is its flash, not its source text
            size = f"{row['flash_bytes'] / 1024:,.1f} KiB of flash"
        lines.append(
            f"| {row['artifact']} (`{row['file']}`) | {size} | {runtime} | {row['accuracy']:.4f} | "
            f"{row['argmax_agreement']:.4f} | {row['single_us']:.1f} us | {row['single_vs_bare']:.2f} | "
            f"{row['batch_ms']:.2f} ms | {row['batch_vs_bare']:.2f} |"
        )
    return lines

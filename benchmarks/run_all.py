"""`make bench`: every benchmark, benchmarks/results.json, and the Performance page's tables (docs/performance.md).

    python benchmarks/run_all.py [--data DIR] [--rounds 3] [--no-readme]

Trains MNIST 8k/2k against scikit-learn and the numpy floor (train_bench.py),
runs `--l2 auto` against LogisticRegressionCV on MNIST 8k and the CIFAR-10 sample
(l2_search_bench.py), exports the MNIST run, serves it against the naive endpoint and bare onnxruntime
(serve_bench.py), sends a batch of 256 MNIST images as v2 JSON, v2 binary and gRPC to one server and single
images over gRPC beside HTTP (protocol_bench.py), loads a folder of 2,000 camera-sized photos against Keras's
loader (folder_bench.py),
runs the course's 2,000 iterations against the notebook's numpy loop (course_bench.py),
then writes the table between the README's bench markers.
Each figure sits beside its baseline measured in the same run; ratios are
medians over rounds. Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import (  # noqa: E402
    artifacts_bench,
    course_bench,
    folder_bench,
    l2_search_bench,
    protocol_bench,
    serve_bench,
    train_bench,
)
from benchmarks.measure import (  # noqa: E402
    PYTHON,
    REPO,
    add_data_argument,
    machine,
    require_wrk,
    run_json,
    targets_table,
    write_readme_section,
)
from kerasreg.datasets import load_dataset  # noqa: E402

RESULTS = REPO / "benchmarks" / "results.json"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
PROFILE_ROWS = [
    ("start_tensorflow_seconds", "import TensorFlow, choose the strategy"),
    ("load_data_seconds", "load the dataset files"),
    ("build_model_seconds", "split, per-pixel statistics, build and compile the model"),
    ("setup_seconds", "train: preprocess the features once, restore a backup, set up callbacks"),
    ("first_epoch_seconds", "train: first epoch (graph tracing, then the epoch)"),
    ("later_epochs_seconds", "train: the other epochs (steps, objective and validation in one graph call each)"),
    ("callbacks_seconds", "train: callbacks (history.csv, learning rate, early stopping, backups)"),
    ("evaluate_seconds", "test metrics"),
    ("write_run_dir_seconds", "write model.keras, test sample, plots, metrics.json"),
]


def profile_rows(run: dict) -> list[tuple[str, float]]:
    """(phase, seconds) of one training run, from its metrics.json timings."""
    timings = dict(run["timings"])
    timings["later_epochs_seconds"] = timings["epochs_seconds"] - timings["first_epoch_seconds"]
    rows = [(label, timings[key]) for key, label in PROFILE_ROWS]
    accounted = sum(seconds for _, seconds in rows)
    rows.append(("Python start, imports before the clock, exit", run["process_seconds"] - accounted))
    rows.append(("whole process (`python -m kerasreg.train`)", run["process_seconds"]))
    return rows


def markdown(results: dict) -> str:
    """The README's Performance section body."""
    lines = [
        f"Measured by `make bench` on {results['date']}: {results['machine']}. Each figure's baseline ran in the "
        "same script run; ratios are medians over rounds (figure / baseline).",
        "",
        *targets_table(results["targets"]),
    ]
    run = results["training"]["profile"]
    lines += [
        "",
        "Where the time goes in one `python -m kerasreg.train --dataset mnist --l2 0.01 --batch-size 1024` run on "
        f"MNIST 8k ({run['epochs_trained']} epochs, the run with the median `train_seconds`):",
        "",
        "| phase | seconds |",
        "|---|---|",
    ]
    lines += [f"| {label} | {seconds:.3f} |" for label, seconds in profile_rows(run)]
    lines += artifacts_bench.markdown(results["artifacts"])
    return "\n".join(lines)


def main() -> int:
    """Run everything; write results.json and the README section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--rounds", type=int, default=3, help="repeats; medians are reported (default: 3)")
    parser.add_argument(
        "--http-rounds", type=int, default=5, help="repeats of the HTTP runs, the noisiest figures (default: 5)"
    )
    parser.add_argument("--no-readme", action="store_true", help="write results.json only")
    args = parser.parse_args()
    require_wrk()
    if not (args.data / "mnist" / "t10k-images-idx3-ubyte.gz").is_file():
        sys.exit(f"no MNIST test set in {args.data / 'mnist'}; pass --data DIR or set KERASREG_TEST_DATA")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        print("training benchmark", flush=True)
        training = train_bench.run(args.data, args.rounds, work)
        print("l2 search benchmark", flush=True)
        search = l2_search_bench.run(args.data, work)
        print("export, and the artifacts", flush=True)
        every_format = ["--litert", "--c", "--quantize", "int8"]
        run_json([PYTHON, "-m", "export", str(work / "run-mnist"), "--out", str(work / "export"), *every_format])
        mnist = load_dataset("mnist", "files", work / "mnist-8k-2k")
        artifacts = artifacts_bench.run(work / "run-mnist", work / "export", mnist.test_images, mnist.test_labels)
        print("serving benchmark", flush=True)
        serving = serve_bench.run(work / "export", args.http_rounds, 3, work)
        print("the wire formats: v2 JSON, v2 binary and gRPC", flush=True)
        protocols = protocol_bench.run(work / "export", mnist.test_images, args.rounds, 3, work)
        print("folder loading benchmark", flush=True)
        folders = folder_bench.run(args.data, 2000, args.rounds, work)
        print("the course's preset against its numpy loop", flush=True)
        course = course_bench.run(args.data, args.rounds, work)
    results = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "seconds": round(time.monotonic() - started, 1),
        "targets": training["targets"]
        + search["targets"]
        + serving["targets"]
        + protocols["targets"]
        + folders["targets"]
        + course["targets"],
        "training": training,
        "folders": folders,
        "course": course,
        "l2_search": search,
        "serving": serving,
        "protocols": protocols,
        "artifacts": artifacts,
    }
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    section = markdown(results)
    print(section)
    if not args.no_readme:
        write_readme_section(BEGIN, END, section)
        write_readme_section(folder_bench.BEGIN, folder_bench.END, folder_bench.markdown(folders, results["date"]))
        write_readme_section(course_bench.BEGIN, course_bench.END, course_bench.markdown(course, results["date"]))
    print(f"\n{RESULTS} written in {results['seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

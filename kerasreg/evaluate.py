"""Re-compute the test metrics of a saved run.

    python -m kerasreg.evaluate runs/digits
    python -m kerasreg.evaluate runs/digits --on sample --json

Reloads the run's dataset exactly as config.json recorded it (same source, data
dir and seed), or with `--on sample` uses the test images kept in the run directory.
"""

from __future__ import annotations

if __name__ == "__main__":  # before the imports below, which need the train extra
    from shared.extras import require_extra

    require_extra("train", "python -m kerasreg.evaluate")

import argparse
import json
from pathlib import Path

from kerasreg.cli import run_cli
from kerasreg.run_directory import files


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m kerasreg.evaluate`."""
    p = argparse.ArgumentParser(
        prog="python -m kerasreg.evaluate",
        description="Re-compute a run's test metrics from its model.keras.",
    )
    p.add_argument("run_dir", type=Path, help="a run directory written by python -m kerasreg.train")
    p.add_argument(
        "--on",
        choices=("test", "sample"),
        default="test",
        help="the dataset's whole test split (reloaded as the run loaded it) or the run's "
        "stored test_sample.npz (default: test)",
    )
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    return p


def evaluate_run(run_dir: Path, on: str = "test") -> dict:
    """Metrics of the run's model on its test split (or its stored sample).

    The majority baseline answers the class metrics.json recorded (the training
    split's most common), so the training data need not be loaded again.
    """
    from kerasreg.errors import RunDirError
    from kerasreg.model import predict_probabilities
    from kerasreg.reports.metrics import compute_metrics
    from kerasreg.run_directory.record import RunRecord

    run = RunRecord.open(run_dir)
    if on == "sample":
        images, labels = run.checked_sample(files.TEST_SAMPLE)
    else:
        data = run.reload_dataset()
        if data is None:
            raise RunDirError(
                f"{run_dir} was trained on data given in Python ({run.dataset.get('source')}); "
                "evaluate it with --on sample."
            )
        images, labels = data.test_images, data.test_labels
    probabilities = predict_probabilities(run.load_model(), images, run.task)
    return compute_metrics(labels, probabilities, run.task, majority_class=run.metrics.get("majority_class"))


def _report(run_dir: Path, on: str, as_json: bool) -> None:
    from kerasreg.reports.metrics import summary_lines

    metrics = evaluate_run(run_dir, on)
    if as_json:
        print(json.dumps(metrics))
        return
    class_names = tuple(files.read_json(run_dir / files.CONFIG)["dataset"]["class_names"])
    for line in summary_lines(metrics, class_names):
        print(line)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and print the re-computed metrics."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_cli(parser.prog, lambda: _report(args.run_dir, args.on, args.json))


if __name__ == "__main__":
    from kerasreg.cli import exit_now

    exit_now(main())

"""Classify pictures with a run's own model, before (or without) exporting it.

    python -m kerasreg.predict runs/cats photo.jpg
    python -m kerasreg.predict runs/cats photos/ --top-k 2 --json

Each picture becomes the run's input as `python -m serve` makes it (shared/image_files.py), and the lines read
as `python -m serve predict`'s (shared/classify_files.py); a folder is searched recursively and ends with a
summary. This runs the Keras model, so it needs the train extra; a server or a device runs the export instead.
"""

from __future__ import annotations

if __name__ == "__main__":  # before the imports below, which need the train extra
    from shared.extras import require_extra

    require_extra("train", "python -m kerasreg.predict")

import argparse
from pathlib import Path

from kerasreg.cli import run_cli
from shared.image_files import IMAGE_SUFFIXES
from shared.ranking import DEFAULT_TOP_K


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m kerasreg.predict`."""
    p = argparse.ArgumentParser(
        prog="python -m kerasreg.predict",
        description="Classify picture files, or folders of them, with a run directory's model.keras (no export "
        "needed).",
    )
    p.add_argument("run_dir", type=Path, help="a run directory written by python -m kerasreg.train")
    p.add_argument(
        "images",
        type=Path,
        nargs="+",
        help="picture files (PNG, JPEG, BMP, GIF, WebP), or folders of them (searched recursively, with a summary "
        "at the end); resized to the run's input",
    )
    p.add_argument(
        "--top-k", type=int, default=None, help=f"classes to show per image (default: {DEFAULT_TOP_K}, or all if fewer)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per image per line")
    return p


def predict_files(run_dir: Path, images: list[Path], top_k: int | None, as_json: bool) -> int:
    """Print each picture's likeliest classes under the run's model; 2 when some picture could not be read."""
    from kerasreg.errors import KerasregError
    from kerasreg.run import Run
    from shared.classify_files import classify_files

    run = Run.load(run_dir)
    classes = len(run.class_names)
    top_k = min(DEFAULT_TOP_K, classes) if top_k is None else top_k
    if not 1 <= top_k <= classes:
        raise KerasregError(f"--top-k {top_k}: expected 1..{classes} (the run's classes).")
    prog = "python -m kerasreg.predict"
    # Pictures only: arrays go to run.classify in Python.
    return classify_files(images, run.image, run.classify, top_k, as_json, prog, KerasregError, IMAGE_SUFFIXES)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and print each picture's classes."""
    parser = build_parser()
    args = parser.parse_args(argv)
    code = []  # run_cli's 0 means nothing raised; some pictures may still have failed
    failed = run_cli(parser.prog, lambda: code.append(predict_files(args.run_dir, args.images, args.top_k, args.json)))
    return failed or code[0]


if __name__ == "__main__":
    from kerasreg.cli import exit_now

    exit_now(main())

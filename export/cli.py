"""`python -m export RUN_DIR --out EXPORT_DIR`: the command line over `export_run`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from export.onnx_convert import DEFAULT_OPSET, MIN_OPSET, NEWEST_OPSET

_EPILOG = """\
examples:
  python -m export runs/digits --out exports/digits
  python -m export runs/mnist --out exports/mnist --quantize int8
  python -m export runs/mnist --out exports/mnist --litert --c --quantize int8
  python -m export runs/mnist --out exports/mnist --overwrite --opset 15

The export is built in a temporary directory beside --out and renamed into place only
after every artifact matches the Keras model (exit 1 otherwise, with every mismatch
listed, and nothing left at --out): float ones within --atol and on every argmax,
int8 ones within a point of its accuracy.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m export`."""
    from export.exporter import DEFAULT_ATOL, QUANTIZE_CHOICES

    p = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a kerasreg run to SavedModel and ONNX (and LiteRT and C on request), each validated "
        "against the Keras model.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", type=Path, help="a run directory written by python -m kerasreg.train")
    p.add_argument("--out", type=Path, required=True, help="export directory to create")
    p.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        help=f"ONNX opset, {MIN_OPSET}..{DEFAULT_OPSET} (default: {DEFAULT_OPSET}, {NEWEST_OPSET})",
    )
    p.add_argument(
        "--atol",
        type=float,
        default=DEFAULT_ATOL,
        help=f"largest allowed probability difference between ONNX and Keras (default: {DEFAULT_ATOL:g})",
    )
    p.add_argument(
        "--quantize",
        choices=QUANTIZE_CHOICES,
        default=None,
        help="also write int8 twins: model.int8.onnx (onnxruntime dynamic quantization), with --litert "
        "model.int8.tflite (full-integer, calibrated on training images), with --c c/int8/ (default: off)",
    )
    p.add_argument(
        "--litert",
        action="store_true",
        help="also write model.tflite for LiteRT (TensorFlow Lite): phones, boards with TFLite Micro (default: off)",
    )
    p.add_argument(
        "--c",
        action="store_true",
        help="also write c/model.h and c/model.c: plain C99 for boards with no runtime, compiled and checked "
        "when a C compiler is here (default: off)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out once the new export is valid")
    return p


def _print_report(card: dict, out: Path) -> None:
    parity = card["parity"]
    print(
        f"parity on {parity['n_images']} images from the {parity['images_from']} (Keras accuracy "
        f"{parity['keras_accuracy']:.4f}):"
    )
    for name, entry in parity["artifacts"].items():
        if "skipped" in entry:
            print(f"  {name:18s} not checked: {entry['skipped']}")
            continue
        line = f"  {name:18s} max diff = {entry['max_abs_diff']:.3g}"
        line += f" (atol: {entry['atol']:g})" if entry["atol"] is not None else " (int8: held to accuracy)"
        line += f"  argmax agreement {entry['argmax_agreement']:.4f}"
        if "accuracy_change" in entry:
            line += f"  accuracy {entry['accuracy']:.4f} ({entry['accuracy_change']:+.4f})"
        print(line)
    for name, info in card["files"].items():
        print(f"  {name:18s} {info['bytes'] / 1024:,.1f} KiB  sha256 {info['sha256'][:16]}")
    print(f"exported to {out}")


def main(argv: list[str] | None = None) -> int:
    """Parse, export, print the parity report; exit codes as kerasreg.cli.run_cli's (1: validation failed)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    from export.exporter import export_run
    from kerasreg.cli import run_cli

    def export() -> None:
        formats = tuple(name for name in ("litert", "c") if getattr(args, name))
        options = {"opset": args.opset, "atol": args.atol, "quantize": args.quantize, "overwrite": args.overwrite}
        options["formats"] = formats
        _print_report(export_run(args.run_dir, args.out, **options), args.out)

    return run_cli(parser.prog, export)

"""`python -m serve predict|info|http`: the command line over `serve.Model`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from serve import limits
from serve.arg_types import positive_int
from serve.errors import ServeError
from shared.escaping import one_line
from shared.exit_codes import EXIT_INTERRUPTED, EXIT_USER_ERROR
from shared.ranking import DEFAULT_TOP_K

_EPILOG = """\
examples:
  python -m serve predict exports/digits/model.onnx digit.png other.jpg --top-k 3
  python -m serve predict exports/mnist/model.onnx scan.png --invert --json
  python -m serve info exports/digits/model.onnx
  python -m serve http exports/digits/model.onnx --name digits --port 8501
  python -m serve http models/ --workers 2     (models/NAME/VERSION/model.onnx; see http --help)
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m serve`."""
    from serve.server.command import add_http_parser, add_max_model_bytes

    p = argparse.ArgumentParser(
        prog="python -m serve",
        description="Run an exported kerasreg model with onnxruntime or LiteRT (no TensorFlow).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    predict = sub.add_parser("predict", help="classify image files (PNG, JPEG, BMP, .npy)")
    predict.add_argument("model", type=Path, help="model.onnx or model.tflite written by python -m export")
    predict.add_argument(
        "images",
        type=Path,
        nargs="+",
        help="image files, or folders of them (searched recursively, with a summary at the end); resized to the "
        "model's input",
    )
    predict.add_argument(
        "--top-k",
        type=positive_int,
        default=DEFAULT_TOP_K,
        help=f"classes to show per image (default: {DEFAULT_TOP_K})",
    )
    predict.add_argument("--json", action="store_true", help="one JSON object per image per line")
    predict.add_argument(
        "--max-image-pixels",
        type=positive_int,
        default=None,
        help=f"largest image accepted, in pixels (default: {limits.PIXEL_LIMIT_SHOWN})",
    )
    predict.add_argument(
        "--invert",
        action="store_true",
        help="invert pixel values: for dark-on-light scans fed to MNIST-style models (default: off)",
    )
    add_max_model_bytes(predict)
    info = sub.add_parser("info", help="print the model's metadata")
    info.add_argument("model", type=Path, help="model.onnx or model.tflite written by python -m export")
    add_max_model_bytes(info)
    add_http_parser(sub)
    return p


def _predict(args) -> int:
    from serve.limits import image_pixel_limit
    from serve.runtime.image_input import load_image_file
    from serve.runtime.model import Model
    from shared.classify_files import classify_files

    model = Model.load(args.model, args.max_model_bytes)
    size, channels = model.info.input_shape[:2], model.info.channels
    max_pixels = image_pixel_limit(model.info.input_shape, args.max_image_pixels)
    return classify_files(
        args.images,
        lambda path: load_image_file(path, size, channels, args.invert, max_pixels),
        model.classify,
        args.top_k,
        args.json,
        "python -m serve",
        ServeError,
    )


def _info(args) -> int:
    from serve.runtime.model import Model

    model = Model.load(args.model, args.max_model_bytes)
    info = model.info
    metrics = info.meta("metrics", {})
    print(f"model:    {args.model}")
    print(f"format:   {model.session.kind}" + (f", {info.meta('quantization')}" if info.meta("quantization") else ""))
    print(f"dataset:  {info.dataset}  ({info.task}, {len(info.classes)} classes)")
    print(f"classes:  {', '.join(info.classes)}")
    h, w, c = info.input_shape
    print(f"input:    {info.input_name} uint8 [batch,{h},{w},{c}], values 0..255")
    print(f"output:   {info.output_name} float32 [batch,{len(info.classes)}]")
    if isinstance(metrics, dict) and "accuracy" in metrics:
        print(f"test accuracy: {metrics['accuracy']:.4f} on {metrics.get('n_test')} images")
    for key in ("version", "exported_at"):
        if info.meta(key) is not None:
            print(f"{key}: {info.meta(key)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dispatch a subcommand; exit codes as every kerasreg command's (shared/exit_codes.py).

    A bad flag is argparse's one line and exit 2; a ServeError (bad input or model)
    or an OSError prints "python -m serve: error: ..." and exits 2; Ctrl-C exits 130.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    from serve.server.command import run_http

    command = {"predict": _predict, "info": _info, "http": run_http}[args.command]
    try:
        return command(args)
    except ServeError as e:
        print(f"{parser.prog}: error: {one_line(str(e), backslashes=False)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as e:
        said = one_line((f"{e.filename}: " if e.filename else "") + f"{e.strerror or e}", backslashes=False)
        print(f"{parser.prog}: error: {said}; check the path and its permissions.", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

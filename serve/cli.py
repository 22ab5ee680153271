"""`python -m serve predict|info|http`: the command line over `serve.Model`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from serve.errors import ServeError

_EPILOG = """\
examples:
  python -m serve predict exports/digits/model.onnx digit.png other.jpg --top-k 3
  python -m serve predict exports/mnist/model.onnx scan.png --invert --json
  python -m serve info exports/digits/model.onnx
  python -m serve http exports/digits/model.onnx --name digits --port 8501
"""


def _bounded(kind: type, accept: Callable[[float], bool], expected: str) -> Callable[[str], float]:
    """An argparse type: `kind(text)` when `accept` takes it, else the parser's one-line error (exit 2)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"Received {text!r}. Expected {expected}.")
        return value

    return parse


positive_int = _bounded(int, lambda v: v >= 1, "a positive integer")
positive_float = _bounded(float, lambda v: 0 < v < float("inf"), "a positive number")
port_number = _bounded(int, lambda v: 0 <= v <= 65535, "a port number 0..65535")  # 0: any free port


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m serve`."""
    from serve.limits import DEFAULT_MAX_BATCH, INLINE_MAX_VALUES, ConnectionLimits, Limits

    p = argparse.ArgumentParser(
        prog="python -m serve",
        description="Run an exported kerasreg model with onnxruntime (no TensorFlow).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    predict = sub.add_parser("predict", help="classify image files (PNG, JPEG, BMP, .npy)")
    predict.add_argument("model", type=Path, help="model.onnx written by python -m export")
    predict.add_argument("images", type=Path, nargs="+", help="image files; resized to the model's input")
    predict.add_argument("--top-k", type=positive_int, default=3, help="classes to show per image (default: 3)")
    predict.add_argument("--json", action="store_true", help="one JSON object per image per line")
    predict.add_argument(
        "--max-image-pixels",
        type=positive_int,
        default=None,
        help="largest image accepted, in pixels (default: sized to the model: 4096 times its input, 4-50 Mpx)",
    )
    predict.add_argument(
        "--invert",
        action="store_true",
        help="invert pixel values: for dark-on-light scans fed to MNIST-style models (default: off)",
    )
    info = sub.add_parser("info", help="print the model's metadata")
    info.add_argument("model", type=Path, help="model.onnx written by python -m export")
    http = sub.add_parser("http", help="serve TF Serving REST (v1) and Open Inference Protocol (v2) over HTTP")
    http.add_argument("model", type=Path, help="model.onnx written by python -m export")
    http.add_argument("--name", default=None, help="model name in URLs (default: the dataset name in its metadata)")
    http.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 exposes it (default: 127.0.0.1)")
    http.add_argument("--port", type=port_number, default=8501, help="port (default: 8501, TF Serving's REST port)")
    http.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="server processes on the one port, one core each (default: 1)",
    )
    http.add_argument(
        "--request-timeout",
        type=positive_float,
        default=ConnectionLimits.request_timeout,
        help="seconds a request may take to arrive, from its first byte to its last, before 408 "
        f"(default: {ConnectionLimits.request_timeout:g})",
    )
    http.add_argument(
        "--keep-alive",
        type=positive_float,
        default=ConnectionLimits.keep_alive_timeout,
        help=f"seconds an idle connection stays open (default: {ConnectionLimits.keep_alive_timeout:g})",
    )
    http.add_argument(
        "--max-connections",
        type=positive_int,
        default=ConnectionLimits.max_connections,
        help=f"open connections per worker; more get 503 (default: {ConnectionLimits.max_connections})",
    )
    http.add_argument(
        "--max-body-bytes",
        type=positive_int,
        default=Limits.max_body_bytes,
        help=f"larger request bodies get 413 (default: {Limits.max_body_bytes})",
    )
    http.add_argument(
        "--max-image-pixels",
        type=positive_int,
        default=None,
        help="largest image a request may send, in pixels; a request's images may declare 4 times that in all "
        "(default: sized to the model: 4096 times its input, 4-50 Mpx)",
    )
    http.add_argument(
        "--max-batch",
        type=positive_int,
        default=DEFAULT_MAX_BATCH,
        help=f"most images per request (default: {DEFAULT_MAX_BATCH})",
    )
    http.add_argument(
        "--timeout",
        type=positive_float,
        default=Limits.timeout_seconds,
        help="seconds the inference of a large batch may take before 503; a batch of fewer than "
        f"{INLINE_MAX_VALUES:,} pixel values takes under ~1 ms and runs at once (default: {Limits.timeout_seconds:g})",
    )
    return p


def _predict(args) -> int:
    from serve.images import load_image_file, max_pixels_for
    from serve.model import Model

    model = Model.load(args.model)
    size, channels = model.info.input_shape[:2], model.info.channels
    max_pixels = args.max_image_pixels or max_pixels_for(model.info.input_shape)
    failed = 0
    for path in args.images:
        try:
            image = load_image_file(path, size, channels, args.invert, max_pixels)
        except ServeError as e:
            print(f"python -m serve: error: {e}", file=sys.stderr)
            failed += 1
            continue
        (top,) = model.classify(image, args.top_k)
        if args.json:
            print(json.dumps({"image": str(path), "predictions": [{"class": c, "probability": p} for c, p in top]}))
        else:
            print(f"{path}: " + ", ".join(f"{c} ({p:.3f})" for c, p in top))
    return 2 if failed else 0


def _info(args) -> int:
    from serve.model import Model

    info = Model.load(args.model).info
    metrics = info.properties.get("kerasreg.metrics", {})
    print(f"model:    {args.model}")
    print(f"dataset:  {info.dataset}  ({info.task}, {len(info.classes)} classes)")
    print(f"classes:  {', '.join(info.classes)}")
    h, w, c = info.input_shape
    print(f"input:    {info.input_name} uint8 [batch,{h},{w},{c}], values 0..255")
    print(f"output:   {info.output_name} float32 [batch,{len(info.classes)}]")
    if isinstance(metrics, dict) and "accuracy" in metrics:
        print(f"test accuracy: {metrics['accuracy']:.4f} on {metrics.get('n_test')} images")
    for key in ("kerasreg.version", "kerasreg.exported_at"):
        if key in info.properties:
            print(f"{key.split('.')[1]}: {info.properties[key]}")
    return 0


def _http(args) -> int:
    from serve.stop_signals import hold_stop_signals

    hold_stop_signals(True)  # first, before any thread pool starts: see serve/stop_signals.py
    import logging

    from serve.extras import require_extra

    require_extra("http", "python -m serve http")
    from serve.http_server import run
    from serve.limits import ConnectionLimits, Limits
    from serve.model import Model

    # One line per event a server operator wants to see: hang-ups, timeouts, errors (with tracebacks for 500s).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    info = Model.load(args.model).info  # a bad file fails here, with one line, before any worker starts
    name = args.name or info.dataset or args.model.stem
    print(
        f"serving {name!r} at http://{args.host}:{args.port}/v1/models/{name} and /v2/models/{name}"
        + (f" ({args.workers} workers)" if args.workers > 1 else ""),
        flush=True,
    )
    limits = Limits(args.max_body_bytes, args.timeout, args.max_image_pixels)
    connections = ConnectionLimits(args.request_timeout, args.keep_alive, args.max_connections)
    return run(args.model, name, args.host, args.port, limits, args.max_batch, args.workers, connections)


EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Dispatch a subcommand; exit codes as every kerasreg command's (kerasreg/cli.py, which serve may not import).

    A bad flag is argparse's one line and exit 2; a ServeError (bad input or model)
    or an OSError prints "python -m serve: error: ..." and exits 2; Ctrl-C exits 130.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"predict": _predict, "info": _info, "http": _http}[args.command]
    try:
        return command(args)
    except ServeError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"{parser.prog}: error: {where}{e.strerror or e}; check the path and its permissions.", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

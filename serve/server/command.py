"""`python -m serve http MODEL`: its flags, their checks, and the start of the server.

MODEL is one exported model.onnx (or model.tflite), or a repository folder laid out
NAME/VERSION/model.onnx (TensorFlow Serving's and Triton's layout), watched for new,
changed and removed versions.
Everything a user can get wrong is checked here, before a worker starts, and is one
line and exit 2: a model that does not load, a repository with nothing to serve,
TLS files that do not fit, too many workers.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from serve import limits
from serve.arg_types import bounded, listening_port, non_negative_seconds, port_number, positive_float, positive_int
from serve.errors import ServeError
from serve.limits import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_MODEL_BYTES,
    INLINE_MAX_VALUES,
    MAX_REQUEST_TIMEOUT,
    WORKERS_PER_CORE,
    Limits,
    ServerLimits,
)


def usable_cores() -> int:
    """The cores this process may run on (a container's share, where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def max_workers() -> int:
    """The most --workers this machine takes: WORKERS_PER_CORE per usable core."""
    return WORKERS_PER_CORE * usable_cores()


def add_http_parser(subcommands) -> None:
    """The `http` subcommand and its flags."""
    server = ServerLimits()
    http = subcommands.add_parser(
        "http",
        help="serve TF Serving REST (v1) and Open Inference Protocol (v2) over HTTP",
        description="Serve models over HTTP with granian: TF Serving's REST API (v1), the Open Inference "
        "Protocol (v2), Prometheus metrics at /metrics, and a page at /.",
    )
    http.add_argument(
        "model",
        type=Path,
        help="model.onnx (or .tflite) written by python -m export, its export folder (as KServe lays it out at "
        "/mnt/models), or a repository folder laid out NAME/VERSION/model.onnx (every version served; the newest "
        "answers requests that name none)",
    )
    http.add_argument(
        "--name",
        default=None,
        help="the model's name in URLs, for one model file or export folder; a repository's folders name its models "
        "(default: the dataset name in its metadata)",
    )
    http.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 exposes it (default: 127.0.0.1)")
    http.add_argument(
        "--port",
        type=port_number,
        default=limits.HTTP_PORT,
        help=f"port (default: {limits.HTTP_PORT}, TF Serving's REST port)",
    )
    http.add_argument(
        "--grpc-port",
        type=listening_port,
        default=None,
        help="also serve the Open Inference Protocol over gRPC (inference.GRPCInferenceService) on this port, with "
        f"the same models, limits, metrics, TLS and workers; {limits.GRPC_PORT} is Triton's (default: off)",
    )
    cores = usable_cores()
    http.add_argument(
        "--workers",
        type=bounded(
            int,
            lambda v: 1 <= v <= max_workers(),
            f"1..{max_workers()} (at most {WORKERS_PER_CORE} per core; this machine gives {cores})",
        ),
        default=1,
        help="server processes on the one port, each with its own copy of the models; one that dies is "
        f"started again (default: 1, at most {WORKERS_PER_CORE} per core)",
    )
    tls = http.add_argument_group("TLS (both, or neither); clients may then speak HTTP/2")
    tls.add_argument("--ssl-certificate", type=Path, default=None, help="PEM certificate (chain) file")
    tls.add_argument("--ssl-keyfile", type=Path, default=None, help="PEM private key file, PKCS#8, not encrypted")
    _add_limit_flags(http, server)
    _add_operation_flags(http, server)


def _add_limit_flags(http: argparse.ArgumentParser, server: ServerLimits) -> None:
    """How long and how much a request may take."""
    http.add_argument(
        "--request-timeout",
        type=bounded(float, lambda v: 0 < v <= MAX_REQUEST_TIMEOUT, f"seconds in (0, {MAX_REQUEST_TIMEOUT:g}]"),
        default=server.request_timeout,
        help="seconds a request's headers may take to arrive (and an idle keep-alive connection may wait), and "
        f"again its body after them, before the connection closes or 408 (default: {server.request_timeout:g})",
    )
    http.add_argument(
        "--max-connections",
        type=positive_int,
        default=server.max_connections,
        help=f"connections each worker serves at once; more wait in the kernel's queue (default: "
        f"{server.max_connections})",
    )
    http.add_argument(
        "--max-body-bytes",
        type=positive_int,
        default=Limits.max_body_bytes,
        help=f"larger request bodies get 413 (default: {Limits.max_body_bytes})",
    )
    add_max_model_bytes(http)
    http.add_argument(
        "--max-image-pixels",
        type=positive_int,
        default=None,
        help=f"largest image a request may send, in pixels; a request's images may declare "
        f"{limits.REQUEST_PIXELS_FACTOR} times that in all (default: {limits.PIXEL_LIMIT_SHOWN})",
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


def add_max_model_bytes(parser: argparse.ArgumentParser) -> None:
    """--max-model-bytes, for every command that loads a model."""
    parser.add_argument(
        "--max-model-bytes",
        type=positive_int,
        default=DEFAULT_MAX_MODEL_BYTES,
        help="a model file larger than this is not read (a kerasreg export of 256x256x3 images and 100 classes is "
        f"75 MiB) (default: {DEFAULT_MAX_MODEL_BYTES})",
    )


def _add_operation_flags(http: argparse.ArgumentParser, server: ServerLimits) -> None:
    """The repository's reading, the stop, the access log and CORS."""
    http.add_argument(
        "--poll-seconds",
        type=non_negative_seconds,
        default=server.poll_seconds,
        help="how often MODEL is read again: new and changed versions are loaded, checked and swapped in, removed "
        f"ones drained out; 0 never (default: {server.poll_seconds:g})",
    )
    http.add_argument(
        "--drain-seconds",
        type=non_negative_seconds,
        default=server.drain_seconds,
        help="after SIGTERM: seconds of answering not ready, every answer with Connection: close, before the "
        f"server stops accepting and finishes what is in flight (default: {server.drain_seconds:g})",
    )
    http.add_argument("--access-log", action="store_true", help="log one line per request (default: off)")
    http.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let browsers on ORIGIN (e.g. https://app.example.com, or * for any) call the API; repeatable "
        "(default: none, and no CORS headers)",
    )


def check_tls(certificate: Path | None, keyfile: Path | None) -> None:
    """Both files or neither; readable PEM; a PKCS#8 key that matches the certificate. ServeError otherwise."""
    import ssl

    if (certificate is None) != (keyfile is None):
        raise ServeError("--ssl-certificate and --ssl-keyfile go together; pass both, or neither.")
    if certificate is None:
        return
    for flag, path in (("--ssl-certificate", certificate), ("--ssl-keyfile", keyfile)):
        if not path.is_file():
            raise ServeError(f"{flag} {path}: not a file.")
    head = keyfile.read_bytes()[:64]
    if b"-----BEGIN PRIVATE KEY-----" not in head:
        kind = "encrypted" if b"ENCRYPTED" in head else "not PKCS#8 PEM"
        raise ServeError(
            f"--ssl-keyfile {keyfile}: the key is {kind}; the server reads unencrypted PKCS#8 keys: "
            f"openssl pkcs8 -topk8 -nocrypt -in {keyfile} -out key.pk8.pem"
        )
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certificate, keyfile)
    except (ssl.SSLError, OSError) as e:
        raise ServeError(f"--ssl-certificate {certificate} with --ssl-keyfile {keyfile}: {e.strerror or e}.") from None


def banner(repository, args: argparse.Namespace) -> str:
    """What `serve http` prints as it starts: where the page is, and each model's own URLs (its real name)."""
    scheme = "https" if args.ssl_certificate else "http"
    host = f"[{args.host}]" if ":" in args.host else args.host
    base = f"{scheme}://{host}:{args.port}"
    workers = f" ({args.workers} workers)" if args.workers > 1 else ""
    lines = [f"serving at {base}{workers}; the page: {base}/, the API: {base}/openapi.json"]
    for name in repository.names():
        versions = ", ".join(map(str, repository.versions(name)))
        lines.append(
            f"  {name} (version {versions}): {base}/v1/models/{name}:predict, {base}/v2/models/{name}/infer, "
            f"an image upload to {base}/models/{name}/classify"
        )
    return "".join(f"{line}\n" for line in lines)


def export_model_file(source: Path) -> Path | None:
    """The model file of an export folder given as MODEL (model.onnx at its top, else model.tflite), or None.

    An export folder is one model: `python -m export` writes it so, and KServe's storage initializer lays a
    storageUri out so at /mnt/models (the folder's files at the top, or the one file the URI names).
    """
    from serve.plane.repository import MODEL_FILES

    if not source.is_dir():
        return None
    return next((source / name for name in MODEL_FILES if (source / name).is_file()), None)


def load_repository(source: Path, name: str | None, max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES):
    """The models MODEL holds, loaded and checked once here so a mistake is one line before any worker starts.

    Returns the repository and the name of a single model file's model.
    """
    from serve.plane.repository import NAME_PATTERN, ModelRepository

    source = export_model_file(source) or source
    if source.is_dir():
        if name is not None:
            raise ServeError(f"--name is for one model file; in {source} each model is named by its folder.")
        repository = ModelRepository(source, max_model_bytes=max_model_bytes)
        repository.apply(repository.prepare(initial=True))
        if not repository.names():
            failed = "; ".join(broken.reason for broken in repository.broken.values())
            raise ServeError(
                f"{source}: no model to serve; expected NAME/VERSION/model.onnx, e.g. {source}/mnist/1/model.onnx"
                + (f" ({failed})" if failed else "")
            )
        return repository, None
    from serve.runtime.model import Model

    model = Model.load(source, max_model_bytes)
    model.self_check()
    name = name or model.info.dataset or source.stem
    if not NAME_PATTERN.match(name):
        raise ServeError(f"Received --name {name!r}. Expected letters, digits, '_', '.' and '-' (it goes in URLs).")
    repository = ModelRepository(source, name, max_model_bytes=max_model_bytes)
    repository.apply(repository.prepare(initial=True))
    return repository, name


def run_http(args: argparse.Namespace) -> int:
    """Check everything, say where it serves, serve until stopped."""
    import logging.config

    from serve.server.processes import claim_port
    from serve.server.stop_signals import hold_stop_signals
    from shared.extras import require_extra

    require_extra("http", "python -m serve http")
    check_tls(args.ssl_certificate, args.ssl_keyfile)
    if args.grpc_port is not None and args.grpc_port == args.port:
        raise ServeError(
            f"--grpc-port {args.grpc_port} is --port too; give gRPC a port of its own (Triton's: {limits.GRPC_PORT})."
        )
    port_lock = claim_port(args.host, args.port)  # held while serving: the kernel lets go of it however we end
    try:
        grpc_lock = claim_port(args.host, args.grpc_port, "--grpc-port") if args.grpc_port is not None else None
    except ServeError:
        if port_lock is not None:
            port_lock.close()
        raise
    hold_stop_signals(True, drain=True)  # before any thread pool starts (loading a model starts some): see stop_signals
    try:
        logging.getLogger("serve.plane.repository").disabled = True  # a check: each worker logs its own loads
        args.model = export_model_file(args.model) or args.model
        repository, name = load_repository(args.model, args.name, args.max_model_bytes)
    except BaseException:
        hold_stop_signals(False, drain=True)  # a mistake, reported by the caller: leave the process as it was
        for lock in (port_lock, grpc_lock):
            if lock is not None:
                lock.close()
        raise
    finally:
        logging.getLogger("serve.plane.repository").disabled = False
    from serve.server.engine import ServerOptions, logging_config, run
    from serve.server.grpc_server import GrpcOptions, address
    from serve.server.rsgi_adapter import AdapterOptions

    print(banner(repository, args), end="")
    grpc = None
    if args.grpc_port is not None:
        grpc = GrpcOptions(args.host, args.grpc_port, args.ssl_certificate, args.ssl_keyfile, args.max_connections)
        print(f"and gRPC (inference.GRPCInferenceService) at {address(args.host, args.grpc_port)}"
              f"{' with TLS' if args.ssl_certificate else ''}")  # fmt: skip
    sys.stdout.flush()
    del repository  # each worker loads its own copy: onnxruntime sessions do not survive a fork
    logging.config.dictConfig(logging_config())
    adapter = AdapterOptions(
        args.model,
        name,
        Limits(args.max_body_bytes, args.timeout, args.max_image_pixels),
        args.max_batch,
        tuple(args.cors_origin),
        args.request_timeout,
        args.poll_seconds,
        args.access_log,
        args.max_model_bytes,
        os.getpid(),
        grpc,
        ServerLimits.shutdown_grace,
    )
    server = ServerLimits(
        args.request_timeout, args.max_connections, drain_seconds=args.drain_seconds, poll_seconds=args.poll_seconds
    )
    options = ServerOptions(args.host, args.port, args.workers, args.ssl_certificate, args.ssl_keyfile, server)
    try:
        return run(adapter, options)
    finally:
        for lock in (port_lock, grpc_lock):
            if lock is not None:
                lock.close()

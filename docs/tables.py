"""The documents' tables (options, limits, the layout), written from the code that defines them.

    python docs/tables.py           # rewrite every table in README.md and docs/
    python docs/tables.py --check   # exit 1, naming them, when a table is not what the code says

A table sits between `<!-- table:NAME -->` and `<!-- /table:NAME -->`. The flags'
rows come from the commands' own parsers (the text of `--help`), the limits' rows
from serve/limits.py, the layout from the modules' docstrings, so a default changed in the code and not in the documents
fails tests/test_docs.py until this script is run.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

_DEFAULT = re.compile(r"\s*\(default: (.*)\)\s*$", re.S)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def flag_rows(parser: argparse.ArgumentParser) -> list[tuple[str, str, str]]:
    """(flag, default, meaning) of each optional flag, as `--help` states them."""
    rows = []
    for action in parser._actions:  # argparse keeps no public list of its actions
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        help_text = action.help or ""
        found = _DEFAULT.search(help_text)
        if found:
            default, help_text = found.group(1), help_text[: found.start()]
        elif action.const is True and action.default is False:
            default = "off"
        else:
            default = "none" if action.default is None else str(action.default)
        if action.choices and not any(str(c) in help_text for c in action.choices):
            help_text += ": " + ", ".join(str(c) for c in action.choices)
        rows.append((f"`{action.option_strings[-1]}`", _cell(default), _cell(help_text)))
    return rows


def _markdown(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def train_options() -> str:
    """`python -m kerasreg.train`'s flags."""
    from kerasreg.train import build_parser

    return _markdown(("option", "default", "meaning"), flag_rows(build_parser()))


def serve_http_options() -> str:
    """`python -m serve http`'s flags."""
    from serve.cli import build_parser

    parser = build_parser()
    return _markdown(("option", "default", "meaning"), flag_rows(_subcommand(parser, "http")))


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]


def study_options() -> str:
    """`python -m kerasreg.study`'s flags."""
    from kerasreg.study import build_parser

    return _markdown(("option", "default", "meaning"), flag_rows(build_parser()))


def evaluate_options() -> str:
    """`python -m kerasreg.evaluate`'s flags."""
    from kerasreg.evaluate import build_parser

    return _markdown(("option", "default", "meaning"), flag_rows(build_parser()))


def predict_options() -> str:
    """`python -m kerasreg.predict`'s flags."""
    from kerasreg.predict import build_parser

    return _markdown(("option", "default", "meaning"), flag_rows(build_parser()))


def export_options() -> str:
    """`python -m export`'s flags."""
    from export.cli import build_parser

    return _markdown(("option", "default", "meaning"), flag_rows(build_parser()))


def serve_predict_options() -> str:
    """`python -m serve predict`'s flags."""
    from serve.cli import build_parser

    return _markdown(("option", "default", "meaning"), flag_rows(_subcommand(build_parser(), "predict")))


def http_routes() -> str:
    """Every route of the HTTP API, from the OpenAPI document the server itself serves at /openapi.json."""
    from serve.protocols.openapi import build

    rows = []
    for path, operations in build()["paths"].items():
        for method, operation in operations.items():
            if method in ("get", "post", "put", "delete", "head", "options"):
                codes = ", ".join(sorted(operation.get("responses", {})))
                rows.append((f"`{method.upper()} {path}`", _cell(operation.get("summary", "")), codes))
    return _markdown(("route", "what it does", "answers"), rows)


def serve_limits() -> str:
    """What serve/limits.py fixes that no flag sets, and the flags' defaults it holds."""
    from serve import limits
    from shared import image_structure

    server, request = limits.ServerLimits(), limits.Limits()
    rows = [
        (
            "request body",
            f"{request.max_body_bytes:,} bytes ({request.max_body_bytes / 2**20:g} MiB)",
            "`--max-body-bytes`",
        ),
        ("headers, then body, must arrive within", f"{server.request_timeout:g} s each", "`--request-timeout`"),
        (
            "`--request-timeout` at most",
            f"{limits.MAX_REQUEST_TIMEOUT:g} s",
            "the engine's header timer goes no higher",
        ),
        ("connections served at once, per worker", f"{server.max_connections:,}", "`--max-connections`"),
        ("images per request", f"{limits.DEFAULT_MAX_BATCH:,}", "`--max-batch`"),
        (
            "pixels per image",
            f"{limits.PIXELS_PER_INPUT:,} x the model's input, within {limits.MIN_IMAGE_PIXELS / 1e6:g}-"
            f"{limits.MAX_IMAGE_PIXELS / 1e6:g} Mpx",
            "`--max-image-pixels`",
        ),
        (
            "pixels declared by a request's images in all",
            f"{limits.REQUEST_PIXELS_FACTOR} x the per-image limit",
            f"a progressive JPEG's once per {limits.SCANS_PER_DECODE} scans",
        ),
        (
            "an image file's markers, chunks and blocks (and junk between them)",
            f"{image_structure.MAX_STRUCTURE_STEPS:,} plus 1 per KiB of the file; {image_structure.MAX_JPEG_SCANS} "
            "progressive JPEG scans",
            "counted before the image is opened",
        ),
        (
            "images sent in JSON (b64) decoded on the event loop",
            f"at most {limits.INLINE_DECODE_PIXELS:,} pixels in all",
            "more, and every upload: in a thread",
        ),
        (
            "batches inferred on the event loop",
            f"at most {limits.INLINE_MAX_VALUES:,} pixel values",
            "more: in a thread",
        ),
        (
            "JSON bodies parsed on the event loop",
            f"at most {limits.INLINE_PARSE_BYTES:,} bytes",
            "more: in a parsing thread of their own",
        ),
        ("numbers in a JSON body", "about 2 x max-batch x the model's input, counted before parsing", ""),
        ("inference (and parsing, decoding) in a thread", f"{request.timeout_seconds:g} s, then 503", "`--timeout`"),
        (
            "a model file",
            f"{limits.DEFAULT_MAX_MODEL_BYTES:,} bytes ({limits.DEFAULT_MAX_MODEL_BYTES / 2**20:g} MiB), checked "
            "before it is read",
            "`--max-model-bytes`",
        ),
        (
            "gRPC: streams per connection, calls in flight per worker",
            f"{limits.GRPC_STREAMS_PER_CONNECTION}, {limits.GRPC_CALLS_IN_FLIGHT} (each message at most the request "
            "body's limit)",
            "connections: `--max-connections`",
        ),
        (
            "gRPC: a ModelInfer's parameters, outputs, inputs or raw tensors (each)",
            f"{limits.MAX_REQUEST_PARAMETERS}, counted on the wire before it is parsed",
            "",
        ),
        ("workers", f"at most {limits.WORKERS_PER_CORE} per core", "`--workers`"),
        ("after SIGTERM, answering not ready before stopping", f"{server.drain_seconds:g} s", "`--drain-seconds`"),
        ("a repository is read again every", f"{server.poll_seconds:g} s", "`--poll-seconds`"),
    ]
    return _markdown(("limit", "value", "set by"), rows)


PACKAGES = ("kerasreg", "export", "serve", "shared")
# Folders that are no package: the file whose docstring says what the folder holds.
FOLDERS = {
    "benchmarks": "benchmarks/run_all.py",
    "tests": "tests/conftest.py",
    "docs": "docs/tables.py",
    "deploy": "deploy/README.md",
}


def _summary(path: Path) -> str:
    """The first paragraph of a module's docstring (of a README: after its title), on one line."""
    if path.suffix == ".md":
        doc = path.read_text().split("\n\n", 1)[1]
    else:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return _cell(doc.split("\n\n")[0])


def layout() -> str:
    """The Layout page's folders, each in its own words (its package docstring)."""
    rows = []
    for package in PACKAGES:
        for init in sorted((REPO / package).rglob("__init__.py")):
            if "node_modules" not in init.parts:
                rows.append((f"`{init.parent.relative_to(REPO)}/`", _summary(init)))
    for folder, described_by in FOLDERS.items():
        if (REPO / described_by).exists():
            rows.append((f"`{folder}/`", _summary(REPO / described_by)))
    return _markdown(("folder", "what it holds"), rows)


def module_layout() -> str:
    """docs/layout.md: every module of the product's packages, with its docstring's summary."""
    rows = []
    for package in PACKAGES:
        for module in sorted((REPO / package).rglob("*.py")):
            if "node_modules" not in module.parts and module.name != "__main__.py":
                rows.append((f"`{module.relative_to(REPO)}`", _summary(module)))
    return _markdown(("module", "what it holds"), rows)


TABLES: dict[str, Callable[[], str]] = {
    "layout": layout,
    "module-layout": module_layout,
    "train-options": train_options,
    "study-options": study_options,
    "evaluate-options": evaluate_options,
    "predict-options": predict_options,
    "export-options": export_options,
    "serve-predict-options": serve_predict_options,
    "serve-http-options": serve_http_options,
    "http-routes": http_routes,
    "serve-limits": serve_limits,
}
DOCUMENTS = (REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")))


def rewritten(text: str) -> str:
    """`text` with every table in it as the code says."""
    for name, make in TABLES.items():
        begin, end = f"<!-- table:{name} -->", f"<!-- /table:{name} -->"
        if begin in text:
            head, rest = text.split(begin, 1)
            _, tail = rest.split(end, 1)
            text = f"{head}{begin}\n{make()}\n{end}{tail}"
    return text


def main(argv: list[str] | None = None) -> int:
    """Rewrite the tables, or with --check say which are stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a table is stale")
    args = parser.parse_args(argv)
    stale = []
    for path in DOCUMENTS:
        text = path.read_text()
        new = rewritten(text)
        if new != text:
            stale.append(path.relative_to(REPO))
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"stale tables in {', '.join(map(str, stale))}: run python docs/tables.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

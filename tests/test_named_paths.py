"""Every repository path that code, comments, docstrings and documents name exists: a file moved or renamed
without the text that points at it fails here."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOP = ("kerasreg", "export", "serve", "shared", "tests", "benchmarks", "docs", "notebooks", "deploy", ".ci")
# A path from one of the repository's top folders, as prose and code write it.
PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(re.escape(t) for t in TOP) + r")/[\w./-]*\w)")
# A file named alone (`fit.py`): it must be some file of the repository.
NAME = re.compile(r"(?<![\w./-])([\w-]+\.(?:py|proto|ipynb|md))\b")
# Made when something runs, not kept in the repository: npm's folder (make web), the wheels make image builds
# from, a study's report, the module the tests write to block imports, grpcio-tools' output name. A path under
# one of these folders is made too.
MADE = {
    "serve/web/node_modules",
    "deploy/wheels",
    "results.md",
    "sitecustomize.py",
    "_pb2.py",
    "inference_pb2.py",
    "inference_pb2_grpc.py",
}
TEXT = (".py", ".md", ".proto", ".toml", ".ipynb", ".yaml", ".yml", ".js", ".html", "Makefile", "Containerfile", "run")


def _repository_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, text=True
    )
    return [f for f in listed.stdout.split() if (REPO / f).is_file()]


def _named(files: list[str]):
    for name in files:
        if not name.endswith(TEXT) or name == "tests/test_named_paths.py":  # its own example is stale on purpose
            continue
        for number, line in enumerate((REPO / name).read_text(errors="replace").splitlines(), 1):
            for found in PATH.finditer(line):
                yield name, number, found.group(1).rstrip("."), "path"
            for found in NAME.finditer(line):
                yield name, number, found.group(1), "name"


def _made(named: str) -> bool:
    return any(named == made or named.startswith(made + "/") for made in MADE)


def test_every_path_the_repository_names_exists():
    files = _repository_files()
    assert len(files) > 100, "git ls-files found the repository's files"
    names = {Path(f).name for f in files}
    # The repository's own files and folders only: a folder that a local build left behind (ignored by git)
    # is not on a fresh clone, where CI runs.
    paths = set(files) | {str(parent) for f in files for parent in Path(f).parents}
    missing = [
        f"{where}:{number}: {named}"
        for where, number, named, kind in _named(files)
        if not _made(named) and not (named.rstrip("/") in paths if kind == "path" else named in names)
    ]
    assert not missing, "named but not in the repository:\n" + "\n".join(missing)


def test_the_check_finds_a_stale_name():
    line = "the charts live in kerasreg/reports/charts.py (see plots.py)"
    assert [m.group(1) for m in PATH.finditer(line)] == ["kerasreg/reports/charts.py"]
    assert [m.group(1) for m in NAME.finditer(line)] == ["plots.py"]
    assert not (REPO / "kerasreg/reports/charts.py").exists()

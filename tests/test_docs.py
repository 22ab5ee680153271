"""What the documents state is what the code does: generated tables current, the page reading keys the server sends."""

import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "docs"))

import tables  # noqa: E402 - docs/tables.py, found through the path above


def test_every_generated_table_is_what_the_code_says(capsys):
    assert tables.main(["--check"]) == 0, capsys.readouterr().err


def test_a_changed_default_makes_the_tables_stale(monkeypatch):
    from serve import limits

    document = (REPO / "docs" / "reliability.md").read_text()
    assert tables.rewritten(document) == document
    monkeypatch.setattr(limits, "DEFAULT_MAX_BATCH", limits.DEFAULT_MAX_BATCH + 1)
    assert tables.rewritten(document) != document  # its limits table holds it


@pytest.mark.parametrize("name", sorted(tables.TABLES))
def test_each_table_sits_in_a_document(name):
    assert any(f"<!-- table:{name} -->" in path.read_text() for path in tables.DOCUMENTS), name


def _flags(parser) -> list[str]:
    """The long name of every option of an argparse parser, --help aside."""
    return [a.option_strings[-1] for a in parser._actions if a.option_strings and a.option_strings[-1] != "--help"]


def test_every_flag_of_both_commands_has_a_row():
    import argparse

    from kerasreg.train import build_parser
    from serve.server.command import add_http_parser

    http = argparse.ArgumentParser().add_subparsers()
    add_http_parser(http)
    train_rows, http_rows = tables.train_options(), tables.serve_http_options()
    for flag in _flags(build_parser()):
        assert f"| `{flag}` |" in train_rows, flag
    for flag in _flags(http.choices["http"]):
        assert f"| `{flag}` |" in http_rows, flag
    assert "| `--l2` | auto |" in train_rows and "| `--max-batch` | 256 |" in http_rows


def test_the_page_reads_only_parameters_the_server_sends(digits_export):
    from http_servers import answer, app_for

    script = (REPO / "serve" / "web" / "app.js").read_text()
    read = set(re.findall(r"\bparameters\.(\w+)", script))
    assert {"classes", "dataset", "task", "metrics", "templates", "input", "parity"} <= read  # the pattern finds them
    status, metadata = answer(app_for(digits_export), "GET", "/v2/models/digits")
    assert status == 200
    sent = {key for key, value in metadata["parameters"].items() if value is not None}
    assert read <= sent, f"app.js reads {sorted(read - sent)}, which /v2/models/NAME does not send"


def page_snippets(page: str) -> list[str]:
    """The ```python blocks of a page of the site (or of README.md), in order."""
    return re.findall(r"```python\n(.*?)```", (REPO / page).read_text(), flags=re.S)


@pytest.mark.slow
def test_every_python_snippet_of_the_python_page_runs(tmp_path, monkeypatch, capsys):
    snippets = page_snippets("docs/python.md")
    assert len(snippets) >= 4  # the section is there, and the pattern finds its blocks
    monkeypatch.chdir(tmp_path)  # the snippets write runs/ where they run
    namespace: dict = {}
    for snippet in snippets:
        exec(compile(snippet, "docs/python.md", "exec"), namespace)  # noqa: S102 - the page's own code
    run = namespace["run"]  # what the last snippets left: a finished run on the bundled digits
    assert run.path.is_dir() and run.metrics["accuracy"] > 0.9
    assert "Received an unknown option epoch=3" in capsys.readouterr().out  # the mistake snippet printed its line


@pytest.mark.slow
def test_the_readmes_tour_runs_as_written(tmp_path, monkeypatch):
    [snippet] = page_snippets("README.md")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    run = namespace["run"]
    low, high = run.metrics["accuracy_interval"]
    assert low < run.metrics["accuracy"] < high and run.metrics["accuracy"] > 0.9


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_readmes_shell_tour_runs_as_written(tmp_path):
    import json
    import subprocess

    text = (REPO / "README.md").read_text()
    [tour] = re.findall(r"## A five-minute tour\n.*?```bash\n(.*?)```", text, flags=re.S)
    assert "kill %1" in tour  # the server it starts is stopped by the line the README gives
    http, grpc = _free_port(), _free_port()  # the README's ports, moved off what the rest of the suite uses
    assert tour.count("sleep 3\n") == 1 and "--port 8501 --grpc-port 8001" in tour
    # A person waits 3 s for the server; a machine busy with the rest of the suite may need longer, so the test
    # waits for readiness instead (60 s at most). The trap stops the server whichever way the script ends.
    ready = f"for i in $(seq 300); do curl -sf localhost:{http}/v2/health/ready >/dev/null && break; sleep 0.2; done\n"
    script = "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n" + tour.replace("sleep 3\n", ready)
    script = script.replace("8501", str(http)).replace("8001", str(grpc))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # serve predict (the export) and kerasreg.predict (the run) say the same of each sample, and the upload
    # agrees; the samples are named index-label.png, and a model at 0.96 names nearly all of them right.
    samples = sorted((tmp_path / "exports/digits/samples").glob("*.png"))
    lines = [line for line in done.stdout.splitlines() if line.startswith("exports/digits/samples/")]
    assert len(samples) >= 5 and len(lines) == 2 * len(samples), done.stdout
    first = {name: said.split(" ")[0] for name, said in (line.split(": ", 1) for line in lines[: len(samples)])}
    second = {name: said.split(" ")[0] for name, said in (line.split(": ", 1) for line in lines[len(samples) :])}
    assert first == second
    assert sum(said == Path(name).stem.split("-")[1] for name, said in first.items()) >= len(samples) - 1
    [upload] = [json.loads(line) for line in done.stdout.splitlines() if '"predictions"' in line]
    assert upload["predictions"][0]["top"][0]["class"] == first[f"exports/digits/samples/{samples[0].name}"]


# What each fenced block of a page is (docs/index.md says it to the reader): `python` and `bash` blocks are run by
# the tests as written; `console` is a session recorded here, `$ ` commands and what they printed (output: times,
# digests and paths differ from machine to machine); `shell` is commands to adapt (your paths, hosts, cluster);
# `yaml`, `json` and `text` are a file's contents or output.
KINDS = {"python", "bash", "console", "shell", "yaml", "json", "text"}
# The python and bash blocks each page holds, all run: the README's by the two tour tests above, the Python page's
# by test_every_python_snippet_of_the_python_page_runs, the serving page's by test_the_serving_pages_model_snippet_
# runs below and test_stock_clients' test_the_serving_pages_grpc_snippets_run (its two clients and protoc).
RUN = {"README.md": (1, 1), "docs/python.md": (4, 0), "docs/serving.md": (3, 1)}


def test_every_block_of_every_page_is_run_or_marked_as_what_it_is():
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    found = {}
    for page in pages:
        name = str(page.relative_to(REPO))
        kinds = re.findall(r"^```(\S*)\n.*?^```", page.read_text(), flags=re.S | re.M)
        unmarked = [kind or "(none)" for kind in kinds if kind not in KINDS]
        assert not unmarked, f"{name}: blocks marked {unmarked}; mark each as one of {sorted(KINDS)}"
        if "python" in kinds or "bash" in kinds:
            found[name] = (kinds.count("python"), kinds.count("bash"))
    assert found == RUN, "a python or bash block no test runs (or RUN is stale): run it, or mark it shell/console"


def test_the_serving_pages_model_snippet_runs(digits_export):
    [snippet] = [s for s in page_snippets("docs/serving.md") if "Model.load" in s]
    code = snippet.replace("exports/mnist/model.onnx", str(digits_export)).replace("28, 28", "8, 8")
    namespace: dict = {}
    exec(compile(code, "docs/serving.md", "exec"), namespace)  # noqa: S102 - the page's own code
    top = namespace["top"]
    assert len(top) == 2 and all(len(row) == 3 for row in top)
    assert all(0 <= p <= 1 for row in top for _, p in row) and all(c in "0123456789" for row in top for c, _ in row)


def test_the_site_builds_strictly_offline(tmp_path):
    """`make docs`: mkdocs with --strict, so a broken link, a page left out of the nav or a docstring the API
    reference cannot read fails here, in CI."""
    import subprocess
    import sys

    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    page = (tmp_path / "site" / "reference" / "python" / "index.html").read_text()
    assert "kerasreg.api.train" in page and "serve.runtime.model.Model" in page  # the API reference was generated


def test_the_cluster_page_lists_the_options_workers_may_differ_in_as_the_cluster_compares_them():
    from kerasreg.training.agreement import NOT_COMPARED_ACROSS_WORKERS

    readme = (Path(__file__).parents[1] / "docs" / "clusters.md").read_text()
    listed = re.search(r"\(all but (.*?)\)", readme, re.S).group(1)
    flags = re.findall(r"`--([a-z-]+)`", listed)
    assert sorted(flag.replace("-", "_") for flag in flags) == sorted(NOT_COMPARED_ACROSS_WORKERS)

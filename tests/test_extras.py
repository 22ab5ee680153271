"""Each extra installs what its commands need, and nothing they do not: run each in a venv holding only that extra.

A venv per extra is built from this environment's installed distributions (the
extra's dependency closure, read from the package metadata setup.py wrote, each
distribution's files linked in): no download, a second each, and exactly as if
`pip install "kerasreg[EXTRA]"` had run. A package an extra forgets to declare is
missing there, and its command fails.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import time
import venv
from pathlib import Path

import httpx
import pytest
from http_servers import free_port
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.slow  # venvs and processes, TensorFlow imported in two

EXTRAS = ("train", "export", "serve", "litert", "http")


def closure(extra: str) -> set[str]:
    """The distributions `kerasreg[extra]` installs: the extra's requirements and all of theirs."""
    wanted = [
        Requirement(text)
        for text in importlib.metadata.requires("kerasreg")
        if Requirement(text).marker and Requirement(text).marker.evaluate({"extra": extra})
    ]
    found: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found.add(name)
        for text in importlib.metadata.distribution(requirement.name).requires or []:
            nested = Requirement(text)
            extras = requirement.extras or {""}
            if nested.marker is None or any(nested.marker.evaluate({"extra": e}) for e in extras):
                wanted.append(nested)
    return found


def build_venv(root: Path, extra: str) -> Path:
    """A venv at `root` holding kerasreg (this checkout) and `extra`'s closure, nothing else; its python."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    python = root / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([python, "-c", where], text=True).strip())
    for name in {*closure(extra), "kerasreg"}:
        distribution = importlib.metadata.distribution(name)
        origin = Path(distribution.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in distribution.files or [] if not str(f).startswith("..")}
        for top in tops:
            if not (site / top).exists() and (origin / top).exists():
                (site / top).symlink_to(origin / top)
    return python


@pytest.fixture(scope="module")
def venvs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("extras")
    return {extra: build_venv(root / extra, extra) for extra in EXTRAS}


def _run(python: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return subprocess.run([str(python), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_each_venv_holds_its_extra_and_not_the_others(venvs):
    def has(extra: str, module: str) -> bool:
        return _run(venvs[extra], "-c", f"import {module}").returncode == 0

    assert has("train", "tensorflow") and not has("train", "onnxruntime")
    assert has("serve", "onnxruntime") and not has("serve", "tensorflow") and not has("serve", "ai_edge_litert")
    assert has("litert", "ai_edge_litert") and not has("litert", "onnxruntime") and not has("litert", "tensorflow")
    assert has("http", "granian") and not has("http", "tensorflow")


def test_the_train_extra_trains_and_names_the_extra_it_lacks(venvs, tmp_path):
    python = venvs["train"]
    train = ("-m", "kerasreg.train", "--dataset", "digits", "--epochs", "2", "--l2", "0.01")
    trained = _run(python, *train, "--out", str(tmp_path / "run"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    refused = _run(python, "-m", "export", str(tmp_path / "run"), "--out", str(tmp_path / "x"))
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "python -m export: error: tf2onnx, onnx, onnxruntime, ai-edge-litert not installed; this command needs the "
        'export extra: pip install "kerasreg[export]"'
    )


@pytest.fixture(scope="module")
def exported(venvs, tmp_path_factory) -> Path:
    """A run trained in the train venv, exported in the export venv to every format."""
    root = tmp_path_factory.mktemp("exported")
    train = ("-m", "kerasreg.train", "--dataset", "digits", "--epochs", "3", "--l2", "0.01")
    trained = _run(venvs["train"], *train, "--out", str(root / "run"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    done = _run(venvs["export"], "-m", "export", str(root / "run"), "--out", str(root / "export"), "--litert", "--c")
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "export"


def test_the_export_extra_writes_every_format(exported):
    assert {p.name for p in exported.iterdir()} >= {"model.onnx", "model.tflite", "c", "saved_model", "model.json"}


def test_the_serve_extra_runs_onnx_and_names_the_runtime_a_tflite_file_needs(venvs, exported):
    sample = str(sorted((exported / "samples").glob("*.png"))[0])
    ran = _run(venvs["serve"], "-m", "serve", "predict", str(exported / "model.onnx"), sample)
    assert ran.returncode == 0 and ran.stdout.startswith(sample + ": "), ran.stderr
    refused = _run(venvs["serve"], "-m", "serve", "predict", str(exported / "model.tflite"), sample)
    assert (refused.returncode, refused.stderr.strip()) == (
        2,
        f"python -m serve: error: {exported / 'model.tflite'}: a .tflite file runs on ai-edge-litert, which is not "
        'installed: pip install "kerasreg[litert]"',
    )
    refused = _run(venvs["serve"], "-m", "kerasreg.train", "--dataset", "digits")
    assert refused.returncode == 2 and refused.stderr.strip().startswith(
        "python -m kerasreg.train: error: tensorflow, keras, tensorflow-datasets"
    )


def test_the_litert_extra_serves_tflite_with_neither_tensorflow_nor_onnxruntime(venvs, exported):
    sample = str(sorted((exported / "samples").glob("*.png"))[0])
    python = venvs["litert"]
    for command in (["predict", str(exported / "model.tflite"), sample], ["info", str(exported / "model.tflite")]):
        ran = _run(python, "-m", "serve", *command)
        assert ran.returncode == 0, ran.stderr
    assert "format:   LiteRT" in ran.stdout
    # Neither is installed there, so nothing could have imported them; and the library says so too.
    check = (
        "import sys, serve; serve.Model.load(sys.argv[1]); "
        "print(sorted(m for m in ('tensorflow', 'onnxruntime') if m in sys.modules))"
    )
    assert _run(python, "-c", check, str(exported / "model.tflite")).stdout.strip() == "[]"
    refused = _run(python, "-m", "serve", "predict", str(exported / "model.onnx"), sample)
    assert refused.returncode == 2 and "a .onnx file runs on onnxruntime, which is not installed" in refused.stderr


def test_the_http_extra_serves(venvs, exported):
    port = free_port()
    command = ["-m", "serve", "http", str(exported / "model.onnx"), "--port", str(port), "--drain-seconds", "0"]
    process = subprocess.Popen(
        [str(venvs["http"]), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/models/digits:predict", json={"instances": [[[[0]] * 8] * 8]})
        assert reply.status_code == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err


def test_kerasreg_and_serve_read_the_extras_alike():
    from shared.extras import declared as kerasreg_declared
    from shared.extras import declared as serve_declared

    for extra in EXTRAS:
        assert kerasreg_declared(extra) == serve_declared(extra) and kerasreg_declared(extra), extra
    assert "pillow" in kerasreg_declared("export")  # export writes PNGs with it (through the train extra)

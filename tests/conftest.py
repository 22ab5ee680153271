"""The test suite (pytest): shared fixtures, helpers beside them (trained_runs.py, http_servers.py, ...), and a
test module per capability.

TensorFlow gets two logical CPU devices, for the MirroredStrategy tests, as it is first imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Property tests draw the same cases on every CI run: a landing must not depend on the draw.
# `make fuzz` runs them with random draws and many more cases; what it finds becomes an @example.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("fuzz", derandomize=False, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")


def _two_logical_cpus(tf) -> None:
    """Split the CPU in two logical devices: the MirroredStrategy tests' two replicas on this 2-core machine."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )


class _OnImport(importlib.abc.Loader):
    """TensorFlow's own loader, followed by `_two_logical_cpus` before anything can run an op."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        _two_logical_cpus(module)

    def __getattr__(self, name):  # resources and the rest, as TensorFlow's loader has them
        return getattr(self._loader, name)


class _ConfigureTensorFlowWhenImported(importlib.abc.MetaPathFinder):
    """The devices are set up as TensorFlow is first imported, not at pytest's start: tests that never need it
    (serve's, in a venv with no TensorFlow at all) neither wait for it nor need it installed."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _OnImport(spec.loader)
        return spec


def pytest_configure(config):
    if "tensorflow" in sys.modules:
        _two_logical_cpus(sys.modules["tensorflow"])
    else:
        sys.meta_path.insert(0, _ConfigureTensorFlowWhenImported())


@pytest.fixture(scope="session")
def two_cpu_strategy():
    """MirroredStrategy over the 2 logical CPUs, built the way kerasreg builds it (once per process)."""
    from kerasreg.distribution.strategy import build_strategy, plan_strategy

    return build_strategy(plan_strategy(None, ["/cpu:0", "/cpu:1"])).strategy


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The folder of real datasets (../shared/data in CI); skips where it is not set."""
    value = os.environ.get("KERASREG_TEST_DATA")
    if not value:
        pytest.skip("KERASREG_TEST_DATA is not set: real-data tests need ../shared/data (see .ci/run)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"KERASREG_TEST_DATA={value} is not a folder")
    return path


@pytest.fixture(scope="session")
def digits_export(tmp_path_factory) -> Path:
    """model.onnx exported from a short real training run on digits."""
    from export.exporter import export_run
    from kerasreg.config import TrainConfig
    from kerasreg.pipeline import train_and_evaluate

    root = tmp_path_factory.mktemp("digits-export")
    train_and_evaluate(TrainConfig(dataset="digits", epochs=5, batch_size=128, l2=0.01), root / "run")
    export_run(root / "run", root / "export")
    return root / "export" / "model.onnx"


@pytest.fixture(scope="session")
def digits_litert(digits_export, tmp_path_factory) -> Path:
    """The same digits run exported with --litert --quantize int8: the folder holding model.tflite."""
    from export.exporter import export_run

    out = tmp_path_factory.mktemp("digits-litert") / "export"
    export_run(digits_export.parent.parent / "run", out, quantize="int8", formats=("litert",))
    return out


def env_blocking(folder: Path, modules: tuple[str, ...]) -> dict:
    """Environment for a subprocess in which importing any of `modules` raises ImportError."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import sys\n"
        f"BLOCKED = {modules!r}\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'{name} is blocked for this test')\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    repo = Path(__file__).resolve().parent.parent
    return {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{repo}"}


@pytest.fixture(scope="session")
def no_tensorflow_env(tmp_path_factory) -> dict:
    """Environment for a subprocess in which importing TensorFlow (or kerasreg, export) fails."""
    blocked = ("tensorflow", "keras", "tf2onnx", "kerasreg", "export", "tensorflow_datasets")
    return env_blocking(tmp_path_factory.mktemp("no-tf"), blocked)


# The longest tests start first: on two workers the suite ends when its last long test does, and one started
# last (the course's notebook, 1-2.5 min) kept a worker busy alone for minutes after the other had finished.
_LONG_FIRST = ("test_notebook.py", "test_real_data.py", "test_cluster_failures.py", "test_l2_search.py")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: 0 if item.path.name in _LONG_FIRST else 1)  # stable: the order within each kept

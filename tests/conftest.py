"""Shared fixtures. TensorFlow gets two logical CPU devices, for MirroredStrategy tests."""

from __future__ import annotations

import os
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


def pytest_configure(config):
    # Must happen before TensorFlow initialises its devices, i.e. before any test runs.
    from kerasreg.tensorflow_start import start_tensorflow

    tf = start_tensorflow()

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )


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
    from kerasreg.training.pipeline import train_and_evaluate

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

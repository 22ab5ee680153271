"""Shared fixtures. TensorFlow gets two logical CPU devices, for MirroredStrategy tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    # Must happen before TensorFlow initialises its devices, i.e. before any test runs.
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )


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

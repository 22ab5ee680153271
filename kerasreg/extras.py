"""Which installed extra each command needs, checked before anything imports it.

`pip install kerasreg` alone installs no dependencies (each part brings its own,
so `serve` never pulls in TensorFlow). A command run without its extra answers
with one line naming the pip command, not an ImportError traceback. Standard
library only: it runs before numpy is known to be there.
"""

from __future__ import annotations

import importlib.util
import sys

# Import names of each extra's packages (setup.py lists them by distribution name).
TRAIN = ("numpy", "tensorflow", "keras", "tensorflow_datasets", "sklearn", "scipy", "h5py", "matplotlib")
EXTRAS = {"train": TRAIN, "export": (*TRAIN, "tf2onnx", "onnx", "onnxruntime", "PIL")}


def missing_modules(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here."""
    return [name for name in EXTRAS[extra] if not _installed(name)]


def require_extra(extra: str, prog: str) -> None:
    """Exit 2 with one line when `extra` is not installed."""
    missing = missing_modules(extra)
    if missing:
        print(
            f"{prog}: error: {', '.join(missing)} not installed; this command needs the {extra} extra: "
            f'pip install "kerasreg[{extra}]"',
            file=sys.stderr,
        )
        sys.exit(2)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as missing
        return False

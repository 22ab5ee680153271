"""Which installed extra each serve command needs, checked before anything imports it.

The same contract as kerasreg/extras.py, which serve may not import: one line
naming the pip command instead of an ImportError traceback. Standard library only.
"""

from __future__ import annotations

import importlib.util
import sys

# pyspng and uvloop are left out: without them serve falls back to Pillow and asyncio's loop.
EXTRAS = {
    "serve": ("numpy", "onnxruntime", "PIL"),
    "http": ("numpy", "onnxruntime", "PIL", "granian", "orjson", "prometheus_client"),
}


def require_extra(extra: str, prog: str) -> None:
    """Exit 2 with one line when `extra` is not installed."""
    missing = [name for name in EXTRAS[extra] if not _installed(name)]
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

"""A subprocess that SIGKILLs itself at an exact point of its work: a kill that never misses its moment.

    env = env_killed_at(tmp_path / "hook", "kerasreg.training.compiled_epoch", "CompiledEpoch.run_epoch",
                        "args[2] == 2")   # as epoch 2 (0-based) begins: epochs 0 and 1 are backed up

A `sitecustomize` on the subprocess's path wraps the function once its module is
imported; the first call for which `condition` (an expression over `args` and
`kwargs`) holds kills the process with SIGKILL, as a lost machine would: no
handler, no cleanup, no flush. With `signal_name="SIGINT"` it is a Ctrl-C instead,
delivered there (the process then has a few seconds to end itself before the call
would go on).
"""

from __future__ import annotations

import os
from pathlib import Path

_HOOK = '''
import importlib.abc, importlib.util, os, signal, sys

import time

MODULE, ATTRIBUTE, CONDITION, SIGNAL = {module!r}, {attribute!r}, {condition!r}, {signal_name!r}


def _wrap(module):
    *path, last = ATTRIBUTE.split(".")
    owner = module
    for name in path:
        owner = getattr(owner, name)
    real = getattr(owner, last)

    def killing(*args, **kwargs):
        if eval(CONDITION):
            os.kill(os.getpid(), getattr(signal, SIGNAL))
            time.sleep(10)  # a Ctrl-C is handled by a thread of the process: let it end the process first
        return real(*args, **kwargs)

    setattr(owner, last, killing)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _wrap(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Finder())
'''


def env_killed_at(
    folder: Path, module: str, attribute: str, condition: str = "True", signal_name: str = "SIGKILL"
) -> dict:
    """Environment for a subprocess that SIGKILLs itself (or sends itself `signal_name`) when `module.attribute`
    is called with `condition` true."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        _HOOK.format(module=module, attribute=attribute, condition=condition, signal_name=signal_name)
    )
    repo = Path(__file__).resolve().parent.parent
    return {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{repo}", "TF_CPP_MIN_LOG_LEVEL": "2"}

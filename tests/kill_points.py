"""A subprocess that SIGKILLs itself at an exact point of its work: a kill that never misses its moment.

    env = env_killed_at(tmp_path / "hook", "kerasreg.training.compiled_epoch", "CompiledEpoch.run_epoch",
                        "args[2] == 2")   # as epoch 2 (0-based) begins: epochs 0 and 1 are backed up

A `sitecustomize` on the subprocess's path wraps the function once its module is
imported; the first call for which `condition` (an expression over `args` and
`kwargs`) holds kills the process with SIGKILL, as a lost machine would: no
handler, no cleanup, no flush. With `signal_name="SIGINT"` it is a Ctrl-C instead,
delivered there (the process then has a few seconds to end itself before the call
would go on). With `backup_every=N` a cluster's workers back up every N epochs,
whatever their clocks say (kerasreg.training.agreement.chief_interval answers N).
"""

from __future__ import annotations

import os
from pathlib import Path

_HOOK = """
import importlib.abc, importlib.util, os, signal, sys

import time

MODULE, ATTRIBUTE, CONDITION, SIGNAL = {module!r}, {attribute!r}, {condition!r}, {signal_name!r}
BACKUP_EVERY = {backup_every!r}


def _every(module):
    module.chief_interval = lambda choice: (lambda mine: BACKUP_EVERY)


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
    def __init__(self, name, patch):
        self.name, self.patch = name, patch

    def find_spec(self, name, path, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            self.patch(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Finder(MODULE, _wrap))
if BACKUP_EVERY is not None:
    sys.meta_path.insert(0, _Finder("kerasreg.training.agreement", _every))
"""


def env_killed_at(
    folder: Path,
    module: str,
    attribute: str,
    condition: str = "True",
    signal_name: str = "SIGKILL",
    backup_every: int | None = None,
) -> dict:
    """Environment for a subprocess that SIGKILLs itself (or sends itself `signal_name`) when `module.attribute`
    is called with `condition` true (never, for "False"), backing up every `backup_every` epochs when given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        _HOOK.format(
            module=module, attribute=attribute, condition=condition, signal_name=signal_name, backup_every=backup_every
        )
    )
    repo = Path(__file__).resolve().parent.parent
    return {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{repo}", "TF_CPP_MIN_LOG_LEVEL": "2"}

"""`python -m kerasreg.train`: parse and check the flags, then train (kerasreg/pipeline.py).

    python -m kerasreg.train --dataset digits --out runs/digits
    python -m kerasreg.train --dataset mnist --epochs 10 --out runs/mnist
    python -m kerasreg.train --dataset cat --data-dir ~/data --balance class_weight

From Python the same module is the function (kerasreg/api.py, `help(kerasreg.api.train)`):

    run = kerasreg.train("runs/digits", dataset="digits", epochs=20)

The run directory's files are listed in kerasreg/run_directory/files.py.
"""

from __future__ import annotations

if __name__ == "__main__":  # before the imports below, which need the train extra
    from shared.extras import require_extra

    require_extra("train", "python -m kerasreg.train")

import argparse
import os
import sys
import time
import types
from pathlib import Path

from kerasreg.cli import run_cli
from kerasreg.errors import KerasregError
from kerasreg.flags import add_config_flags, config_from_args

_EPILOG = """\
examples:
  python -m kerasreg.train --dataset digits --out runs/digits
  python -m kerasreg.train --dataset mnist --data-dir ~/data/mnist --source files --epochs 10
  python -m kerasreg.train --dataset cat --data-dir ~/data --balance undersample

datasets: mnist and cifar10 come from tensorflow-datasets or from the distribution
files in --data-dir (MNIST *-idx?-ubyte[.gz]; CIFAR-10 cifar-10-batches-py/ or
cifar-10-python.tar.gz); cat is CIFAR-10's cat vs the other nine; catvnoncat needs
the course's train_catvnoncat.h5 and test_catvnoncat.h5; digits is bundled offline.

interrupted runs: rerun the same command and it resumes after the last backup; the
run directory is checked first (config.json, history.csv and the backup must agree,
and with the options given), and one process at a time may train into an --out.
clusters (TF_CONFIG): rerun the same command on every worker; the workers resume from
the newest epoch all of them backed up. Exit 3 means a peer did not join, stopped
answering or died (--peer-timeout); the run is resumable.
diverged runs: when the training objective becomes nan or infinite (too large a
--learning-rate or --l2), the run stops with an error and keeps no backup, so a
rerun with a smaller value starts clean.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m kerasreg.train`: one flag per TrainConfig field, plus where the run goes."""
    p = argparse.ArgumentParser(
        prog="python -m kerasreg.train",
        description="Train a logistic-regression classifier (one Dense layer) on raw image pixels.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(p)
    p.add_argument(
        "--out",
        default=None,
        help="run directory to write; rerunning into an unfinished one resumes it "
        "(default: runs/<dataset>-<timestamp>)",
    )
    resume = p.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume",
        action="store_true",
        help="require an unfinished run in --out and continue it; fail if there is none (default: resume one if "
        "it is there, else start)",
    )
    resume.add_argument(
        "--restart", action="store_true", help="discard an unfinished run's backup in --out and start over"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse, validate, train; user mistakes exit 2 with one line."""
    from kerasreg.pipeline import train_and_evaluate

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except KerasregError as e:
        parser.error(str(e))
    if args.out is not None and not args.out.strip():
        parser.error("Received --out ''. Expected a folder to write the run to (without --out: runs/<dataset>-<time>).")
    out = Path(args.out) if args.out else Path("runs") / f"{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    resume = "restart" if args.restart else "required" if args.resume else "auto"
    hint = f"the last backed-up epoch is in {out}; rerun the same command to resume"
    tf_config = os.environ.get("TF_CONFIG")
    # Before TensorFlow loads (kerasreg/tensorflow_start.py): in a cluster its error logs are hidden too, as each
    # failure of a peer becomes one line of ours (kerasreg/distribution/cluster.py).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if tf_config else "2")
    if tf_config:
        from kerasreg.pipeline import supervise_worker

        try:
            hint, code = supervise_worker(parser.prog, out, tf_config)
        except KerasregError as e:
            parser.error(str(e))
        if code is not None:
            return code
    return run_cli(parser.prog, lambda: train_and_evaluate(config, out, resume=resume), interrupted_hint=hint)


class _CallableModule(types.ModuleType):
    """This module, callable as `kerasreg.train(...)`: Python binds the submodule to the package's `train`
    attribute whenever it is imported, so the function and the command share the name by being one object."""

    def __call__(self, out=None, **kwargs):
        """Train from Python; see kerasreg.api.train."""
        from kerasreg.api import train

        return train(out, **kwargs)


if __name__ == "__main__":
    from kerasreg.cli import exit_now

    exit_now(main())
elif __name__ == "kerasreg.train":
    sys.modules[__name__].__class__ = _CallableModule

"""Command-line flags built from `TrainConfig`'s fields, shared by `python -m kerasreg.train` and `kerasreg.study`.

Each field declares its help, choices and argparse group (kerasreg/config.py), so a
new option is one field: its flag, its `--help` line and the README's table follow.
"""

from __future__ import annotations

import argparse
import dataclasses

from kerasreg.config import TrainConfig

_FLAG_TYPES = {"int": int, "float": float, "str": str}


def add_config_flags(parser: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """A flag for every TrainConfig field, with its help and default from the field.

    `defaults` maps a field to (its default in this command, why, shown in --help).
    """
    defaults = defaults or {}
    groups: dict[str, argparse._ArgumentGroup] = {}
    for field in dataclasses.fields(TrainConfig):
        meta = field.metadata
        group = groups.setdefault(meta["group"], parser.add_argument_group(meta["group"])) if meta["group"] else parser
        flag = "--" + field.name.replace("_", "-")
        default = field.default
        shown = meta["shown"] if meta["shown"] is not None else field.default
        if isinstance(shown, float):
            shown = f"{shown:g}"  # 10 and 1e-04, not 10.0 and 0.0001
        if field.name in defaults:
            default, why = defaults[field.name]
            shown = f"{default}: {why}"
        help_text = f"{meta['help']} (default: {shown})"
        if field.type == "bool":
            group.add_argument(flag, action="store_true", help=help_text)
        else:
            kind = meta["parse"] or _FLAG_TYPES[field.type.split(" |")[0]]
            group.add_argument(flag, type=kind, default=default, choices=meta["choices"], help=help_text)


def config_from_args(args: argparse.Namespace, **overrides) -> TrainConfig:
    """Turn parsed arguments into a validated TrainConfig (every field has its flag, or is in `overrides`)."""
    values = {field.name: getattr(args, field.name, None) for field in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{**values, **overrides})

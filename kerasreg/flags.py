"""Command-line flags built from `TrainConfig`'s fields, shared by `python -m kerasreg.train` and `kerasreg.study`.

Each field declares its help, choices and argparse group (kerasreg/config.py), so a
new option is one field: its flag, its `--help` line and the README's table follow.
"""

from __future__ import annotations

import argparse
import dataclasses

from kerasreg.config import TrainConfig, preset_values
from kerasreg.errors import KerasregError

_FLAG_TYPES = {"int": int, "float": float, "str": str}


def add_config_flags(parser: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """A flag for every TrainConfig field, with its help and default from the field.

    `defaults` maps a field to (its default in this command, why, shown in --help).
    A flag that is not given is absent from the parsed arguments (argparse.SUPPRESS),
    so `config_from_args` can tell an explicit option from a default, which a preset
    may set.
    """
    defaults = defaults or {}
    groups: dict[str, argparse._ArgumentGroup] = {}
    for field in dataclasses.fields(TrainConfig):
        meta = field.metadata
        group = groups.setdefault(meta["group"], parser.add_argument_group(meta["group"])) if meta["group"] else parser
        flag = "--" + field.name.replace("_", "-")
        shown = meta["shown"] if meta["shown"] is not None else field.default
        if isinstance(shown, float):
            shown = f"{shown:g}"  # 10 and 1e-04, not 10.0 and 0.0001
        if field.name in defaults:
            default, why = defaults[field.name]
            shown = f"{default}: {why}"
        help_text = f"{meta['help']} (default: {shown})"
        if field.type == "bool":
            group.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=help_text)
        else:
            kind = meta["parse"] or _FLAG_TYPES[field.type.split(" |")[0]]
            group.add_argument(flag, type=kind, default=argparse.SUPPRESS, choices=meta["choices"], help=help_text)


def explicit_options(args: argparse.Namespace) -> dict:
    """The TrainConfig options given on the command line (a flag not given is absent)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}


def config_from_args(
    args: argparse.Namespace, defaults: dict | None = None, preset_defaults: dict | None = None, **overrides
) -> TrainConfig:
    """A validated TrainConfig from parsed arguments: what was given, over the preset's values, over `defaults`.

    `defaults` are this command's own defaults (field -> value), beneath a preset's;
    `preset_defaults` maps a preset to this command's defaults for it, above the preset's.
    """
    given = explicit_options(args)
    preset = given.get("preset")
    values = {**(defaults or {}), **preset_values(preset), **(preset_defaults or {}).get(preset, {})}
    config = TrainConfig(**{**values, **given, **overrides})
    refuse_unused(config.dataset, given)
    return config


# The options only some datasets read (a --source a dataset cannot take is refused where it loads).
_FOLDER_OPTIONS = ("image_size", "channels", "test_split", "positive_class", "skip_bad_images")
_BUNDLED = "digits"
_FILE_DATASETS = ("mnist", "cifar10", "cat", "catvnoncat")


def refuse_unused(dataset: str, given: dict) -> None:
    """KerasregError when an option given on the command line is one the chosen dataset never reads: a user who
    passes `--data-dir photos/` and forgets `--dataset folder` must not get the bundled digits trained in silence."""
    tfds = dataset.startswith("tfds:")
    for name in given:
        flag = "--" + name.replace("_", "-")
        if name == "data_dir" and dataset == _BUNDLED:
            raise KerasregError(
                f"Received {flag} with --dataset {dataset}, which is bundled and reads no folder. Pass --dataset "
                f"folder to train on your own images in it (or {', '.join(_FILE_DATASETS)} for their files)."
            )
        if name in _FOLDER_OPTIONS and dataset != "folder" and not tfds:
            raise KerasregError(
                f"Received {flag} with --dataset {dataset}, which does not read it. {flag} shapes your own images "
                "(--dataset folder) and tfds:NAME sets."
            )

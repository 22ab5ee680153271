"""`TrainConfig`: every training option, resolved, validated and frozen.

One object in (argparse builds it from the fields, tests build it directly),
written to the run directory's config.json before anything else.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass

from kerasreg.datasets import DATASET_CHOICES, SOURCE_CHOICES, FolderOptions, known_dataset
from kerasreg.datasets.views import BALANCE_CHOICES
from kerasreg.distribution.strategy import COLLECTIVE_CHOICES
from kerasreg.errors import KerasregError

# `--l2 auto`'s grid: half-decades from 10 (a near-constant model) down to 1e-5 (C ~ 40
# on digits). Measured best points on validation: cat vs rest 1, the CIFAR sample 0.3
# (0.1 on other seeds' splits), MNIST 8k 3e-3, digits 1e-5 to 3e-4.
L2_GRID = tuple(float(f"{10 ** (k / 2):.3g}") for k in range(2, -11, -1))
# Where a walk past the grid's end stops even if the loss still falls. At 1e-8 the
# penalty is below float32's resolution of the loss (C ~ 4e4 on digits, ~1e3 on
# full MNIST); at 1e3 the weights are ~1e-4 of the unregularised ones: a constant model.
WEAK_BOUND, STRONG_BOUND = 1e-8, 1e3
# Below this many training images --l2 auto chooses by k-fold cross-validation (--l2-folds): a 10 % split of
# 2,000 holds 200 images, whose loss moves by more between draws than the grid's steps change it (catvnoncat's
# 21 validation images moved its test accuracy from 0.82 to 0.74 between two draws). Above it the folds would
# cost k paths for a split that is already steady.
KFOLD_BELOW = 2000
CONVERGED_PATIENCE = 5  # epochs in a row without progress (beyond --tol) that mean the optimum is reached
OPTIMIZER_CHOICES = ("adam", "sgd")
NORMALIZE_CHOICES = ("per-pixel", "none")
# Options that may differ when a rerun resumes an unfinished run: how often it backs up is not the run's nature.
NOT_COMPARED_ON_RESUME = ("backup_interval", "peer_timeout")
# Adam at 1e-2 with batch 1024, halved whenever an epoch stops lowering the training
# objective. Measured on the validation splits: MNIST 8k reaches a lower validation
# loss than the old 1e-3 at batch 128 (0.337 vs 0.336, in 14 epochs instead of 29),
# digits stops after ~60 epochs instead of running to the cap, and 3e-2 overshoots
# on CIFAR (validation loss 0.41 vs 0.34 on MNIST). SGD is kept at 0.1, not re-tuned.
DEFAULT_LEARNING_RATES = {"adam": 1e-2, "sgd": 0.1}


L2_AUTO = BATCH_AUTO = "auto"
BATCH_FULL = "full"  # every training image in one step: full-batch gradient descent, as the course's notebook
INIT_CHOICES = ("glorot", "zeros")
SCHEDULE_CHOICES = ("plateau", "none")
BATCH_RANGE = (32, 1024)
STEPS_PER_EPOCH = 16  # what the auto batch aims at
MAX_PEER_TIMEOUT = 86400.0  # a day; TensorFlow takes the timeouts in int32 milliseconds
MAX_SEED = 2**32 - 1  # numpy's, Keras's and scikit-learn's seeds are 32-bit


def option(
    default,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    shown: str | None = None,
    group: str = "",
    parse=None,
):
    """A TrainConfig field that is also a command-line flag: `--name-with-dashes`.

    `help` is the flag's help; `shown` replaces the default in "(default: ...)"
    where the value alone would not explain it; `group` names an argparse group;
    `parse` is the flag's argparse type where the field's own type would not do.
    """
    return dataclasses.field(
        default=default, metadata={"help": help, "choices": choices, "shown": shown, "group": group, "parse": parse}
    )


def auto_or(kind: type, *extra: str):
    """An argparse type for a flag that takes "auto" (or one of `extra`) or a value of `kind` (int or float)."""
    noun = "an integer" if kind is int else "a number"

    def parse(text: str):
        if text in ("auto", *extra):
            return text
        try:
            return kind(text)
        except ValueError:
            words = ", ".join(("auto", *extra))
            raise argparse.ArgumentTypeError(f"expected {words} or {noun}, got {text!r}") from None

    return parse


# Named sets of defaults; an option given explicitly overrides its preset's value.
PRESETS: dict[str, dict] = {
    # The deep-learning course's week-2 notebook, exactly: pixels / 255, weights and bias from zero, full-batch
    # gradient descent at 0.005 for 2,000 iterations; no L2, no validation split, no schedule, no stops.
    "course": {
        "normalize": "none",
        "init": "zeros",
        "optimizer": "sgd",
        "learning_rate": 0.005,
        "batch_size": BATCH_FULL,
        "epochs": 2000,
        "l2": 0.0,
        "val_split": 0.0,
        "lr_schedule": "none",
        "tol": 0.0,
        "balance": "none",
        "print_cost_every": 100,
    },
}


def preset_values(preset: str | None) -> dict:
    """The options preset `preset` sets ({} for none); KerasregError for a preset that does not exist."""
    if preset is not None and preset not in PRESETS:
        raise KerasregError(f"Received preset={preset!r}. Expected one of: {', '.join(PRESETS)}.")
    return dict(PRESETS.get(preset, {}))


DISTRIBUTION = "distribution (see README: Training on GPUs and clusters)"
OWN_IMAGES = "your own images (--dataset folder) and tfds:NAME sets (see README: Your own images)"


@dataclass(frozen=True)
class TrainConfig:
    """Resolved training options; see `python -m kerasreg.train --help`.

    Every field is a flag of `python -m kerasreg.train` (kerasreg/train.py builds the
    parser from these fields) and a row of the README's option table (a test checks
    both). Where the run goes and whether it resumes are not training options: they
    are arguments of `train_and_evaluate`.
    """

    preset: str | None = option(
        None,
        "a named set of defaults; options given explicitly override it. course: the deep-learning course's "
        "week-2 notebook (pixels/255, zero weights, full-batch gradient descent at 0.005 for 2000 iterations, no "
        "L2, no validation split, no schedule, no stops, the cost printed every 100 iterations)",
        choices=tuple(PRESETS),
        shown="none",
    )
    dataset: str = option(  # bundled, offline: the demo's
        "digits", f"what to learn: {', '.join(DATASET_CHOICES)} (your own images in --data-dir), or tfds:NAME[/CONFIG]"
    )
    source: str = option(
        "auto", "auto: the files in --data-dir when they are there, else tensorflow-datasets", choices=SOURCE_CHOICES
    )
    data_dir: str | None = option(None, "folder holding the dataset files; for tfds, its data_dir", shown="tfds's own")
    epochs: int = option(  # an upper bound
        100, "most epochs per training run (with --l2 auto: per point of the search, and for the refit)"
    )
    # Global batch, split across replicas. Each step costs ~0.3 ms beyond its
    # arithmetic, so on MNIST 8k an epoch at batch 128 takes twice as long as at 1024
    # (the epoch at 1024 against the numpy floor: README, Performance): large batches for large
    # data. But Adam needs steps to converge: at 1024, digits' 1.3k images make 2 steps
    # an epoch and its weakly regularised points hit the epoch cap (test accuracy
    # 0.958, against 0.975 at 64). So auto aims at 16 steps an epoch.
    batch_size: int | str = option(
        BATCH_AUTO,
        "GLOBAL batch size; each of R replicas gets batch-size/R; auto: the largest power of 2 <= training images/16, "
        f"within {BATCH_RANGE[0]}..{BATCH_RANGE[1]}; full: every training image in one step (gradient descent)",
        parse=auto_or(int, BATCH_FULL),
    )
    learning_rate: float | None = option(
        None,
        "step size (with --lr-schedule plateau, halved whenever an epoch stops lowering the training objective)",
        shown=", ".join(f"{k} {v:g}" for k, v in DEFAULT_LEARNING_RATES.items()),
    )
    optimizer: str = option("adam", "the Keras optimizer", choices=OPTIMIZER_CHOICES)
    # No one strength suits every dataset: on validation data digits wants ~1e-5,
    # MNIST 8k ~3e-3, the CIFAR sample ~0.3, cat vs rest ~1. So the default searches for it.
    l2: float | str = option(
        L2_AUTO,
        "L2 penalty on the weights, l2*sum(w^2) added to the mean loss (scikit-learn's C = 1/(2*l2*n)); 0 turns "
        f"it off; auto: train to convergence at each of {L2_GRID[0]:g}, {L2_GRID[1]:g}, ..., {L2_GRID[-1]:g} on "
        "the validation split (and on past either end, in the same steps, while the loss still falls there, "
        f"within {WEAK_BOUND:g}..{STRONG_BOUND:g}), pick the lowest validation loss, refit on training+validation "
        "data at that C",
        parse=auto_or(float),
    )
    normalize: str = option(
        "per-pixel",
        "standardise each pixel with training-split statistics, inside the model",
        choices=NORMALIZE_CHOICES,
    )
    seed: int = option(0, "seed for splits, shuffling and weights; runs repeat exactly on the CPU")
    balance: str = option(  # weigh classes equally: the cat task is 1:9
        "class_weight",
        "for imbalanced tasks: weigh classes equally, drop majority examples, or nothing",
        choices=BALANCE_CHOICES,
    )
    val_split: float = option(
        0.1,
        "fraction of training data held out for validation: --l2 auto chooses on it; with a numeric --l2, early "
        "stopping watches it; 0 trains on all of it",
    )
    l2_folds: int = option(
        5,
        f"with --l2 auto on fewer than {KFOLD_BELOW:,} training images: choose the strength by the mean validation "
        "loss over this many stratified folds of them (as LogisticRegressionCV does), not on the validation "
        "split; 1: always the split",
    )
    patience: int = option(3, "with a numeric --l2: epochs without a better validation loss before stopping")
    # scikit-learn's default tolerance; a converged run stops before the epoch cap.
    tol: float = option(
        1e-4,
        "converged: stop once the training objective has improved by less than tol (relative) in "
        f"{CONVERGED_PATIENCE} epochs in a row; 0 never stops for convergence",
    )
    lr_schedule: str = option(
        "plateau",
        "plateau: halve the step when an epoch stops lowering the objective; none: keep it",
        choices=SCHEDULE_CHOICES,
    )
    init: str = option(
        "glorot", "the classifier's starting weights: Keras's glorot uniform, or all zeros", choices=INIT_CHOICES
    )
    print_cost_every: int = option(
        0,
        'print "Cost after iteration N: C" every N iterations (epochs), as the course\'s notebook does, instead of a '
        "line per epoch; 0: a line (or a bar) per epoch",
        shown="0",
    )
    # A backup (every variable of the model and optimizer, as .npz) takes ~1 ms, as
    # much as a tenth of an epoch on small data: an interval, and always one at the
    # end. 10 s bounds what a crash can lose.
    backup_interval: float = option(
        10.0,
        "seconds between backups of the training state, which a rerun resumes from; one is always made at the end; "
        "0 backs up after every epoch",
    )
    devices: str | None = option(
        None, "GPU indices for MirroredStrategy, e.g. 0,2", shown="every visible GPU", group=DISTRIBUTION
    )
    collective: str = option(
        "auto",
        "all-reduce of MultiWorkerMirroredStrategy when TF_CONFIG names a cluster",
        choices=COLLECTIVE_CHOICES,
        group=DISTRIBUTION,
    )
    # TensorFlow's own settings carry it (kerasreg/distribution/coordination.py): the coordination service's
    # registration barrier and heartbeat, and each collective's timeout.
    peer_timeout: float = option(
        120.0,
        "with TF_CONFIG: seconds to wait for every worker to join, and for any exchange between workers to finish; "
        "past it every worker still alive stops with exit code 3 and the run can be resumed",
        group=DISTRIBUTION,
    )
    mixed_precision: bool = option(
        False, "mixed_float16 (for GPUs); the output layer stays float32", shown="off", group=DISTRIBUTION
    )
    # Your own images (--dataset folder), and tfds:NAME sets.
    image_size: str | None = option(
        None,
        "N or HxW: the size images are resized to (Lanczos, as serve resizes)",
        shown="64x64, or the smallest image's size when every image is smaller",
        group=OWN_IMAGES,
    )
    channels: int | None = option(
        None, "1 (grayscale) or 3 (RGB)", shown="3, or 1 when every image is grayscale", group=OWN_IMAGES
    )
    test_split: float = option(
        0.2,
        "fraction of each class held out for testing when the data has no test split of its own (DIR/CLASS, or a "
        "tfds set without one)",
        group=OWN_IMAGES,
    )
    positive_class: str | None = option(
        None, "with two classes: the one the sigmoid answers for", shown="the second name", group=OWN_IMAGES
    )
    skip_bad_images: bool = option(
        False,
        "train without the files that should be images and do not decode, listing them in config.json, instead of "
        "stopping before training",
        shown="off: one line naming them, exit 2",
        group=OWN_IMAGES,
    )

    @classmethod
    def resolve(cls, **given) -> TrainConfig:
        """The config `given` asks for: its preset's values (when it names one) beneath the options given."""
        return cls(**{**preset_values(given.get("preset")), **given})

    def __post_init__(self) -> None:
        self._check_types()
        if not isinstance(self.dataset, str) or not known_dataset(self.dataset):
            raise KerasregError(
                f"Received dataset={self.dataset!r}. Expected one of: {', '.join(DATASET_CHOICES)}, or tfds:NAME."
            )
        self._check_own_images()
        _check_choice("source", self.source, SOURCE_CHOICES)
        _check_choice("optimizer", self.optimizer, OPTIMIZER_CHOICES)
        _check_choice("normalize", self.normalize, NORMALIZE_CHOICES)
        _check_choice("balance", self.balance, BALANCE_CHOICES)
        _check_choice("collective", self.collective, COLLECTIVE_CHOICES)
        _check_positive_int("epochs", self.epochs)
        batch = self.batch_size
        if batch not in (BATCH_AUTO, BATCH_FULL) and (
            isinstance(batch, bool) or not isinstance(batch, int) or batch < 1
        ):
            raise KerasregError(
                f"Received batch_size={batch!r}. Expected {BATCH_AUTO}, {BATCH_FULL} or a positive integer."
            )
        _check_choice("lr_schedule", self.lr_schedule, SCHEDULE_CHOICES)
        _check_choice("init", self.init, INIT_CHOICES)
        every = self.print_cost_every
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise KerasregError(f"Received print_cost_every={every!r}. Expected an integer >= 0.")
        _check_positive_int("patience", self.patience)
        if isinstance(self.l2_folds, bool) or not isinstance(self.l2_folds, int) or not 1 <= self.l2_folds <= 20:
            raise KerasregError(f"Received l2_folds={self.l2_folds!r}. Expected an integer 1..20 (1: no folds).")
        if self.learning_rate is not None and not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise KerasregError(f"Received learning_rate={self.learning_rate}. Expected a positive number.")
        if self.l2 == L2_AUTO:
            if self.val_split == 0:
                raise KerasregError(
                    "Received l2=auto with val_split=0: auto chooses the strength on the validation split. "
                    "Use a val_split above 0, or give l2 a number."
                )
        elif (
            isinstance(self.l2, bool)
            or not isinstance(self.l2, int | float)
            or not (math.isfinite(self.l2) and self.l2 >= 0)
        ):
            raise KerasregError(f"Received l2={self.l2!r}. Expected auto, or a number >= 0 (0 turns L2 off).")
        if not (math.isfinite(self.tol) and self.tol >= 0):
            raise KerasregError(f"Received tol={self.tol}. Expected a number >= 0.")
        if not (math.isfinite(self.backup_interval) and self.backup_interval >= 0):
            raise KerasregError(f"Received backup_interval={self.backup_interval}. Expected seconds >= 0.")
        if not (math.isfinite(self.peer_timeout) and 1 <= self.peer_timeout <= MAX_PEER_TIMEOUT):
            raise KerasregError(
                f"Received peer_timeout={self.peer_timeout}. Expected seconds from 1 to {MAX_PEER_TIMEOUT:g}."
            )
        if not (0 <= self.val_split < 1):
            raise KerasregError(f"Received val_split={self.val_split}. Expected a fraction in [0, 1).")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise KerasregError(f"Received seed={self.seed!r}. Expected an integer 0..{MAX_SEED}.")

    def _check_types(self) -> None:
        """Each option of the Python type its field declares: the command line parses text, Python passes values."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            kinds = [kind.strip() for kind in field.type.split("|")]
            if (value is None and "None" in kinds) or kinds in (["int", "str"], ["float", "str"]):
                continue  # a number or a word (auto): their own checks below say which words
            if not any(kind in _TYPES and _is_kind(value, kind) for kind in kinds):
                nouns = " or ".join(_TYPES[kind][1] for kind in kinds if kind in _TYPES)
                raise KerasregError(f"Received {field.name}={value!r}. Expected {nouns}.")

    def _check_own_images(self) -> None:
        if self.image_size is not None:
            parse_image_size(self.image_size)
        if self.channels not in (None, 1, 3) or isinstance(self.channels, bool):
            raise KerasregError(f"Received channels={self.channels!r}. Expected 1 (grayscale) or 3 (RGB).")
        if not (isinstance(self.test_split, int | float) and 0 < self.test_split < 1):
            raise KerasregError(f"Received test_split={self.test_split!r}. Expected a fraction in (0, 1).")
        if self.positive_class is not None and not isinstance(self.positive_class, str):
            raise KerasregError(f"Received positive_class={self.positive_class!r}. Expected a class name.")

    def dataset_options(self) -> FolderOptions:
        """What shapes a folder's (or a tfds set's) dataset, from these options."""
        size = parse_image_size(self.image_size) if self.image_size is not None else None
        return FolderOptions(size, self.channels, self.test_split, self.positive_class, self.skip_bad_images, self.seed)

    def resolved_batch_size(self, n_train: int) -> int:
        """The global batch in force for `n_train` training images: the given one, full's, or auto's."""
        if self.batch_size == BATCH_FULL:
            return n_train
        if self.batch_size != BATCH_AUTO:
            return self.batch_size
        target = max(1, n_train // STEPS_PER_EPOCH)
        return min(max(1 << (target.bit_length() - 1), BATCH_RANGE[0]), BATCH_RANGE[1])

    @property
    def resolved_learning_rate(self) -> float:
        """The learning rate in force: the given one, or the optimizer's default."""
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATES[self.optimizer]

    def to_dict(self) -> dict:
        """The options as written to config.json, learning rate resolved."""
        return {**dataclasses.asdict(self), "learning_rate": self.resolved_learning_rate}

    def resume_differences(self, recorded: dict) -> list[str]:
        """Options that differ from a recorded run's (config.json "options"), for a resume check."""
        mine = self.to_dict()
        return [k for k in mine if k not in NOT_COMPARED_ON_RESUME and k in recorded and recorded[k] != mine[k]]

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Rebuild from config.json's "options", ignoring keys of other versions."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


MAX_SIDE = 1024  # pixels a side: past this a linear model on raw pixels is no longer a baseline


def parse_image_size(text: str) -> tuple[int, int]:
    """(height, width) of "N" or "HxW", each 1..MAX_SIDE; KerasregError otherwise."""
    parts = str(text).lower().split("x")
    if len(parts) in (1, 2) and all(p.isascii() and p.isdigit() for p in parts):
        sides = [int(p) for p in parts] * (2 // len(parts))
        if all(1 <= side <= MAX_SIDE for side in sides):
            return sides[0], sides[1]
    raise KerasregError(f"Received image_size={text!r}. Expected N or HxW, each 1..{MAX_SIDE} (e.g. 64 or 48x64).")


_TYPES = {  # a field's declared type -> (the Python types that hold it, what to call it in a message)
    "int": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "str": ((str,), "a string"),
    "bool": ((bool,), "True or False"),
    "None": ((type(None),), "None"),
}


def _is_kind(value, kind: str) -> bool:
    # bool is an int to Python; an option that takes a number never means True.
    return isinstance(value, _TYPES[kind][0]) and (kind == "bool" or not isinstance(value, bool))


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise KerasregError(f"Received {name}={value!r}. Expected one of: {', '.join(choices)}.")


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise KerasregError(f"Received {name}={value!r}. Expected a positive integer.")

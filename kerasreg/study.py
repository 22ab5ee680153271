"""A study: the same model trained with several settings, its cost curves overlaid (the course's week-2 analysis).

    python -m kerasreg.study --dataset catvnoncat --data-dir DIR --learning-rates 0.01 0.001 0.0001 --out studies/lr
    python -m kerasreg.study --dataset cifar10 --data-dir DIR --l2-strengths 0.01 0.03 0.1 --out studies/l2
    python -m kerasreg.study --preset course --dataset catvnoncat --data-dir DIR --learning-rates 0.01 0.001 0.0001 \
        --out studies/course-lr     # the notebook's picture: 1,500 iterations each, cost against iterations

studies/lr/
  learning_rate-0.01/ ...     one normal run directory per setting (train_and_evaluate)
  loss_curves.png             training (solid) and validation (dashed) loss of every setting, overlaid
  results.md, results.csv     final train, validation and test accuracy per setting; the best by validation loss

Every other training flag applies to all settings. Interrupt a study and rerun the
same command: finished runs are kept, an unfinished one resumes where it stopped.
"""

from __future__ import annotations

if __name__ == "__main__":  # before the imports below, which need the train extra
    from shared.extras import require_extra

    require_extra("train", "python -m kerasreg.study")

import argparse
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from kerasreg.cli import run_cli
from kerasreg.errors import KerasregError
from kerasreg.flags import add_config_flags, config_from_args
from kerasreg.reports.drawing import COLORS, Series, line_chart
from kerasreg.run_directory import files

CURVES = "loss_curves.png"
TABLE_MD, TABLE_CSV = "results.md", "results.csv"
SWEEPS = {"learning_rates": "learning_rate", "l2_strengths": "l2"}  # flag dest -> TrainConfig field
# --l2 auto refits on the validation data, so its runs have no validation curve to
# overlay: a study trains at one strength, the one digits and MNIST do well at.
STUDY_L2 = 0.01
DEFAULTS = {"l2": STUDY_L2}
# The course's notebook compares learning rates over 1,500 iterations, not its usual 2,000.
PRESET_DEFAULTS = {"course": {"epochs": 1500}}


@dataclass(frozen=True)
class Setting:
    """One point of a study: the option it varies, its value, and the run directory it trains in."""

    option: str
    value: float
    run_dir: Path

    @property
    def label(self) -> str:
        """How tables and legends name it: "learning_rate=0.01"."""
        return f"{self.option}={self.value:g}"


def build_parser() -> argparse.ArgumentParser:
    """The command line: a sweep (learning rates or L2 strengths), the study folder, and every training flag."""
    p = argparse.ArgumentParser(
        prog="python -m kerasreg.study",
        description="Train one model per setting and overlay their cost curves.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep = p.add_mutually_exclusive_group(required=True)
    sweep.add_argument("--learning-rates", type=float, nargs="+", metavar="LR", help="learning rates to compare")
    sweep.add_argument("--l2-strengths", type=float, nargs="+", metavar="L2", help="L2 strengths to compare")
    p.add_argument("--out", type=Path, required=True, help="the study folder; rerun into it to continue")
    add_config_flags(
        p,
        defaults={
            "l2": (STUDY_L2, "a study compares validation curves, which auto's refit has not"),
            "epochs": (100, "1500 with --preset course, as the notebook compares learning rates"),
        },
    )
    return p


def plan(out: Path, option: str, values: list[float]) -> list[Setting]:
    """One setting per distinct value, each with its run directory inside `out`."""
    if len(set(values)) != len(values):
        raise KerasregError(f"Received {option} values {values}. Expected each value once.")
    return [Setting(option, v, out / f"{option}-{v:g}") for v in values]


def run_study(base, settings: list[Setting], out: Path) -> list[dict]:
    """Train every setting not finished yet (resuming an unfinished one), then write the curves and the table."""
    import dataclasses

    from kerasreg.pipeline import train_and_evaluate

    out.mkdir(parents=True, exist_ok=True)
    for setting in settings:
        if (setting.run_dir / files.METRICS).exists():
            print(f"{setting.label}: finished earlier, kept ({setting.run_dir})", flush=True)
            continue
        print(f"{setting.label}: training in {setting.run_dir}", flush=True)
        train_and_evaluate(dataclasses.replace(base, **{setting.option: setting.value}), setting.run_dir)
    rows = [summarise(setting) for setting in settings]
    # By validation loss; with no validation split (--val-split 0, the course preset) by the final training loss,
    # and said so: the table marks one best either way.
    key = "best_val_loss" if any(row["best_val_loss"] is not None for row in rows) else "final_train_loss"
    best = min(rows, key=lambda row: row[key] if row[key] is not None else float("inf"))
    for row in rows:
        row["best"] = row is best and row[key] is not None
        row["best_by"] = BEST_BY[key]
    plot_curves(settings, out / CURVES, base.print_cost_every)
    write_tables(rows, out)
    return rows


BEST_BY = {"best_val_loss": "validation loss", "final_train_loss": "training loss (no validation split)"}


def summarise(setting: Setting) -> dict:
    """A setting's final accuracies and its lowest validation loss, from its run directory."""
    history = files.read_history(setting.run_dir / files.HISTORY)
    metrics = files.read_json(setting.run_dir / files.METRICS)
    val_losses = [row["val_loss"] for row in history if row.get("val_loss") is not None]
    last = history[-1] if history else {}
    return {
        "setting": setting.label,
        "epochs": len(history),
        "train_accuracy": last.get("accuracy"),
        "val_accuracy": last.get("val_accuracy"),
        "test_accuracy": metrics["accuracy"],
        "best_val_loss": min(val_losses) if val_losses else None,
        "final_train_loss": last.get("loss"),
        "run_dir": str(setting.run_dir),
    }


def plot_curves(settings: list[Setting], path: Path, every: int = 0) -> None:
    """Training (solid) and validation (dashed) loss per epoch of every setting, one colour each, log loss.

    With `every` > 0 (--print-cost-every, the course's preset) as the notebook draws it: the cost
    against iterations on a linear scale, a marker every `every` iterations, and beneath, in a
    light tint, every iteration's cost (what the notebook's samples hide: a large step's swings).
    """
    series, samples = [], []
    for i, setting in enumerate(settings):
        history = files.read_history(setting.run_dir / files.HISTORY)
        epochs = [row["epoch"] + 1 for row in history]
        color = COLORS[i % len(COLORS)]
        losses = [row["loss"] for row in history]
        if every:
            tint = tuple(int(c + (255 - c) * 0.6) for c in color)
            series.append(Series(f"{setting.label}, every iteration", epochs, losses, tint, markers=False))
            kept = [(x, y) for x, y in zip(epochs, losses, strict=True) if x % every == 0]
            samples.append(Series(f"{setting.label}, every {every}", [x for x, _ in kept], [y for _, y in kept], color))
            continue
        series.append(Series(f"{setting.label} train", epochs, losses, color, markers=False))
        if any(row.get("val_loss") is not None for row in history):
            validation = [row.get("val_loss") for row in history]
            series.append(Series(f"{setting.label} val", epochs, validation, color, dashed=True, markers=False))
    if every:
        title = "cost per iteration (the training objective)"
        chart = line_chart(series + samples, title=title, x_label="iteration", size=(800, 460))
    else:
        title = "loss per epoch (training: the objective; validation: cross-entropy)"
        chart = line_chart(series, title=title, x_label="epoch", log_y=True, size=(800, 460))
    chart.save(path)


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def write_tables(rows: list[dict], out: Path) -> None:
    """results.md and results.csv: one row per setting, the best marked (by validation loss; without a validation
    split, by the final training loss), and by what."""
    columns = [
        "setting", "epochs", "train_accuracy", "val_accuracy", "test_accuracy", "final_train_loss", "best_val_loss",
        "best",
    ]  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [_fmt(row[c]) if c != "best" else ("best" if row["best"] else "") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    if rows:
        lines.append(f"\nbest: {rows[0]['best_by']}")
    files.write_atomic(out / TABLE_MD, ("\n".join(lines) + "\n").encode())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*columns, "run_dir"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    files.write_atomic(out / TABLE_CSV, buffer.getvalue().encode())


def main(argv: list[str] | None = None) -> int:
    """Parse, train each setting, write the picture and the table."""
    parser = build_parser()
    args = parser.parse_args(argv)
    flag = "learning_rates" if args.learning_rates else "l2_strengths"
    option = SWEEPS[flag]
    try:
        base = config_from_args(args, DEFAULTS, PRESET_DEFAULTS)
        if base.l2 == "auto":
            raise KerasregError(
                "Received l2=auto: a study compares validation curves, and auto refits on the validation data. "
                "Give l2 a number, or sweep it with --l2-strengths."
            )
        settings = plan(args.out, option, getattr(args, flag))
        for setting in settings:  # every value checked before any training starts
            config_from_args(args, DEFAULTS, PRESET_DEFAULTS, **{option: setting.value})
    except KerasregError as e:
        parser.error(str(e))

    def study() -> None:
        rows = run_study(base, settings, args.out)
        print((args.out / TABLE_MD).read_text(), end="")
        best = next((row for row in rows if row["best"]), None)
        if best is not None:
            print(f"best by {best['best_by']}: {best['setting']}; picture: {args.out / CURVES}")

    return run_cli(parser.prog, study, interrupted_hint=f"rerun the same command to continue the study in {args.out}")


if __name__ == "__main__":
    from kerasreg.cli import exit_now

    exit_now(main())

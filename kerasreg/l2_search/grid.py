"""The L2 strengths `--l2 auto` walks (the grid and its bounds are config.py's, with every default), and
scikit-learn's C for each."""

from __future__ import annotations

import math

from kerasreg.config import L2_GRID, STRONG_BOUND, WEAK_BOUND

__all__ = ["L2_GRID", "STRONG_BOUND", "WEAK_BOUND"]  # re-exported: the search's own names for them
RISES_TO_STOP = 2  # the path stops once the validation loss has risen at this many points in a row


def c_of(l2: float, n: int) -> float:
    """scikit-learn's C for kerasreg's l2 on n examples (C = 1 / (2 l2 n)); inf for l2 = 0."""
    return float("inf") if l2 == 0 else 1.0 / (2.0 * l2 * n)


def half_decade(index: int) -> float:
    """10 ** (index / 2) to three significant figures, as the grid holds it (index 2 is 10, -10 is 1e-5)."""
    return float(f"{10 ** (index / 2):.3g}")


def _index(l2: float) -> int:
    return round(2 * math.log10(l2))


def trailing_rises(losses: list[float]) -> int:
    """How many points in a row at the end of `losses` were higher than the point before."""
    rises = 0
    for before, after in zip(losses, losses[1:], strict=False):
        rises = rises + 1 if after > before else 0
    return rises


def next_strength(
    points: list[tuple[float, float | None]], grid: tuple[float, ...] = L2_GRID
) -> tuple[float, bool] | None:
    """Where the path goes after `points` (its (l2, val_loss) so far, in order; None where skipped).

    Returns (l2, whether to train it), or None when the path is done. First the
    grid, strong to weak; once the loss has risen at RISES_TO_STOP points in a row
    the rest is skipped. Then, where the lowest loss sits at an end of the grid,
    on past that end in half-decades (weaker below the grid, stronger above it)
    until the loss has risen RISES_TO_STOP times in a row on that walk, or the
    next step would pass WEAK_BOUND or STRONG_BOUND.
    """
    order = sorted(grid, reverse=True)
    strongest, weakest = order[0], order[-1]
    downward = [loss for l2, loss in points if loss is not None and l2 <= strongest]  # in the order walked
    if len(points) < len(order):
        return order[len(points)], trailing_rises(downward) < RISES_TO_STOP
    trained = [(l2, loss) for l2, loss in points if loss is not None]
    best = min(trained, key=lambda p: p[1])[0]  # the first of equals, as the search keeps it
    upward = [loss for l2, loss in points if loss is not None and l2 >= strongest]  # the grid's first, then above it
    if best <= weakest and trailing_rises(downward) < RISES_TO_STOP:
        step = half_decade(_index(min(l2 for l2, _ in trained)) - 1)
        return (step, True) if step >= WEAK_BOUND else None
    if best >= strongest and trailing_rises(upward) < RISES_TO_STOP:
        step = half_decade(_index(max(l2 for l2, _ in trained)) + 1)
        return (step, True) if step <= STRONG_BOUND else None
    return None

"""Where `--l2 auto`'s path goes: the grid, the stop after two rises, and the walk past either end to a bound."""

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kerasreg.l2_search.grid import (
    L2_GRID,
    RISES_TO_STOP,
    STRONG_BOUND,
    WEAK_BOUND,
    half_decade,
    next_strength,
    trailing_rises,
)


def walk(loss_of) -> list[tuple[float, float | None]]:
    """The path `next_strength` takes when training at l2 gives the validation loss `loss_of(l2)`."""
    points: list[tuple[float, float | None]] = []
    while (step := next_strength(points)) is not None:
        l2, train_it = step
        points.append((l2, loss_of(l2) if train_it else None))
        assert len(points) < 60, "the path never ended"
    return points


def bowl(minimum: float):
    """A validation loss with one minimum at l2 = `minimum`, as along a regularisation path."""
    return lambda l2: 0.1 + (math.log10(l2) - math.log10(minimum)) ** 2


def chosen(points) -> float:
    trained = [(l2, loss) for l2, loss in points if loss is not None]
    return min(trained, key=lambda p: p[1])[0]


def added(points) -> list[float]:
    return [l2 for l2, _ in points[len(L2_GRID) :]]


def test_a_minimum_inside_the_grid_adds_nothing_and_skips_the_rest_after_two_rises():
    points = walk(bowl(1e-3))
    assert [l2 for l2, _ in points] == list(L2_GRID) and added(points) == []
    trained = [l2 for l2, loss in points if loss is not None]
    assert trained == list(L2_GRID[: L2_GRID.index(1e-3) + 1 + RISES_TO_STOP])  # two past the minimum, then skipped
    assert chosen(points) == 1e-3


def test_a_minimum_past_the_weak_end_is_walked_to_and_two_rises_beyond_it():
    points = walk(bowl(3.16e-7))
    assert added(points) == [3.16e-6, 1e-6, 3.16e-7, 1e-7, 3.16e-8]
    assert chosen(points) == 3.16e-7


def test_a_minimum_past_the_strong_end_is_walked_to_upward_after_the_grid():
    points = walk(bowl(100.0))
    assert [l2 for l2, loss in points[: len(L2_GRID)] if loss is not None] == [10.0, 3.16, 1.0]
    assert added(points) == [31.6, 100.0, 316.0, 1000.0]
    assert chosen(points) == 100.0


@pytest.mark.parametrize(("minimum", "bound"), [(1e-11, WEAK_BOUND), (1e5, STRONG_BOUND)])
def test_a_walk_stops_at_its_bound_even_while_the_loss_still_falls(minimum, bound):
    points = walk(bowl(minimum))
    assert added(points)[-1] == bound and chosen(points) == bound


def test_a_flat_end_is_walked_until_the_loss_turns_up():
    # digits: falling to 3e-4, then almost flat (still falling a little) to the grid's end, then overfitting.
    def loss_of(l2):
        if l2 > 3e-4:
            return 0.2 + math.log10(l2 / 3e-4)
        return 0.2 + 1e-3 * math.log10(l2) if l2 >= 3e-6 else 0.25 - 0.01 * math.log10(l2)

    points = walk(loss_of)
    assert added(points) == [3.16e-6, 1e-6, 3.16e-7] and chosen(points) == 3.16e-6


def test_half_decades_are_the_grids_own_numbers():
    assert [half_decade(i) for i in range(2, -11, -1)] == list(L2_GRID)
    assert (half_decade(-16), half_decade(6)) == (WEAK_BOUND, STRONG_BOUND)


def test_trailing_rises_counts_only_the_last_run():
    assert [trailing_rises(x) for x in ([], [1.0], [1, 2, 3], [1, 2, 1, 2], [3, 2, 1])] == [0, 0, 2, 1, 0]


# Every strength a walk can reach: the half-decades from the weak bound to the strong one.
REACHABLE = [half_decade(i) for i in range(round(2 * math.log10(WEAK_BOUND)), round(2 * math.log10(STRONG_BOUND)) + 1)]


@example(log_minimum=-1.2500708827352023)  # a quarter decade from 0.1 and from 0.0316 (not 10^-1.5): 0.1 is nearer
@given(st.floats(min_value=-12.0, max_value=5.0))
def test_on_a_single_minimum_the_choice_is_the_nearest_half_decade_within_the_bounds(log_minimum):
    points = walk(bowl(10**log_minimum))
    # The grid holds half-decades rounded to three figures (0.0316, not 10^-1.5): the nearest is measured
    # against the strengths themselves, so a minimum a quarter decade from two of them has an answer.
    nearest = min(REACHABLE, key=lambda l2: abs(math.log10(l2) - log_minimum))
    assert chosen(points) == nearest
    visited = sorted(l2 for l2, _ in points)
    assert visited[0] <= L2_GRID[-1] and visited[-1] >= L2_GRID[0]  # the grid is always there, whole
    at_bound = chosen(points) in (WEAK_BOUND, STRONG_BOUND)
    if not at_bound:  # the minimum is bracketed: a trained point on each side
        trained = sorted(l2 for l2, loss in points if loss is not None)
        assert trained[0] < chosen(points) < trained[-1]

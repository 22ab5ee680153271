"""The run directory's pictures, drawn with Pillow: ticks, lines, gaps, grids of images, the mistakes chosen."""

import numpy as np
import pytest
from PIL import Image

from kerasreg.reports.drawing import COLORS, Series, heat_map, image_grid, line_chart, log_ticks, nice_ticks
from kerasreg.reports.figures import plot_mistakes, worst_mistakes


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (0.93, 0.97, [0.93, 0.94, 0.95, 0.96, 0.97]),
        (-3.0, 47.0, [0.0, 10.0, 20.0, 30.0, 40.0]),
        (1.0, 1.0, [1.0]),
    ],
)
def test_nice_ticks_are_round_and_inside_the_range(low, high, ticks):
    assert nice_ticks(low, high) == pytest.approx(ticks)


def test_log_ticks_mark_1_2_5_per_decade_or_decades_alone_over_a_wide_range():
    assert log_ticks(-2.0, 0.0) == pytest.approx([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0])
    assert log_ticks(-8.0, 3.0) == pytest.approx([10.0**d for d in range(-8, 4)])


def _pixels_of(image: Image.Image, color) -> int:
    return int(np.all(np.asarray(image) == np.array(color, np.uint8), axis=-1).sum())


def test_a_line_chart_draws_each_series_in_its_colour_dashed_ones_with_gaps():
    x = list(range(1, 21))
    solid = line_chart([Series("a", x, [1.0 / i for i in x], COLORS[0], markers=False)], title="t", x_label="x")
    dashed = line_chart(
        [Series("a", x, [1.0 / i for i in x], COLORS[0], dashed=True, markers=False)], title="t", x_label="x"
    )
    assert _pixels_of(solid, COLORS[0]) > 1.3 * _pixels_of(dashed, COLORS[0]) > 0


def test_a_line_chart_skips_missing_and_non_positive_points_on_a_log_axis_without_failing():
    def chart(x, y):
        return line_chart([Series("loss", x, y, COLORS[1])], title="t", x_label="epoch", log_y=True)

    image = chart([1, 2, 3, 4], [0.5, None, 0.0, 0.1])
    # 0 has no place on a log axis: it is passed over exactly as a missing point is.
    assert np.array_equal(np.asarray(image), np.asarray(chart([1, 2, 3, 4], [0.5, None, None, 0.1])))
    # The two points there are drawn, and the gap is not bridged: less ink than the line joining them.
    assert 0 < _pixels_of(image, COLORS[1]) < _pixels_of(chart([1, 4], [0.5, 0.1]), COLORS[1])
    empty = line_chart([Series("loss", [1], [None], COLORS[1])], title="t", x_label="epoch")
    assert _pixels_of(empty, COLORS[1]) <= 60  # only the legend's swatch


def test_an_image_grid_shows_each_image_unsmoothed_at_its_place():
    checker = (np.indices((4, 4)).sum(axis=0) % 2 * 255).astype(np.uint8)
    grid = np.asarray(image_grid([checker, 255 - checker], ["a", "b"], title="two", tile=40))
    tiles = grid[34 + 16 + 4 :][:40]  # below the title and one caption line
    first, second = tiles[:, 18:58, 0], tiles[:, 18 + 64 : 58 + 64, 0]  # the two cells, 64 pixels apart
    assert set(np.unique(first).tolist()) == {0, 255}  # scaled 10x with no smoothing: no grey at the edges
    assert np.array_equal(first, np.kron(checker, np.ones((10, 10), np.uint8)))
    assert np.array_equal(first, 255 - second)


def test_a_heat_map_shades_the_largest_count_darkest():
    image = np.asarray(heat_map(np.array([[9, 1], [0, 5]]), ["x", "y"], title="m", x_label="p", y_label="t"))
    cell = 56
    centre = lambda i, j: image[50 + i * cell + 3, 90 + j * cell + 3].astype(int).sum()  # noqa: E731
    assert centre(0, 0) < centre(1, 1) < centre(0, 1) < centre(1, 0) == 3 * 255


def test_the_mistakes_are_the_most_confident_wrong_answers_first(tmp_path):
    labels = np.array([0, 1, 1, 0, 1])
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.99, 0.01]])
    assert worst_mistakes(labels, probabilities).tolist() == [4, 1, 3]
    images = np.zeros((5, 8, 8, 1), np.uint8)
    plot_mistakes(images, labels, probabilities, ("cat", "dog"), tmp_path / "m.png")
    three = image_grid([images[0, ..., 0]] * 3, ["true\nsaid"] * 3, title="")
    assert Image.open(tmp_path / "m.png").size == three.size

"""Charts and image grids drawn with Pillow: the run directory's pictures, in a few milliseconds each.

Why not matplotlib: importing it takes 0.42 s on this machine, and a run may spend
1 s in all outside TensorFlow's import and the training (issue 18); drawing its
five pictures took 1.1 s more. These are plain line charts (linear or log x, solid
or dashed series, markers, a legend) and grids of small images with captions, which
Pillow draws directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# A palette that prints and reads in grey alike (matplotlib's "tab10").
COLORS = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]  # fmt: skip
INK, GRID, BACKGROUND = (40, 40, 40), (225, 225, 225), (255, 255, 255)


def font(size: int = 13) -> ImageFont.ImageFont:
    """Pillow's own scalable font: no font file to find on the machine."""
    return ImageFont.load_default(size=size)


@dataclass
class Series:
    """One line of a chart; None among `y` leaves a gap."""

    label: str
    x: list[float]
    y: list[float | None]
    color: tuple[int, int, int]
    dashed: bool = False
    markers: bool = True


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) spanning low..high, about `count` of them."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if (high - low) / (m * power) <= count)
    first = math.ceil(low / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((high - first) / step + 1e-9) + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks for a log axis spanning 10**low..10**high: 1, 2 and 5 times each decade, or decades alone when many."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    decades = range(math.floor(low), math.ceil(high) + 1)
    steps = (1,) if len(decades) > 3 else (1, 2, 5)
    return [m * 10.0**d for d in decades for m in steps if low - 1e-9 <= math.log10(m * 10.0**d) <= high + 1e-9]


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e4 and (value == 0 or abs(value) >= 1e-3) else f"{value:.0e}"


def line_chart(
    series: list[Series],
    *,
    title: str,
    x_label: str,
    log_x: bool = False,
    log_y: bool = False,
    vline: tuple[float, str] | None = None,
    size: tuple[int, int] = (520, 400),
) -> Image.Image:
    """A line chart of `series`, with axes, round ticks, a light grid and a legend below the plot."""
    width, height = size
    legend = [(s.label, s.color, s.dashed) for s in series] + ([(vline[1], INK, True)] if vline else [])
    rows = -(-len(legend) // 2)
    image = Image.new("RGB", (width, height + 18 * rows + 6), BACKGROUND)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = 62, 34, width - 18, height - 46

    def drawable(x: float, y: float | None) -> bool:
        return (y is not None and math.isfinite(y) and (not log_y or y > 0)) and (not log_x or x > 0)

    points = [(x, y) for s in series for x, y in zip(s.x, s.y, strict=True) if drawable(x, y)]
    if not points:
        draw.text((left, top), "nothing to draw", fill=INK, font=font())
        return image
    xs = [math.log10(x) for x, _ in points] if log_x else [x for x, _ in points]
    ys = [math.log10(y) for _, y in points] if log_y else [y for _, y in points]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(ys), max(ys)
    pad = (y_high - y_low) * 0.05 or abs(y_high) * 0.05 or 1.0
    y_low, y_high = y_low - pad, y_high + pad
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1

    def at(x: float, y: float) -> tuple[float, float]:
        fx = ((math.log10(x) if log_x else x) - x_low) / (x_high - x_low)
        fy = ((math.log10(y) if log_y else y) - y_low) / (y_high - y_low)
        return left + fx * (right - left), bottom - fy * (bottom - top)

    small = font(11)
    for tick in log_ticks(y_low, y_high) if log_y else nice_ticks(y_low, y_high):
        _, y = at(10**x_low if log_x else x_low, tick)
        draw.line([(left, y), (right, y)], fill=GRID)
        draw.text((left - 6, y), _label(tick), fill=INK, font=small, anchor="rm")
    x_ticks = range(math.ceil(x_low), math.floor(x_high) + 1) if log_x else nice_ticks(x_low, x_high, 6)
    for tick in x_ticks:
        value = 10.0**tick if log_x else tick
        x, _ = at(value, 10**y_low if log_y else y_low)
        draw.line([(x, top), (x, bottom)], fill=GRID)
        draw.text((x, bottom + 6), _label(value), fill=INK, font=small, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=INK)
    draw.text(((left + right) / 2, 8), title, fill=INK, font=font(14), anchor="mt")
    draw.text(((left + right) / 2, bottom + 24), x_label, fill=INK, font=small, anchor="mt")
    if vline is not None:
        x, _ = at(vline[0], 10**y_low if log_y else y_low)
        _dashed(draw, [(x, top), (x, bottom)], INK)
    for s in series:
        _draw_series(draw, s, at, drawable)
    _draw_legend(draw, legend, width, height)
    return image


def _draw_series(draw: ImageDraw.ImageDraw, s: Series, at, drawable) -> None:
    """One series: its line, broken where a value is missing, and its markers."""
    run: list[tuple[float, float]] = []
    for x, y in zip(s.x, s.y, strict=True):
        if not drawable(x, y):
            _polyline(draw, run, s.color, s.dashed)
            run = []
            continue
        run.append(at(x, y))
    _polyline(draw, run, s.color, s.dashed)
    if s.markers:
        for x, y in zip(s.x, s.y, strict=True):
            if drawable(x, y):
                cx, cy = at(x, y)
                draw.ellipse([cx - 2.5, cy - 2.5, cx + 2.5, cy + 2.5], fill=s.color)


def _draw_legend(draw: ImageDraw.ImageDraw, legend: list[tuple[str, tuple, bool]], width: int, height: int) -> None:
    """The legend below the plot, two entries a row."""
    for i, (label, color, dashed) in enumerate(legend):
        x = 12 + (i % 2) * (width // 2)
        y = height + 18 * (i // 2) + 4
        (_dashed if dashed else lambda d, p, c: d.line(p, fill=c, width=2))(draw, [(x, y), (x + 22, y)], color)
        draw.text((x + 28, y), label, fill=INK, font=font(11), anchor="lm")


def _polyline(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], color, dashed: bool) -> None:
    if len(points) > 1:
        if dashed:
            _dashed(draw, points, color)
        else:
            draw.line(points, fill=color, width=2, joint="curve")


def _dashed(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], color, dash: float = 6.0) -> None:
    """A dashed polyline: Pillow draws solid lines only."""
    on, left = True, dash
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        length = math.hypot(x1 - x0, y1 - y0)
        done = 0.0
        while done < length:
            step = min(left, length - done)
            a, b = done / length, (done + step) / length
            if on:
                draw.line(
                    [(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                    fill=color,
                    width=2,
                )
            done += step
            left -= step
            if left <= 0:
                on, left = not on, dash


def side_by_side(panels: list[Image.Image], title: str | None = None) -> Image.Image:
    """Panels in a row, under an optional title."""
    head = 28 if title else 0
    width = sum(p.width for p in panels)
    image = Image.new("RGB", (width, head + max(p.height for p in panels)), BACKGROUND)
    x = 0
    for panel in panels:
        image.paste(panel, (x, head))
        x += panel.width
    if title:
        ImageDraw.Draw(image).text((width / 2, 8), title, fill=INK, font=font(14), anchor="mt")
    return image


def image_grid(
    tiles: list[np.ndarray], captions: list[str], *, title: str, columns: int = 5, tile: int = 112
) -> Image.Image:
    """Small images (uint8 [H,W] or [H,W,3]) scaled up without smoothing, each over its caption lines."""
    columns = max(1, min(columns, len(tiles)))
    rows = max(1, -(-len(tiles) // columns))
    lines = max((c.count("\n") + 1 for c in captions), default=1)
    cell_w, cell_h = tile + 24, tile + 10 + 16 * lines
    image = Image.new("RGB", (columns * cell_w + 12, 34 + rows * cell_h), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((image.width / 2, 8), title, fill=INK, font=font(14), anchor="mt")
    small = font(12)
    for i, (pixels, caption) in enumerate(zip(tiles, captions, strict=True)):
        x = 6 + (i % columns) * cell_w + 12
        y = 34 + (i // columns) * cell_h
        draw.multiline_text((x + tile / 2, y), caption, fill=INK, font=small, anchor="ma", align="center")
        picture = Image.fromarray(pixels).convert("RGB").resize((tile, tile), Image.Resampling.NEAREST)
        image.paste(picture, (x, y + 16 * lines + 4))
    if not tiles:
        draw.text((image.width / 2, 60), "nothing to show", fill=INK, font=small, anchor="mt")
    return image


def heat_map(matrix: np.ndarray, labels: list[str], *, title: str, x_label: str, y_label: str) -> Image.Image:
    """A square matrix of counts as shaded cells with the count in each, labelled rows and columns."""
    k = len(labels)
    cell = max(28, min(56, 560 // max(k, 1)))
    margin_left, margin_top = 90, 50
    size = (margin_left + k * cell + 12, margin_top + k * cell + 70)
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((size[0] / 2, 8), title, fill=INK, font=font(14), anchor="mt")
    small = font(11)
    largest = max(1, int(np.max(matrix))) if matrix.size else 1
    for i in range(k):
        for j in range(k):
            share = float(matrix[i, j]) / largest
            shade = tuple(int(255 - share * (255 - c)) for c in (8, 48, 107))  # white to a deep blue
            x, y = margin_left + j * cell, margin_top + i * cell
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=shade, outline=GRID)
            draw.text(
                (x + cell / 2, y + cell / 2),
                str(int(matrix[i, j])),
                font=small,
                anchor="mm",
                fill=BACKGROUND if share > 0.5 else INK,
            )
        draw.text(
            (margin_left - 6, margin_top + i * cell + cell / 2), labels[i][:12], fill=INK, font=small, anchor="rm"
        )
        draw.text(
            (margin_left + i * cell + cell / 2, margin_top + k * cell + 6),
            labels[i][:6],
            fill=INK,
            font=small,
            anchor="mt",
        )
    draw.text((margin_left + k * cell / 2, margin_top + k * cell + 30), x_label, fill=INK, font=small, anchor="mt")
    draw.text((8, margin_top - 18), y_label, fill=INK, font=small)
    return image


def reliability_diagram(
    edges: np.ndarray, accuracy: np.ndarray, counts: np.ndarray, *, title: str, size: tuple[int, int] = (520, 460)
) -> Image.Image:
    """Bars of accuracy over confidence bins on the unit square, the diagonal of perfect calibration, each bin's
    image count above its bar (empty bins drawn as nothing)."""
    width, height = size
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = 62, 34, width - 18, height - 70

    def at(x: float, y: float) -> tuple[float, float]:
        return left + x * (right - left), bottom - y * (bottom - top)

    small = font(11)
    for tick in nice_ticks(0.0, 1.0, 5):
        _, y = at(0.0, tick)
        draw.line([(left, y), (right, y)], fill=GRID)
        draw.text((left - 6, y), _label(tick), fill=INK, font=small, anchor="rm")
        x, _ = at(tick, 0.0)
        draw.text((x, bottom + 6), _label(tick), fill=INK, font=small, anchor="mt")
    for low, high, share, count in zip(edges[:-1], edges[1:], accuracy, counts, strict=True):
        if count == 0:
            continue
        x0, y0 = at(low, share)
        x1, y1 = at(high, 0.0)
        draw.rectangle([x0 + 1, y0, x1 - 1, y1], fill=COLORS[0], outline=INK)
        if share > 0.9:  # no room above: inside the bar's top
            draw.text(((x0 + x1) / 2, y0 + 3), str(int(count)), fill=BACKGROUND, font=font(10), anchor="mt")
        else:
            draw.text(((x0 + x1) / 2, y0 - 3), str(int(count)), fill=INK, font=font(10), anchor="mb")
    _dashed(draw, [at(0.0, 0.0), at(1.0, 1.0)], COLORS[3])
    draw.rectangle([left, top, right, bottom], outline=INK)
    draw.text(((left + right) / 2, 8), title, fill=INK, font=font(14), anchor="mt")
    draw.text(
        ((left + right) / 2, bottom + 24), "predicted class's probability (bin)", fill=INK, font=small, anchor="mt"
    )
    draw.text((8, top - 18), "share right", fill=INK, font=small)
    draw.text(
        (left, bottom + 44),
        "bars: share answered right per bin (count above); dashed: perfectly calibrated",
        fill=INK,
        font=small,
    )
    return image

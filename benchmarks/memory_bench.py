"""Peak memory of a run against its pixels: `kerasreg.train(images=..., labels=...)` on 64x64x3 images.

    python benchmarks/memory_bench.py [--sizes 10000 30000] [--no-readme]

Each size trains in a process of its own (10 classes, 2 epochs, --l2 0.01), its peak
RSS its own high-water mark (VmHWM, benchmarks/measure.py); the fixed footprint is the same call on 500
images (TensorFlow, the model, the traced epoch). What a run holds for its data is
the peak less that footprint, set beside the uint8 pixels (the issue's target: at
most 1.5 times them) and the float32 features a run held before it kept bytes.
The pixels are random: memory does not depend on what they show. Part of
`make bench-full`; writes the README's memory table (between the bench-memory markers).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import PYTHON, median, run_measured, write_readme_section  # noqa: E402

SHAPE = (64, 64, 3)
FIXED_IMAGES = 500
_RUN = """
import json, sys, tempfile
import numpy as np
import kerasreg
n = {n}
rng = np.random.default_rng(0)
images = rng.integers(0, 256, (n, *{shape}), dtype=np.uint8)
labels = rng.integers(0, 10, n)
with tempfile.TemporaryDirectory() as out:
    run = kerasreg.train(out + "/run", images=images, labels=labels, epochs=2, l2=0.01)
print(json.dumps({{"accuracy": run.metrics["accuracy"]}}))
"""


def peak_mib(n: int, rounds: int) -> float:
    """The median peak RSS (MiB) of a process training on `n` images."""
    return median(run_measured([PYTHON, "-c", _RUN.format(n=n, shape=SHAPE)])[2] for _ in range(rounds))


def run(sizes: list[int], rounds: int) -> dict:
    """The fixed footprint, then each size's peak and what its data costs."""
    fixed = peak_mib(FIXED_IMAGES, rounds)
    rows = []
    for n in sizes:
        pixels = n * int(np.prod(SHAPE)) / 2**20
        peak = peak_mib(n, rounds)
        rows.append(
            {
                "images": n,
                "uint8_mib": pixels,
                "float32_mib": 4 * pixels,
                "peak_rss_mib": peak,
                "data_mib": peak - fixed,
                "data_per_pixel_byte": (peak - fixed) / pixels,
            }
        )
        print(f"{n:,} images: peak {peak:,.0f} MiB, {rows[-1]['data_per_pixel_byte']:.2f} x the pixels", flush=True)
    return {"fixed_mib": fixed, "rows": rows, "rounds": rounds}


def markdown(results: dict) -> str:
    """The README's memory table."""
    lines = [
        f"Peak memory of `kerasreg.train(images=..., labels=...)` on 64x64x3 images (10 classes, 2 epochs; median of "
        f"{results['rounds']}), against the fixed footprint of the same call on {FIXED_IMAGES} images "
        f"({results['fixed_mib']:,.0f} MiB: TensorFlow, the model, the traced epoch):",
        "",
        "| images | uint8 pixels | float32 features | peak RSS | peak less the fixed footprint | per byte of pixels |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['images']:,} | {row['uint8_mib']:,.0f} MiB | {row['float32_mib']:,.0f} MiB | "
            f"{row['peak_rss_mib']:,.0f} MiB | {row['data_mib']:,.0f} MiB | {row['data_per_pixel_byte']:.2f} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Measure; write benchmarks/results-memory.json and the README's table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000], help="images per run")
    parser.add_argument("--rounds", type=int, default=1, help="runs per size, their median taken (default: 1)")
    parser.add_argument("--no-readme", action="store_true", help="write the JSON only")
    args = parser.parse_args()
    results = run(args.sizes, args.rounds)
    (Path(__file__).parent / "results-memory.json").write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    if not args.no_readme:
        write_readme_section("<!-- bench-memory:begin -->", "<!-- bench-memory:end -->", markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

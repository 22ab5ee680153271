"""Plain C99 for boards with no runtime at all: c/model.h and c/model.c (c/int8/ with --quantize int8).

    #include "model.h"
    float probabilities[KERASREG_CLASSES];
    int top = kerasreg_predict(pixels, probabilities);   /* pixels: H*W*C values 0..255, row-major H, W, C */

model.c holds the whole model as one affine map (the rescale and standardisation
folded into the weights, `folded_affine`) as `const` arrays, so they stay in flash,
and the softmax (or the sigmoid, as (1-p, p)): no allocation, nothing but math.h.
The int8 variant stores each class's weights as int8 with one float scale per
class, and sums pixel x weight in int32 (exact: at most 255 x 127 x inputs), so it
needs a quarter of the flash and no floating point until the last step.

The export compiles both with the C compiler on the machine ($CC, else cc, gcc or
clang; `-std=c99 -Wall -Wextra -Werror -pedantic`), runs them on the check images
through a small harness, and holds them to the Keras model like the other
artifacts; with no compiler it says so in the card and skips that check.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from export.errors import ExportError
from export.formats import ArtifactFormat, Checked, ExportJob, check_float, check_int8
from shared.contract import C_DIR, C_INT8_DIR

CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2")
VALUES_PER_LINE = 8

HEADER = """\
/* {title}, exported by kerasreg {version} from {dataset}.
 * Classes: {classes}.
 * Test accuracy of the trained model: {accuracy}.
 */
#ifndef KERASREG_MODEL_H
#define KERASREG_MODEL_H

#define KERASREG_HEIGHT {height}
#define KERASREG_WIDTH {width}
#define KERASREG_CHANNELS {channels}
#define KERASREG_CLASSES {classes_count}
#define KERASREG_INPUTS (KERASREG_HEIGHT * KERASREG_WIDTH * KERASREG_CHANNELS)

/* The class names, in the order of the probabilities. */
extern const char *const kerasreg_class_names[KERASREG_CLASSES];

/* pixels: KERASREG_INPUTS values 0..255 in row-major (height, width, channel) order,
 * as an image file decodes. Fills probabilities[KERASREG_CLASSES]; returns the top class. */
int kerasreg_predict(const unsigned char *pixels, float *probabilities);

#endif
"""

FLOAT_BODY = """\
/* {title}: the model as one affine map; weights {weights_bytes} bytes of flash. */
#include <math.h>

#include "model.h"

#define KERASREG_UNITS {units}

const char *const kerasreg_class_names[KERASREG_CLASSES] = {{{names}}};

/* One row of weights per output unit, on raw pixel values 0..255. */
static const float kerasreg_weights[KERASREG_UNITS][KERASREG_INPUTS] = {{
{weights}
}};
static const float kerasreg_bias[KERASREG_UNITS] = {{{bias}}};

int kerasreg_predict(const unsigned char *pixels, float *probabilities) {{
    float logits[KERASREG_UNITS];
    int unit, i;
    for (unit = 0; unit < KERASREG_UNITS; unit++) {{
        const float *w = kerasreg_weights[unit];
        float sum = kerasreg_bias[unit];
        for (i = 0; i < KERASREG_INPUTS; i++) {{
            sum += w[i] * (float)pixels[i];
        }}
        logits[unit] = sum;
    }}
{activation}
}}
"""

INT8_BODY = """\
/* {title}: int8 weights, one scale per output unit; {weights_bytes} bytes of flash. */
#include <math.h>

#include "model.h"

#define KERASREG_UNITS {units}

const char *const kerasreg_class_names[KERASREG_CLASSES] = {{{names}}};

/* One row of weights per output unit: the float weight is scale[unit] * weight. */
static const signed char kerasreg_weights[KERASREG_UNITS][KERASREG_INPUTS] = {{
{weights}
}};
static const float kerasreg_scale[KERASREG_UNITS] = {{{scale}}};
static const float kerasreg_bias[KERASREG_UNITS] = {{{bias}}};

int kerasreg_predict(const unsigned char *pixels, float *probabilities) {{
    float logits[KERASREG_UNITS];
    int unit, i;
    for (unit = 0; unit < KERASREG_UNITS; unit++) {{
        const signed char *w = kerasreg_weights[unit];
        long sum = 0; /* at most 255 * 127 * inputs: exact in 32 bits */
        for (i = 0; i < KERASREG_INPUTS; i++) {{
            sum += (long)w[i] * (long)pixels[i];
        }}
        logits[unit] = kerasreg_scale[unit] * (float)sum + kerasreg_bias[unit];
    }}
{activation}
}}
"""

SOFTMAX = """\
    {
        int top = 0;
        float total = 0.0f;
        for (unit = 1; unit < KERASREG_UNITS; unit++) {
            if (logits[unit] > logits[top]) top = unit;
        }
        for (unit = 0; unit < KERASREG_UNITS; unit++) {
            probabilities[unit] = expf(logits[unit] - logits[top]);
            total += probabilities[unit];
        }
        for (unit = 0; unit < KERASREG_UNITS; unit++) {
            probabilities[unit] /= total;
        }
        return top;
    }"""

SIGMOID = """\
    {
        float p = 1.0f / (1.0f + expf(-logits[0]));
        probabilities[0] = 1.0f - p;
        probabilities[1] = p;
        return p > 0.5f ? 1 : 0;
    }"""

# Reads a count and that many images' bytes from stdin, writes float32 probabilities to stdout.
HARNESS = """\
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 0, k;
    static unsigned char pixels[KERASREG_INPUTS];
    float probabilities[KERASREG_CLASSES];
    for (k = 0; k < n; k++) {
        if (fread(pixels, 1, KERASREG_INPUTS, stdin) != KERASREG_INPUTS) return 2;
        kerasreg_predict(pixels, probabilities);
        if (fwrite(probabilities, sizeof(float), KERASREG_CLASSES, stdout) != KERASREG_CLASSES) return 3;
    }
    return 0;
}
"""


def c_float(value: float) -> str:
    """A C99 float constant that a compiler reads back as exactly the float32 `value` (finite).

    Nine significant digits round-trip every float32; "0", "-0" or "16777216" are
    integer constants, on which the f suffix is invalid C, so they get ".0".
    """
    text = f"{float(np.float32(value)):.9g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text + "f"


def c_floats(values: np.ndarray, what: str) -> list[str]:
    """`values` as C float constants; ExportError naming the first one that is not finite (C has no constant for it)."""
    values = np.asarray(values, np.float32)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        where = ", ".join(str(int(i)) for i in bad[0])
        raise ExportError(
            f"{what}[{where}] is {values[tuple(bad[0])]} ({len(bad)} values in all are not finite): the model's "
            "weights are not finite, so no C can hold them; retrain the run (it diverged, or model.keras was altered)."
        )
    return [c_float(v) for v in values.reshape(-1)]


def _rows(matrix: np.ndarray, constants: list[str]) -> str:
    """`constants` (row-major, as `matrix` holds them) as a C initialiser, one braced row per line group."""
    lines = []
    width = matrix.shape[1]
    for start in range(0, len(constants), width):
        row = constants[start : start + width]
        chunks = [", ".join(row[i : i + VALUES_PER_LINE]) for i in range(0, len(row), VALUES_PER_LINE)]
        lines.append("    {\n        " + ",\n        ".join(chunks) + "\n    }")
    return ",\n".join(lines)


_PLAIN = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\"), ord("?")}


def c_string(text: str) -> str:
    """`text` as a C99 string literal of its UTF-8 bytes: printable ASCII as it is, every other byte (and `"`,
    the backslash and `?`, against trigraphs such as ??/) as a three-digit octal escape, which cannot run on."""
    return '"' + "".join(chr(b) if b in _PLAIN else f"\\{b:03o}" for b in text.encode("utf-8")) + '"'


def c_comment(text: str) -> str:
    """`text` for the inside of a /* */ comment, in one line: ASCII (JSON's escapes), no comment opened or closed."""
    inner = json.dumps(text, ensure_ascii=True)
    return inner.replace("*/", "*\\/").replace("/*", "/\\*").replace("?", "\\?")


def quantize_rows(kernel_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 weights and one scale per row (the largest |weight| maps to 127)."""
    largest = np.abs(kernel_rows).max(axis=1)
    scale = np.where(largest > 0, largest / 127.0, 1.0).astype(np.float32)
    return np.clip(np.rint(kernel_rows / scale[:, None]), -127, 127).astype(np.int8), scale


def write_c_model(job: ExportJob, folder: Path, int8: bool) -> int:
    """Write model.h and model.c into `folder`; the bytes of flash the weights take."""
    kernel, bias = job.affine  # [inputs, units], [units]
    rows = np.ascontiguousarray(kernel.T)
    height, width, channels = job.run.input_shape
    names = job.run.class_names
    accuracy = job.run.metrics.get("accuracy")
    title = f"kerasreg {'int8' if int8 else 'float'} logistic regression"
    from kerasreg import __version__

    facts = {
        "title": title,
        "version": __version__,
        "dataset": c_comment(job.run.dataset["name"]),
        "classes": ", ".join(c_comment(n) for n in names),
        "accuracy": f"{accuracy:.4f}" if isinstance(accuracy, float) else "unknown",
        "height": height,
        "width": width,
        "channels": channels,
        "classes_count": len(names),
    }
    body = {
        "title": title,
        "units": rows.shape[0],
        "names": ", ".join(c_string(n) for n in names),
        "bias": ", ".join(c_floats(bias, "kerasreg_bias")),
        "activation": SIGMOID if job.binary else SOFTMAX,
    }
    if int8:
        weights, scale = quantize_rows(rows)
        flash = weights.size + 4 * scale.size + 4 * bias.size
        integers = _rows(weights, [str(int(v)) for v in weights.reshape(-1)])
        scales = ", ".join(c_floats(scale, "kerasreg_scale"))
        source = INT8_BODY.format(**body, weights=integers, scale=scales, weights_bytes=flash)
    else:
        flash = 4 * rows.size + 4 * bias.size
        source = FLOAT_BODY.format(**body, weights=_rows(rows, c_floats(rows, "kerasreg_weights")), weights_bytes=flash)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.h").write_text(HEADER.format(**facts))
    (folder / "model.c").write_text(source)
    return flash


def find_compiler() -> str | None:
    """The C compiler to check with: $CC, else cc, gcc or clang on PATH; None when there is none."""
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def run_c_model(compiler: str, folder: Path, images: np.ndarray, classes: int) -> tuple[np.ndarray | None, str]:
    """Compile `folder`'s model with the harness, run it on `images`; the probabilities, or None and why."""
    with tempfile.TemporaryDirectory() as build:
        build = Path(build)
        (build / "harness.c").write_text(HARNESS)
        program = build / "harness"
        sources = [str(folder / "model.c"), str(build / "harness.c")]
        command = [compiler, *CFLAGS, f"-I{folder}", *sources, "-o", str(program), "-lm"]
        compiled = subprocess.run(command, capture_output=True, text=True)
        if compiled.returncode != 0:
            flags = " ".join(CFLAGS)
            return None, f"does not compile with {Path(compiler).name} {flags}: {compiled.stderr.strip()[:300]}"
        ran = subprocess.run([str(program), str(len(images))], input=images.tobytes(), capture_output=True)
        if ran.returncode != 0:
            return None, f"its harness exited {ran.returncode}"
    return np.frombuffer(ran.stdout, np.float32).reshape(len(images), classes), ""


class CFormat(ArtifactFormat):
    """c/model.h and c/model.c; c/int8/ too with --quantize int8."""

    name = "c"
    flag = "c"

    def files(self, job: ExportJob) -> list[str]:
        """The float C folder, and the int8 one when asked for."""
        return [C_DIR]

    def build(self, job: ExportJob) -> None:
        """Write the sources."""
        self._flash = {"float": write_c_model(job, job.stage / C_DIR, int8=False)}
        if job.quantize:
            self._flash["int8"] = write_c_model(job, job.stage / C_INT8_DIR, int8=True)

    def check(self, job: ExportJob) -> list[Checked]:
        """Compiled, run on the check images: float to --atol, int8 to a point of accuracy; no compiler, no check."""
        self._compiler = find_compiler()
        found = []
        variants = [(C_DIR, check_float), (C_INT8_DIR, check_int8)][: 2 if job.quantize else 1]
        for folder, checker in variants:
            label = f"{folder}/model.c"
            if self._compiler is None:
                found.append(Checked(label, {"passed": None, "skipped": "no C compiler on this machine"}))
                continue
            classes = job.reference.shape[1]
            probabilities, why_not = run_c_model(self._compiler, job.stage / folder, job.images, classes)
            found.append(checker(job, label, probabilities, why_not))
        return found

    def describe(self, job: ExportJob) -> dict:
        """Flash sizes and how the sources were checked."""
        compiler = self._compiler
        return {
            "c": {
                "flash_bytes": self._flash,
                "checked_with": f"{Path(compiler).name} {' '.join(CFLAGS)}" if compiler else None,
                "not_checked_because": None if compiler else "no C compiler on this machine ($CC, cc, gcc, clang)",
            }
        }

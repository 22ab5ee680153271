"""Every float32 a model can hold becomes a C99 constant that a compiler reads back bit for bit."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from export.c_model import CFLAGS, c_float, c_floats, find_compiler
from export.errors import ExportError

# The awkward ones: zeros (an integer constant "0f" is invalid C), whole numbers, both ends of the
# subnormals, the smallest normal, the largest finite values, and numbers with no short decimal.
SPECIAL_BITS = [
    0x00000000, 0x80000000,  # +0, -0
    0x3F800000, 0xBF800000, 0x40000000, 0x4B800000, 0x4B7FFFFF, 0x47C35000,  # 1, -1, 2, 2^24, 2^24-1, 100000
    0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF,  # the smallest and largest subnormals
    0x00800000, 0x80800000,  # the smallest normals
    0x7F7FFFFF, 0xFF7FFFFF,  # the largest finite values
    0x3DCCCCCD, 0x3EAAAAAB, 0x3F7FFFFF, 0x3F800001,  # 0.1, 1/3, just below and above 1
]  # fmt: skip


def _values() -> np.ndarray:
    rng = np.random.default_rng(20261202)
    drawn = rng.integers(0, 2**32, size=4000, dtype=np.uint64).astype(np.uint32)
    bits = np.concatenate([np.array(SPECIAL_BITS, np.uint32), drawn])
    values = bits.view(np.float32)
    return values[np.isfinite(values)]


def test_every_constant_is_a_floating_constant_with_the_f_suffix():
    for text in (c_float(0.0), c_float(-0.0), c_float(16777216.0), c_float(-3.0)):
        assert text.endswith("f") and ("." in text or "e" in text), text
    assert (c_float(0.0), c_float(-0.0), c_float(2.0)) == ("0.0f", "-0.0f", "2.0f")


def test_a_compiler_reads_every_constant_back_bit_for_bit(tmp_path):
    compiler = find_compiler()
    if compiler is None:
        pytest.skip("no C compiler on this machine ($CC, cc, gcc, clang)")
    values = _values()
    source = tmp_path / "floats.c"
    source.write_text(
        "#include <stdio.h>\n#include <string.h>\n"
        f"static const float values[{len(values)}] = {{\n    " + ",\n    ".join(c_floats(values, "values")) + "\n};\n"
        "int main(void) {\n    unsigned long i;\n    for (i = 0; i < sizeof values / sizeof values[0]; i++) {\n"
        "        unsigned int bits;\n        memcpy(&bits, &values[i], sizeof bits);\n"
        '        printf("%08x\\n", bits);\n    }\n    return 0;\n}\n'
    )
    program = tmp_path / "floats"
    built = subprocess.run([compiler, *CFLAGS, str(source), "-o", str(program)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    read_back = [
        int(line, 16) for line in subprocess.run([str(program)], capture_output=True, text=True).stdout.split()
    ]
    assert read_back == values.view(np.uint32).tolist()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_weight_that_is_not_finite_fails_naming_it(bad):
    weights = np.ones((2, 3), np.float32)
    weights[1, 2] = bad
    with pytest.raises(ExportError, match=r"^kerasreg_weights\[1, 2\] is (nan|inf|-inf) \(1 values in all"):
        c_floats(weights, "kerasreg_weights")

"""TensorFlow started without its C++ start-up lines, unless the user asked for TensorFlow's logs.

    from kerasreg.tensorflow_start import start_tensorflow
    tf = start_tensorflow()   # what `import tensorflow as tf` gives, with the devices found

TensorFlow 2.21 logs through absl before absl is initialised, and such lines reach
stderr whatever TF_CPP_MIN_LOG_LEVEL says: on a machine without a GPU every command
printed "oneDNN custom operations are on", "Could not find cuda drivers" and
"E0000 ... failed call to cuInit: ... CUDA error", which reads like a failure to a CPU
user. So the import and the first look at the devices run with stderr (the file
descriptor: the lines come from C++) held in a file; what is not one of those known
start-up lines is written back. A user who sets TF_CPP_MIN_LOG_LEVEL to 0 or 1 asks for
TensorFlow's informational lines and gets everything.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

# The start-up lines held back: absl's notice, oneDNN's, the CUDA stubs' and the GPU probe's on a machine
# without one, and the CPU features this build was not compiled for (with its continuation line).
STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\)"
    r"|^[IWE]\d{4} [\d:. ]+\d+ (port|cudart_stub|cuda_platform|cuda_executor|cuda_dnn|cuda_fft|cuda_blas|"
    r"cpu_feature_guard|computation_placer|cuda_diagnostics)\.cc:\d+\]"
    r"|^To enable the following instructions: .* rebuild TensorFlow"
)


def start_tensorflow():
    """`tensorflow`, imported and its devices listed, with the start-up lines held back (see the module docstring)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ logs below errors, once absl takes them
    if "tensorflow" in sys.modules or os.environ["TF_CPP_MIN_LOG_LEVEL"] in ("0", "1"):
        import tensorflow as tf

        return tf
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode("utf-8", "replace").splitlines() if not quiet(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr, flush=True)
    return tf


def quiet(line: str) -> bool:
    """Whether `line` is one of TensorFlow's start-up lines that a user need not see."""
    return bool(STARTUP_NOISE.search(line))

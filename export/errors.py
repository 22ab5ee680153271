"""Export errors: user mistakes (exit 2) and failed validation (exit 1)."""

from kerasreg.errors import CheckFailed, KerasregError


class ExportError(KerasregError):
    """A bad request: unusable run directory, output path or option (exit 2)."""


class ValidationFailed(CheckFailed):
    """The exported artifacts do not match the Keras model (exit 1); carries every failure."""

    def __init__(self, failures: list[str], report: dict, out=None):
        where = f", nothing written to {out}" if out is not None else ""
        super().__init__(f"validation failed{where}:", failures)
        self.failures = failures
        self.report = report

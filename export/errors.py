"""Export errors: user mistakes (exit 2) and failed validation (exit 1)."""

from kerasreg.errors import KerasregError


class ExportError(KerasregError):
    """A bad request: unusable run directory, output path or option (exit 2)."""


class ValidationFailed(Exception):
    """The exported artifacts do not match the Keras model (exit 1); carries every failure."""

    def __init__(self, failures: list[str], report: dict):
        super().__init__("; ".join(failures))
        self.failures = failures
        self.report = report

"""The one error family kerasreg raises for user mistakes.

A `KerasregError` is a `ValueError` whose message is a single line that says what
was received, what was expected and what to do. Command-line entry points turn it
into that line on stderr and exit code 2; anything else is a bug and keeps its
traceback.
"""


class KerasregError(ValueError):
    """A user mistake or unusable input, reported as one line."""


class DatasetError(KerasregError):
    """A dataset that cannot be had: missing, unreachable, corrupt or malformed."""


class RunDirError(KerasregError):
    """A run directory that is missing, incomplete or unreadable."""


# The one way out of a run directory that cannot be resumed, in every message that refuses one.
RESTART = "pass --restart to discard it and start over"


class PeerLost(Exception):
    """A worker of a cluster run did not join, stopped answering or died (exit 3): the run is resumable."""


class CheckFailed(Exception):
    """A command ran but its result did not pass a check (exit 1): a headline and one line per failure."""

    def __init__(self, headline: str, details: list[str]):
        super().__init__(headline)
        self.details = details

"""One error family for serve, each carrying the HTTP status it maps to.

The library and CLI raise these too; the HTTP app turns any of them into
`{"error": message}` with `status_code`, in one handler (gRPC maps the same classes to
its status codes).
"""


def shown(value, limit: int = 60) -> str:
    """A client's value quoted for an error message, cut to `limit` characters: a 400 repeats no megabytes, and a
    gRPC status's message stays within what its header may carry."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def let_go(error: BaseException) -> None:
    """Drop an answered error's traceback, and those of the errors it chains to.

    An error raised in a thread and awaited through asyncio's futures is in a reference
    cycle: its traceback holds the awaiting frames, they hold the future, the future
    holds the error. So the request those frames hold (8 MB, parsed) waited for the
    collector's next full pass: 600 refused gRPC calls took a worker from 92 to 984 MB.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        chained = error.__context__ or error.__cause__
        error.__traceback__ = error.__context__ = error.__cause__ = None
        error = chained


class ServeError(Exception):
    """Base: a request that cannot be served, and the HTTP status that says why."""

    status_code = 500


class BadInput(ServeError, ValueError):
    """The caller sent something malformed: wrong shape, dtype, range, JSON or image."""

    status_code = 400


class ModelNotFound(ServeError):
    """No model by that name is loaded."""

    status_code = 404


class PayloadTooLarge(ServeError):
    """The request body exceeds the server's limit."""

    status_code = 413


class NotReady(ServeError):
    """The model cannot answer now (still loading, or the request timed out)."""

    status_code = 503


class ClientDisconnected(ServeError):
    """The client hung up before its request was read: nobody to answer, one log line."""

    status_code = 400


class ModelLoadError(ServeError, ValueError):
    """The model file (ONNX or LiteRT) is missing, too large, unreadable, or lacks kerasreg's metadata."""

    status_code = 500

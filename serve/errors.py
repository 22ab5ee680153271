"""One error family for serve, each carrying the HTTP status it maps to.

The library and CLI raise these too; the HTTP app turns any of them into
`{"error": message}` with `status_code`, in one handler (gRPC maps the same classes to
its status codes).
"""


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

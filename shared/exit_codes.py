"""How every command ends, kerasreg's and serve's alike: the one list both CLIs and the docs read."""

EXIT_CHECK_FAILED = 1  # `python -m export --check` or `kerasreg.evaluate` found a disagreement
EXIT_USER_ERROR = 2  # a user mistake: one line says what was wrong and what to do
EXIT_PEER_LOST = 3  # a cluster's peer did not join, stopped answering or died; the run is resumable
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as a shell reports it

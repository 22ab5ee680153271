"""How every kerasreg command ends: 0 done, 1 a check failed, 2 a user mistake, 3 a peer was lost (a cluster
run; resumable), 130 interrupted.

`python -m kerasreg.train`, `python -m kerasreg.evaluate` and `python -m export`
run through `run_cli`; `python -m serve` (serve/cli.py) ends with the same codes, from shared/exit_codes.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

from kerasreg.errors import CheckFailed, KerasregError, PeerLost
from shared.escaping import one_line
from shared.exit_codes import EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_PEER_LOST, EXIT_USER_ERROR


def run_cli(prog: str, action: Callable[[], object], interrupted_hint: str = "") -> int:
    """Run `action` and return the exit code; every failure a user can act on is printed, not raised.

    A KerasregError (bad input, unusable data or run directory) and an OSError (a
    path that cannot be read or written) print "prog: error: ..." and return 2; a
    CheckFailed prints its headline and details and returns 1; a PeerLost prints
    its line and returns 3; Ctrl-C returns 130.
    Names in a line (files, folders, classes) are escaped (shared/escaping.py): a file's name cannot forge a
    second line. Anything else is a bug and keeps its traceback. TensorFlow starts first, without its C++ start-up lines
    (kerasreg/tensorflow_start.py).
    """
    from kerasreg.tensorflow_start import start_tensorflow

    try:
        start_tensorflow()
        action()
    except KerasregError as e:
        print(f"{prog}: error: {one_line(str(e), backslashes=False)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except PeerLost as e:
        print(f"{prog}: error: {one_line(str(e), backslashes=False)}", file=sys.stderr)
        return EXIT_PEER_LOST
    except CheckFailed as e:
        print(f"{prog}: {one_line(str(e), backslashes=False)}", file=sys.stderr)
        for line in e.details:
            print(f"  {one_line(str(line), backslashes=False)}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        said = one_line(f"{where}{e.strerror or e}", backslashes=False)
        print(f"{prog}: error: {said}; check the path and its permissions.", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted" + (f"; {interrupted_hint}" if interrupted_hint else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def exit_now(code: int) -> NoReturn:
    """End the process with `code` as soon as the output is flushed, skipping TensorFlow's teardown.

    Its teardown takes about 1 s after a training run (of a 5 s command) and does
    nothing a finished command needs: every file was written, fsynced and renamed
    into place before the command returned. A worker of a multi-worker run that
    succeeded exits normally, since another worker may still be talking to its
    servers; one that failed does not wait for peers that may be gone.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if os.environ.get("TF_CONFIG") and code == 0:
        sys.exit(code)
    os._exit(code)

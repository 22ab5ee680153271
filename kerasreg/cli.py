"""What every kerasreg command does with a user mistake: one line, exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

from kerasreg.errors import KerasregError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def run_cli(prog: str, action: Callable[[], object], interrupted_hint: str = "") -> int:
    """Run `action`; a KerasregError prints "prog: error: ..." and returns 2, Ctrl-C returns 130."""
    try:
        action()
    except KerasregError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted" + (f"; {interrupted_hint}" if interrupted_hint else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0

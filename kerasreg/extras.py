"""Which installed extra each command needs, checked before anything imports it.

`pip install kerasreg` alone installs no dependencies (each part brings its own,
so `serve` never pulls in TensorFlow). A command run without its extra answers
with one line naming the pip command, not an ImportError traceback.

One source of the facts: setup.py's extras, read back from the installed
package's metadata (Requires-Dist), so nothing here lists a package. Standard
library only: it runs before numpy is known to be there. serve/extras.py reads the
same metadata the same way (serve may not import kerasreg, nor kerasreg serve);
tests/test_extras.py holds the two to the same answers.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def declared(extra: str) -> list[str] | None:
    """The distributions the installed kerasreg declares for `extra`, but those under a platform condition.

    None when kerasreg's own metadata is not installed (a source tree run in place): nothing to check against.
    """
    try:
        requirements = importlib.metadata.requires("kerasreg") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    names = []
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        found = _EXTRA.search(marker)
        others = _EXTRA.sub("", marker).replace("and", "").strip()
        if found and found.group(1) == extra and not others:
            names.append(_NAME.match(spec).group(1))
    return names


def missing(extra: str) -> list[str]:
    """The distributions of `extra` that are not installed here."""
    return [name for name in declared(extra) or [] if not _installed(name)]


def require_extra(extra: str, prog: str) -> None:
    """Exit 2 with one line when `extra` is not installed."""
    absent = missing(extra)
    if absent:
        print(
            f"{prog}: error: {', '.join(absent)} not installed; this command needs the {extra} extra: "
            f'pip install "kerasreg[{extra}]"',
            file=sys.stderr,
        )
        sys.exit(2)


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True

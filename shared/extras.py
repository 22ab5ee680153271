"""Which installed extra each command needs, checked before anything imports it; and the installed version.

`pip install kerasreg` alone installs no dependencies (each part brings its own,
so `serve` never pulls in TensorFlow). A command run without its extra answers
with one line naming the pip command, not an ImportError traceback.

One source of the facts: setup.py, read back from the installed package's
metadata (Requires-Dist for the extras, Version for the version), so nothing here
lists a package or a number. Standard library only: it runs before numpy is known
to be there. kerasreg, export and serve all read it (tests/test_extras.py runs each
extra's commands in a venv holding only that extra).
"""

from __future__ import annotations

import importlib.metadata
import re
import sys

DISTRIBUTION = "kerasreg"
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def version() -> str:
    """The installed kerasreg's version (setup.py's), or "unknown" for a source tree that is not installed."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def declared(extra: str) -> list[str] | None:
    """The distributions the installed kerasreg declares for `extra`, but those under a platform condition.

    None when kerasreg's own metadata is not installed (a source tree run in place): nothing to check against.
    """
    try:
        requirements = importlib.metadata.requires(DISTRIBUTION) or []
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


def require_extra(extras: str | tuple[str, ...], prog: str) -> None:
    """Exit 2 with one line unless one of `extras` is wholly installed (the first is the one suggested)."""
    extras = (extras,) if isinstance(extras, str) else extras
    gaps = [missing(extra) for extra in extras]
    if all(gaps):
        also = "".join(f' (or the {extra} extra: pip install "kerasreg[{extra}]")' for extra in extras[1:])
        print(
            f"{prog}: error: {', '.join(gaps[0])} not installed; this command needs the {extras[0]} extra: "
            f'pip install "kerasreg[{extras[0]}]"{also}',
            file=sys.stderr,
        )
        sys.exit(2)


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True

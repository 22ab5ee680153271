"""Which installed extra each serve command needs, checked before anything imports it.

The same contract as kerasreg/extras.py, which serve may not import: one line
naming the pip command instead of an ImportError traceback, and the facts read from
setup.py's extras in the installed package's metadata, listed nowhere here.
Standard library only.
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

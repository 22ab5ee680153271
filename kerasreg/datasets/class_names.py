"""Class names are data: from folder names, HDF5 files, tfds metadata. Checked once, when the dataset is read.

A name travels into config.json, model.json, every artifact's metadata, the page,
serve's answers, logs, file names and the generated C. Whatever can be escaped in
each of those is allowed (quotes, `*/`, a backslash, spaces, letters of any
script); what no escaping makes safe everywhere is refused before training, in one
line: control and format characters (a newline forges a log line; a bidi override
reverses what a page shows), an empty or blank name, a name longer than
MAX_LENGTH, and two classes with one name.
"""

from __future__ import annotations

import unicodedata

from kerasreg.errors import DatasetError

MAX_LENGTH = 100  # characters: a label, not a document (a 20,000-character name broke file names)
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}  # control, format, surrogate, private use, separators


def check_class_names(dataset: str, names: tuple[str, ...]) -> None:
    """Refuse the first name that cannot be carried safely everywhere a class name goes, saying why."""
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        why = _problem(name)
        if why is None and name in seen:
            why = f"is also the name of class {seen[name]}"
        if why is not None:
            shown = repr(name) if len(name) <= 60 else repr(name[:60]) + "..."
            raise DatasetError(
                f"{dataset}: class {index}'s name {shown} {why}; rename it (a class name is a label of at most "
                f"{MAX_LENGTH} printable characters)."
            )
        seen[name] = index


def _problem(name) -> str | None:
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not text"
    if not name.strip():
        return "is empty"
    if len(name) > MAX_LENGTH:
        return f"has {len(name):,} characters, more than {MAX_LENGTH}"
    for char in name:
        category = unicodedata.category(char)
        if category in _UNSAFE_CATEGORIES:
            return f"holds the control or format character U+{ord(char):04X}"
    return None

"""What a model version is, in a URL and in a repository folder: ASCII digits, no leading zero, 1 to 2^63-1.

One rule for both, so "1", "01", "١" (an Arabic-Indic one) and "²" cannot all mean
version 1 in one place and a traceback in another: only "1" is version 1. The
bound is what a signed 64-bit integer holds (Triton's and TF Serving's version type).
"""

from __future__ import annotations

import re

MAX_VERSION = 2**63 - 1
_CANONICAL = re.compile(r"[1-9][0-9]{0,18}\Z", re.ASCII)  # 19 digits at most: 2^63-1 has 19
RULE = "a version is a whole number from 1 to 2^63-1 in ASCII digits, without leading zeros"


def parse_version(text: str) -> int | None:
    """The version `text` names, or None when it is not one (see the module docstring)."""
    if not _CANONICAL.match(text):
        return None
    number = int(text)
    return number if number <= MAX_VERSION else None


def names_a_number(text: str) -> int | None:
    """The number a non-canonical version folder seems to name ("01", "١"), to refuse it with the folder it clashes
    with; None when it names none (letters, "²", too many digits)."""
    if not text.isdecimal() or len(text) > 40:
        return None
    number = int(text)  # isdecimal: every character is a decimal digit of some script, which int() reads
    return number if 1 <= number <= MAX_VERSION else None

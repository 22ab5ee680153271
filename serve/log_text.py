"""Text a client (or a folder name) chose, made safe to log: one line, no control characters, bounded.

A path logged as the engine decodes it could hold "%0A" (a newline: a second, forged
log line), "%0D", "%1B[31m" (terminal escapes) or "%00". Every such character is
written as a visible escape (\\n, \\x1b, ...), a backslash as "\\\\", so a log line is
always exactly one line and says exactly what arrived.
"""

from __future__ import annotations

import re

MAX_LOGGED = 2000  # characters of one value in a log line; the rest is counted, not written
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\\\u2028\u2029]")


def for_log(text: str) -> str:
    """`text` with control characters and backslashes escaped, cut to MAX_LOGGED characters."""
    if len(text) > MAX_LOGGED:
        text = f"{text[:MAX_LOGGED]}...({len(text) - MAX_LOGGED} more)"
    return _UNSAFE.sub(_escape, text)


_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

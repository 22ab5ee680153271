"""Text someone else chose (a path, a folder or file name, a class name), made safe to print in one line.

A path logged as the engine decodes it could hold "%0A" (a newline: a second, forged
log line), "%0D", "%1B[31m" (terminal escapes), "%00", or a right-to-left override
(U+202E) that shows a line's end reversed; so could a training file's name
("evil\npython -m kerasreg.train: error: FORGED.png"). Every character that is not
printable (controls, bidi controls, line and paragraph separators) is written as a
visible escape (\\n, \\x1b, \\u202e, ...), a backslash as "\\\\", so a line is
always exactly one line and says exactly what arrived. serve's logs and every
command's error lines go through it.
"""

from __future__ import annotations

MAX_SHOWN = 2000  # characters of one value in a line; the rest is counted, not written
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str, limit: int = MAX_SHOWN, backslashes: bool = True) -> str:
    """`text` with every unprintable character (and backslash) escaped, cut to `limit` characters.

    `backslashes=False` leaves backslashes as they are: for an error line whose names were quoted with repr()
    already (their backslashes escaped once), where the point is that the line stays one line.
    """
    if len(text) > limit:
        text = f"{text[:limit]}...({len(text) - limit} more)"
    if text.isprintable() and not (backslashes and "\\" in text):  # the usual case, at C speed
        return text
    return "".join(_escape(char) if (backslashes and char == "\\") or not char.isprintable() else char for char in text)


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"

"""argparse types for serve's flags: a number within bounds, or argparse's one-line error (exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def bounded(kind: type, accept: Callable[[float], bool], expected: str) -> Callable[[str], float]:
    """An argparse type: `kind(text)` when `accept` takes it, else the parser's one-line error (exit 2)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"Received {text!r}. Expected {expected}.")
        return value

    return parse


positive_int = bounded(int, lambda v: v >= 1, "a positive integer")
positive_float = bounded(float, lambda v: 0 < v < float("inf"), "a positive number")
non_negative_seconds = bounded(float, lambda v: 0 <= v < float("inf"), "seconds >= 0")
port_number = bounded(int, lambda v: 0 <= v <= 65535, "a port number 0..65535")  # 0: any free port
listening_port = bounded(int, lambda v: 1 <= v <= 65535, "a port number 1..65535")  # every worker binds the same one

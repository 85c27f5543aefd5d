"""Stored text made safe for a terminal and a spreadsheet: what every text renderer applies to strings that came
from a suite, a dataset, a model or a server.

* :func:`visible_controls`: control characters shown as visible escapes, so a model output, an error or a label
  cannot move the cursor, clear the screen, set the window title, write the clipboard (OSC 52), ring the bell,
  overwrite a line or reorder what is shown (bidi overrides). Newline and tab are kept.
* :func:`csv_safe`: the OWASP rule against CSV injection: a text cell that a spreadsheet would read as a formula
  gets a leading ``'``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["UNSAFE", "csv_safe", "has_controls", "visible_char", "visible_controls"]

#: what a terminal could act on: C0 controls but newline and tab, DEL, the C1 controls (U+0080–U+009F: CSI,
#: OSC... in one code point) and the bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069)
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible_char(ch: str) -> str:
    """One unsafe character as text: a C0 control as its Unicode control picture (ESC ``␛``, BEL ``␇``, CR
    ``␍``), DEL as ``␡``, a C1 control as ``\\x9b``, a bidi control as ``\\u202e``."""
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def has_controls(text: str) -> bool:
    """Whether ``text`` holds a character :func:`visible_controls` would change."""
    return UNSAFE.search(text) is not None


def visible_controls(text: str) -> str:
    """``text`` with every control character a terminal could act on shown as a visible escape
    (:func:`visible_char`); newline and tab kept, a Windows line end (CR LF) kept as a newline."""
    if not UNSAFE.search(text):
        return text
    return UNSAFE.sub(lambda m: visible_char(m.group()), text.replace("\r\n", "\n"))


#: what a spreadsheet reads as the start of a formula (OWASP: CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: a plain number written as text ("-1.5", "+3", "-2e-3"): a spreadsheet reads it as that number, never a formula
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def csv_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet cannot run: a string starting with ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return gets a leading ``'`` (shown as text, not run as a formula). Numbers (``-1.5``), text that is
    a plain number (``"-1.5"``) and every other value are returned as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value

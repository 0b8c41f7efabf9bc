"""Terminal output for the ``pt2serde`` command: aligned tables, sizes, colour, progress.

Colour is used only when the stream is a terminal, ``NO_COLOR`` is unset (any value,
even empty, turns it off, see https://no-color.org) and ``TERM`` is not ``dumb``.
Progress lines go to stderr and only when stderr is a terminal, so pipes, files and
tests see exactly the report and nothing else. Torch-free.

Text from a file never reaches the terminal raw. A name, message or path can hold
control characters (``\x1b]0;title\x07`` sets the window title, ``\x1b[2J`` clears the
screen, ``\r`` returns to the start of the line to print a forged ``valid`` over the
verdict), line and paragraph separators or bidi overrides (``\u202e`` shows text
reversed). Two layers keep them out:

* the renderers escape everything they are given first (:func:`safe` on the report, the
  changes, the problems), so every value from a file is escaped by default, before
  alignment, and only the renderer's own text and :class:`Style`'s colour codes are raw;
* :func:`terminal_text`, what the command line writes through, escapes anything left
  except line ends and those colour codes.

The characters are those of :data:`HIDDEN_RANGES`, one table for the terminal and the page of
``pt2serde view`` (``view_page`` hands it to the page's script): anything drawn invisibly, as a
blank or like a space, and lone surrogates (which a terminal's encoder cannot write). Each is
written as a Python escape (``\x1b``, ``\u202e``, ``\U000e0069``). The page also writes a
backslash as ``\\`` (it shows the file's strings as they are); here the messages printed hold
Python reprs, where a backslash from the file is already ``\\``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
from typing import Any, Sequence, TextIO

__all__ = ["Style", "human_bytes", "table", "Progress", "plural", "escape", "safe", "terminal_text",
           "HIDDEN_RANGES"]

#: Code points never shown raw (inclusive ranges): categories Cc, Cf, Zl, Zp and Cs (a lone
#: surrogate), Zs other than U+0020 (blank look-alikes of a space), Default_Ignorable_Code_Point
#: (variation selectors, tag characters U+E0000-E0FFF, the Hangul fillers U+115F, U+1160, U+3164,
#: U+FFA0, ...) and U+2800 (a blank braille pattern). tests/cli/test_cli_term.py checks it against
#: :mod:`unicodedata`, tests/browser/test_view_text.py against the browser's own tables.
HIDDEN_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x00A0), (0x00AD, 0x00AD), (0x034F, 0x034F), (0x0600, 0x0605),
    (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2),
    (0x115F, 0x1160), (0x1680, 0x1680), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x2000, 0x200F),
    (0x2028, 0x202F), (0x205F, 0x206F), (0x2800, 0x2800), (0x3000, 0x3000), (0x3164, 0x3164),
    (0xD800, 0xDFFF), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFFB),
    (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36"}
_HIDDEN_CLASS = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in HIDDEN_RANGES)
_HIDDEN = re.compile(f"[{_HIDDEN_CLASS}]")
#: what may reach the terminal raw: a line end, and the colour codes Style writes
_OURS = re.compile("\n|\x1b\\[(?:0|" + "|".join(_CODES.values()) + ")m")


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(m: re.Match) -> str:
    c = m.group()
    if c in _SHORT:
        return _SHORT[c]
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def escape(text: str) -> str:
    """``text`` with every character of :data:`HIDDEN_RANGES` written as an escape:
    ``"a\x1b[2Jb"`` -> ``"a\\x1b[2Jb"``. A backslash stays: the messages printed hold Python
    reprs, where a backslash from the file is already written ``\\``."""
    return _HIDDEN.sub(_escaped, text)


def safe(value: Any) -> Any:
    """``value`` with every string in it escaped (:func:`escape`): dict keys and values, list
    and tuple items, dataclass fields. Renderers call it on whatever they print."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {safe(k): safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(safe(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: safe(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    return value


def terminal_text(text: str, colour: bool = False) -> str:
    """``text`` as it may be written to a terminal: every character of :data:`HIDDEN_RANGES`
    escaped, except line ends and (when ``colour``) :class:`Style`'s own colour codes."""
    out = []
    at = 0
    for m in _OURS.finditer(text):
        out.append(escape(text[at:m.start()]))
        out.append(m.group() if colour or m.group() == "\n" else escape(m.group()))
        at = m.end()
    out.append(escape(text[at:]))
    return "".join(out)


def colour_wanted(stream: TextIO) -> bool:
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Style:
    """``style.red("text")`` etc.; plain text when colour is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __getattr__(self, name: str):
        code = _CODES.get(name)
        if code is None:
            raise AttributeError(name)

        def paint(text: str) -> str:
            return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and text else text

        return paint


def human_bytes(n: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.73 GiB`` (binary units, three significant digits)."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            break
    if value >= 100:
        return f"{value:.0f} {unit}"
    if value >= 10:
        return f"{value:.1f} {unit}"
    return f"{value:.2f} {unit}"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def table(rows: Sequence[Sequence[str]], *, align: str = "", indent: int = 2, gap: int = 2,
          paint: Sequence | None = None) -> list[str]:
    """Rows of cells as aligned lines. ``align``: one ``l``/``r`` per column (default ``l``).

    ``paint``: one callable (or ``None``) per column, applied after padding so that
    escape codes never disturb the alignment.
    """
    if not rows:
        return []
    ncols = max(len(r) for r in rows)
    widths = [0] * ncols
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in rows:
        cells = []
        for i in range(ncols):
            cell = row[i] if i < len(row) else ""
            right = i < len(align) and align[i] == "r"
            last = i == ncols - 1
            padded = cell.rjust(widths[i]) if right else (cell if last else cell.ljust(widths[i]))
            fn = paint[i] if paint and i < len(paint) else None
            if fn is not None and cell:
                stripped = padded.strip(" ")
                lead = padded[:len(padded) - len(padded.lstrip(" "))]
                trail = padded[len(lead) + len(stripped):]
                padded = lead + fn(stripped) + trail
            cells.append(padded)
        lines.append(" " * indent + (" " * gap).join(cells).rstrip())
    return lines


class Progress:
    """A one-line progress indicator on stderr, shown only on a terminal.

    ``with Progress("checking", total_bytes) as p: p.advance(n)``. Redraws at most ten
    times a second and only after the operation has run for half a second, so quick
    commands never flash a bar.
    """

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        try:
            self.enabled = self.stream.isatty()
        except (AttributeError, ValueError):
            self.enabled = False
        self.label = label
        self.total = max(total, 1)
        self.done = 0
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = False

    def advance(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < 0.5 or now - self.last < 0.1:
            return
        self.last = now
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(frac * 24)
        self.stream.write(f"\r{self.label} [{bar:<24}] {frac * 100:5.1f}% {human_bytes(self.done)}\x1b[K")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

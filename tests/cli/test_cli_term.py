"""Terminal output rules: sizes, alignment, colour only on a terminal (and never with NO_COLOR), progress on stderr."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time

import pytest
import torch

import pt2serde
from cli_support import MAIN, _env
from pt2serde.cli.term import Progress, Style, colour_wanted, human_bytes, table


def test_human_bytes():
    assert [human_bytes(n) for n in (0, 1023, 1024, 1536, 10 * 1024 + 100, 300 * 1024, 5 << 20, int(3.74 * (1 << 30)),
                                     2 << 40)] == \
        ["0 B", "1023 B", "1.00 KiB", "1.50 KiB", "10.1 KiB", "300 KiB", "5.00 MiB", "3.74 GiB", "2.00 TiB"]


def test_table_aligns_and_paints_after_padding():
    rows = [["a", "float32[4, 8]", "128 B"], ["long_name", "f16[2]", "4 B"]]
    assert table(rows, align="llr") == ["  a          float32[4, 8]  128 B", "  long_name  f16[2]           4 B"]
    painted = table(rows, align="llr", paint=[Style(True).red, None, None])
    assert painted[0] == "  \x1b[31ma\x1b[0m          float32[4, 8]  128 B"
    assert table([]) == []


class _Tty:
    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.written: list[str] = []

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> None:
        self.written.append(text)

    def flush(self) -> None:
        pass


def test_colour_rules(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert colour_wanted(_Tty(True)) and not colour_wanted(_Tty(False))
    monkeypatch.setenv("NO_COLOR", "")
    assert not colour_wanted(_Tty(True))  # any value, even empty (no-color.org)
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not colour_wanted(_Tty(True))
    assert Style(False).red("x") == "x" and Style(True).bold("x") == "\x1b[1mx\x1b[0m"


def test_progress_only_on_a_terminal():
    quiet = _Tty(False)
    with Progress("checking", 100, stream=quiet) as bar:
        bar.start -= 1.0
        bar.advance(50)
    assert quiet.written == []
    loud = _Tty(True)
    with Progress("checking", 100, stream=loud) as bar:
        bar.advance(10)  # within the first half second: nothing yet
        assert loud.written == []
        bar.start -= 1.0
        bar.advance(40)
    assert loud.written[0].startswith("\rchecking [############            ]  50.0%")
    assert loud.written[-1] == "\r\x1b[K"  # the line is cleared at the end


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("term") / "small.pt2")
    pt2serde.save(torch.export.export(torch.nn.Linear(2, 2), (torch.randn(1, 2),)), path)
    return path


def _run_on_pty(args: list[str], env: dict) -> str:
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", MAIN, *args], stdout=follower, stderr=subprocess.PIPE,
                            env=_env(env))
    os.close(follower)
    chunks = []
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode()


def test_cli_colours_a_terminal_unless_no_color(small_archive):
    coloured = _run_on_pty(["inspect", small_archive], {"TERM": "xterm"})
    assert "\x1b[1m" in coloured and "\x1b[36mmodel\x1b[0m" in coloured
    plain = _run_on_pty(["inspect", small_archive], {"TERM": "xterm", "NO_COLOR": "1"})
    assert "\x1b[" not in plain and "program model" in plain


# ------------------------------------------------------- text from a file (issue 10, finding 11)

import cases_cli  # noqa: E402
from pt2serde.cli.term import escape, safe, terminal_text  # noqa: E402

UNSAFE = "\x00\x07\x08\t\n\x0b\x0c\r\x1b\x1c\x1d\x1e\x1f\x7f\x85\x9b\u2028\u2029\u202a\u202e\u2066\u2069\ud800"


def test_escape_writes_every_unsafe_character_as_an_escape():
    assert escape("a" + UNSAFE + "é✓b") == (
        "a\\x00\\x07\\x08\\t\\n\\x0b\\x0c\\r\\x1b\\x1c\\x1d\\x1e\\x1f\\x7f\\x85\\x9b\\u2028\\u2029\\u202a\\u202e"
        "\\u2066\\u2069\\ud800é✓b")
    assert escape("plain text, [1, 2] -> é") == "plain text, [1, 2] -> é"


def test_escape_shows_blank_and_invisible_characters_as_escapes():
    """Round 2 of issue 16, finding 3: each of these is drawn like "matmul", as a blank or like a space."""
    for hidden, shown in [("\U000e0069", "\\U000e0069"), ("\u034f", "\\u034f"), ("\ufe0f", "\\ufe0f"),
                          ("\u206a", "\\u206a"), ("\u180b", "\\u180b"), ("\u17b4", "\\u17b4"),
                          ("\U0001d173", "\\U0001d173"), ("\u3164", "\\u3164"), ("\u115f", "\\u115f"),
                          ("\u1160", "\\u1160"), ("\uffa0", "\\uffa0"), ("\u00a0", "\\xa0"),
                          ("\u2000", "\\u2000"), ("\u202f", "\\u202f"), ("\u205f", "\\u205f"),
                          ("\u3000", "\\u3000"), ("\u2800", "\\u2800")]:
        assert escape("mat" + hidden + "mul") == "mat" + shown + "mul"
    assert terminal_text(escape("a\\b\x1b\U000e0069")) == "a\\b\\x1b\\U000e0069"   # escaped once, not twice
    assert escape("a b \u00e9 \U0001f600") == "a b \u00e9 \U0001f600"   # a space, a letter, a pair: as they are


def test_hidden_ranges_cover_every_control_format_separator_and_other_space():
    import unicodedata

    from pt2serde.cli.term import HIDDEN_RANGES

    def hidden(n):
        return any(a <= n <= b for a, b in HIDDEN_RANGES)

    missed = [hex(n) for n in range(0x110000) if not hidden(n)
              and (unicodedata.category(chr(n)) in ("Cc", "Cf", "Zl", "Zp", "Cs")
                   or (unicodedata.category(chr(n)) == "Zs" and n != 0x20))]
    assert missed == []
    assert not hidden(0x20) and not hidden(ord("m")) and not hidden(0x1F600)


def test_safe_escapes_every_string_of_a_report():
    from pt2serde.format.problem import Problem

    value = {"k\x1b": ["a\r", ("b\u202e", 3)], "n": None, "p": Problem("m\x1b[2J", "$.x\n", "r\x07")}
    assert safe(value) == {"k\\x1b": ["a\\r", ("b\\u202e", 3)], "n": None,
                           "p": Problem("m\\x1b[2J", "$.x\\n", "r\\x07")}


def test_terminal_text_lets_through_only_line_ends_and_our_colours():
    ours = Style(True).red("bad") + "\n"
    theirs = "\x1b[2J\x1b]0;t\x07\x1b[8m\r"
    assert terminal_text(ours + theirs, colour=True) == ours + "\\x1b[2J\\x1b]0;t\\x07\\x1b[8m\\r"
    assert terminal_text(ours + theirs) == "\\x1b[31mbad\\x1b[0m\n\\x1b[2J\\x1b]0;t\\x07\\x1b[8m\\r"


def test_colour_output_holds_only_our_colour_codes(tmp_path):
    """On a terminal (colour on), names from the file stay escaped: only the CLI's own codes are raw."""
    paths = cases_cli.hostile_archives(tmp_path)
    for case in ("torch_version with terminal escapes", "extra file names with terminal escapes"):
        out = _run_on_pty(["inspect", paths[case]], {"TERM": "xterm"}).replace("\r\n", "\n")
        assert "\x1b[1m" in out and cases_cli.unsafe_printed(out, colour=True) == [], out
        out = _run_on_pty(["diff", paths["base"], paths[case]], {"TERM": "xterm"}).replace("\r\n", "\n")
        assert "\x1b[33m~\x1b[0m" in out or "\x1b[32m+\x1b[0m" in out
        assert cases_cli.unsafe_printed(out, colour=True) == [], out

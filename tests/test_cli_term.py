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
from pt2serde._term import Progress, Style, colour_wanted, human_bytes, table


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

"""The ``pt2serde`` command line.

``inspect``, ``validate``, ``diff`` and ``view`` run on the format layer alone: they work without
torch, and never unpickle or execute anything from the file. They read PT2 archives and
the plain zip written by PyTorch 2.5-2.7 (documents of older schema versions are upgraded
as the loader upgrades them). ``inspect`` also says which releases can read the archive
(:mod:`pt2serde.format.compat_readers`). ``demo`` needs torch (it exports a model) and lives
outside the package (``pt2serde_demo``).

Exit codes: ``inspect`` 0 (1 when part of the archive could not be read, shown as a
note); ``validate`` 0 when ``pt2serde.load`` would load the archive (warnings allowed), 1 when it
would refuse it: by default as ``load(allow_pickle=False)`` judges, so an archive whose
records only unpickling can read is invalid there; ``--allow-pickle`` judges as
``load(allow_pickle=True)``, where those are warnings; ``diff`` 0 equal, 1 different;
all three 2 when a file cannot be read at all (not a zip, neither a PT2 archive nor the
plain zip of 2.5-2.7, a program document that does not decode for ``diff``); a file of
another kind (a ``torch.save`` checkpoint, safetensors, TorchScript, an empty or cut-short
file) is named as such, with what reads it (:mod:`pt2serde.format.filekind`). ``inspect`` says an
archive that ``validate`` refuses is readable by no release. ``view`` 0 when it wrote the page
(an archive ``validate`` refuses is still shown, its problems as notes), 2 when the file cannot
be read, the program's document does not decode, there is no such program (the message names
the programs there are) or the page cannot be written; ``diff --html OUT`` writes the page and
keeps ``diff``'s exit code (2 when the page cannot be written). Pages are written to a temporary
file next to OUT, then renamed over it: a failure leaves an existing file untouched. A page is
never written over an input (OUT the same file as one, through a link or another spelling of
its path): exit 2 before anything is read. Any command that runs out of memory says so in one
line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

__all__ = ["main", "build_parser"]


def _out(text: str, colour: bool = False) -> None:
    """Write a report: through :func:`_term.terminal_text`, so nothing from a file reaches the
    terminal raw (the renderers escaped it already; this is the last line of defence)."""
    from .term import terminal_text

    sys.stdout.write(terminal_text(text, colour) + ("\n" if text and not text.endswith("\n") else ""))


def _err(text: str) -> None:
    from .term import terminal_text

    sys.stderr.write(terminal_text(text) + "\n")


def _fail(command: str, path: str, err: Exception) -> int:
    _err(f"pt2serde {command}: cannot read {path}: {err}")
    return 2


def _jsonable(value: Any) -> Any:
    """Non-finite floats as PyTorch writes them in documents (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, complex):
        return {"real": _jsonable(value.real), "imag": _jsonable(value.imag)}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _dump(value: Any) -> None:
    """JSON output: ``ensure_ascii`` writes every character outside ASCII (U+2028, bidi
    overrides, lone surrogates) and every control character as a ``\\u`` escape."""
    _out(json.dumps(_jsonable(value), indent=2, allow_nan=False, ensure_ascii=True))


def _open(command: str, path: str):
    """The archive at ``path`` as the checked model reads it, or (None, exit code 2) after one
    line on stderr: a folder, a file that is not a zip, or another kind of file (a torch.save
    checkpoint, safetensors, TorchScript) named as such (:mod:`pt2serde.format.filekind`)."""
    from ..format.contents import Pt2Archive
    from ..errors import SerializeError
    from ..format.filekind import open_reader

    try:
        if os.path.isdir(path):
            raise SerializeError("it is a folder, not an archive; pass the .pt2 file in it")
        reader = open_reader(path, subject="it")
        try:
            return Pt2Archive(reader, path), None
        except SerializeError:
            reader.close()
            raise
    except (SerializeError, OSError) as e:
        return None, _fail(command, path, e)


def _style():
    from .term import Style, colour_wanted

    return Style(colour_wanted(sys.stdout))


# ---------------------------------------------------------------- inspect


def _cmd_inspect(args: argparse.Namespace) -> int:
    from ..errors import SerializeError
    from .inspection import has_errors, inspect_archive, render

    archive, code = _open("inspect", args.file)
    if archive is None:
        return code
    try:
        report = inspect_archive(archive)
    except SerializeError as e:
        return _fail("inspect", args.file, e)
    if args.json:
        _dump(report)
    else:
        style = _style()
        _out(render(report, style), style.enabled)
    return 1 if has_errors(report) else 0


# ---------------------------------------------------------------- validate


def _cmd_validate(args: argparse.Namespace) -> int:
    from .term import Progress
    from ..format.check import check_archive
    from ..errors import SerializeError

    archive, code = _open("validate", args.file)
    if archive is None:
        return code
    total = 0 if args.no_crc else sum(e.size for e in archive.reader.entries.values())
    try:
        with Progress("validate: checking CRCs", total) as bar:
            problems = check_archive(archive, crc=not args.no_crc, progress=bar.advance)
    except SerializeError as e:
        return _fail("validate", args.file, e)
    # the verdict is load's: a problem is an error exactly when it would stop load (one rule:
    # Problem.blocks_load), e.g. a record only unpickling can read, unless --allow-pickle
    problems = [_as_load_judges(p, args.allow_pickle) for p in problems]
    errors = [p for p in problems if p.level == "error"]
    if args.json:
        _dump({"file": args.file, "valid": not errors, "allow_pickle": args.allow_pickle,
               "programs": archive.models(),
               "problems": [{"level": p.level, "message": p.message, "where": p.where, "record": p.record}
                            for p in problems]})
        return 1 if errors else 0
    s = _style()
    _out(_render_validate(os.path.basename(args.file), archive, problems, args.no_crc, s), s.enabled)
    return 1 if errors else 0


def _as_load_judges(p, allow_pickle: bool):
    """``p`` as an error when it stops ``load(allow_pickle=...)``, else as a warning."""
    import dataclasses

    level = "error" if p.blocks_load(allow_pickle) else "warning"
    return p if p.level == level else dataclasses.replace(p, level=level)


def _render_validate(name: str, archive, problems: list, no_crc: bool, s) -> str:
    from .term import plural, safe

    name, problems = safe(name), safe(problems)  # names, messages and record names come from the file
    errors = [p for p in problems if p.level == "error"]
    warnings = [p for p in problems if p.level != "error"]
    programs = plural(len(archive.models()), "program")
    records = plural(len(archive.reader.entries), "record")
    if not problems:
        return f"{name}: {s.green('valid')} ({programs}, {records}{'' if no_crc else ', CRCs checked'})"
    verdict = s.red("invalid") if errors else s.green("valid")
    counts = ", ".join(x for x in (plural(len(errors), "error") if errors else "",
                                   plural(len(warnings), "warning") if warnings else "") if x)
    lines = [f"{name}: {verdict}, {counts} ({programs}, {records})"]
    by_record: dict[str, list] = {}
    for p in problems:
        by_record.setdefault(p.record or "", []).append(p)
    for record, items in by_record.items():
        lines.append(f"  {s.bold(record) if record else s.bold('archive')}")
        for p in items:
            label = s.red("error") if p.level == "error" else s.yellow("warning")
            lines.append(f"    {label}: {p.message} @ {p.where}")
    return "\n".join(lines)


# ---------------------------------------------------------------- diff


def _same_file(command: str, out: str, inputs: list[str]) -> int | None:
    """2, after one line naming both paths, when the page ``out`` would be written over one of
    ``inputs`` (``os.path.samefile``: links and other spellings of a path included); else None."""
    for path in inputs:
        try:
            same = os.path.samefile(out, path)
        except OSError:  # one of them does not exist (yet): not the same file
            same = False
        if same:
            _err(f"pt2serde {command}: refusing to write the page {out}: it is the input {path}")
            return 2
    return None


def _cmd_diff(args: argparse.Namespace) -> int:
    from .term import Progress
    from .diffing import diff_archives, render, total_bytes
    from ..errors import SerializeError

    if args.html is not None and (code := _same_file("diff", args.html, [args.a, args.b])) is not None:
        return code
    if args.html is not None and _page_to_stdout(args.html):
        _err(f"pt2serde diff: refusing to write the page to standard output ({args.html}): the report goes there")
        return 2
    a, code = _open("diff", args.a)
    if a is None:
        return code
    b, code = _open("diff", args.b)
    if b is None:
        return code
    try:
        with Progress("diff: comparing tensors", min(total_bytes(a), total_bytes(b))) as bar:
            changes = diff_archives(a, b, progress=bar.advance)
    except SerializeError as e:
        _err(f"pt2serde diff: cannot compare {args.a} and {args.b}: {e}")
        return 2
    if args.html is not None:
        from .view_diff import diff_view

        try:
            _write_page(diff_view(a, b, program=args.program, changes=changes), args.html)
        except (SerializeError, OSError) as e:
            _err(f"pt2serde diff: cannot write {args.html}: {e}")
            return 2
    if args.json:
        _dump({"a": args.a, "b": args.b, "equal": not changes, "changes": [c.as_dict() for c in changes]})
    else:
        style = _style()
        _out(render(changes, style, os.path.basename(args.a), os.path.basename(args.b)), style.enabled)
    if args.html is not None:  # on stderr with --json: stdout stays one JSON document
        (_err if args.json else _out)(f"wrote {args.html}")
    return 1 if changes else 0


# ---------------------------------------------------------------- view


def _page_to_stdout(path: str) -> bool:
    """Whether the page ``path`` names this process's standard output: ``-``, or a path to the
    same file (``/dev/stdout``, ``/proc/self/fd/1``, the file stdout is redirected to)."""
    if path == "-":
        return True
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):  # no such path, or no real stdout (a test's capture)
        return False


def _write_page(model: dict, path: str) -> None:
    """The page of a view model: to stdout when ``path`` names it (:func:`_page_to_stdout`), as a
    stream to an existing target that is not a regular file (a pipe, a character device), else
    atomically (a failure leaves an existing file as it was)."""
    import stat

    from ..format.archive_write import write_file_atomically
    from .view_page import render_page  # the page: its template, script and layout library

    data = render_page(model).encode("utf-8", "surrogatepass")
    if _page_to_stdout(path):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        stream = not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:  # not there yet: a new regular file
        stream = False
    if stream:
        with open(path, "wb") as f:
            f.write(data)
        return
    write_file_atomically(path, data)


def _cmd_view(args: argparse.Namespace) -> int:
    from ..errors import SerializeError
    from .view_model import program_view

    out = args.output or os.path.splitext(os.path.basename(args.file))[0] + ".html"
    if (code := _same_file("view", out, [args.file])) is not None:
        return code
    archive, code = _open("view", args.file)
    if archive is None:
        return code
    try:
        model = program_view(archive, args.program)
    except SerializeError as e:
        return _fail("view", args.file, e)
    try:
        _write_page(model, out)
    except (SerializeError, OSError) as e:
        _err(f"pt2serde view: cannot write {out}: {e}")
        return 2
    nodes = sum(len(g["nodes"]) for g in model["graphs"])
    say = _err if _page_to_stdout(out) else _out   # stdout holds the page itself
    say(f"wrote {out}: program {model['program']}, {nodes} nodes in {len(model['graphs'])} graph"
         f"{'s' if len(model['graphs']) != 1 else ''} ({model['verdict']['text']})")
    return 0


# ---------------------------------------------------------------- demo


def _cmd_demo(args: argparse.Namespace) -> int:
    from pt2serde_demo import run_demo  # separate module: it runs PyTorch's serializer for comparison

    return run_demo()


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="pt2serde",
        description="Serialize, inspect and check torch.export programs (PT2 archives, schema 8.20). "
                    "inspect, validate and diff need no torch and never run anything from the file.",
    )
    parser.add_argument("--version", action="version", version=f"pt2serde {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inspect", help="what an archive holds: programs, signature, operators, weights, "
                                       "and which releases can read it")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="machine-readable report (docs/inspect-json.md)")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("validate", help="check every record and document; exit 0 valid, 1 invalid, 2 unreadable")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="problems as JSON")
    p.add_argument("--no-crc", action="store_true", help="skip the CRC-32 check of every record (fast)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="judge as load(allow_pickle=True) does, for an archive you trust: records that only "
                        "unpickling can read are then warnings, not errors")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("diff", help="what differs between two archives; exit 0 equal, 1 different")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--json", action="store_true", help="changes as JSON")
    p.add_argument("--html", metavar="OUT", help="also write an HTML page of the two graphs, changes highlighted")
    p.add_argument("--program", metavar="NAME", help="the program the page shows (default: model)")
    p.set_defaults(func=_cmd_diff)

    p = sub.add_parser("view", help="write a self-contained HTML page of a program's graph (no network, no torch)")
    p.add_argument("file")
    p.add_argument("-o", "--output", metavar="OUT", help="the page to write (default: FILE's base name + .html, "
                                                         "in the current folder)")
    p.add_argument("--program", metavar="NAME", help="the program to show (default: model)")
    p.set_defaults(func=_cmd_view)

    p = sub.add_parser("demo", help="export a small model, save and load it with pt2serde and PyTorch, compare")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `pt2serde inspect big.pt2 | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except MemoryError:  # a file too large for this machine: one line, no traceback
        sys.stderr.write(f"pt2serde {args.command}: out of memory\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Files aimed at the torch-free command line (issue 10, findings 8 and 11).

* ``diff`` work bounded by the records: a legal zero-stride ``[2**40]`` weight (``diff`` used
  to walk it element by element, 6.5 GiB after 150 s), and a thousand entries naming one
  deflated record (``diff`` inflated it once per entry: 171 s for 213 KB);
* terminal escapes: names, versions and record names holding ``\\x1b]0;title\\x07`` (window
  title), ``\\x1b[2J`` (clear screen), ``\\r`` followed by a forged ``valid`` line, and
  ``\\u202e`` (right-to-left override). ``inspect``, ``validate`` and ``diff`` print them
  escaped; the runner fails a case whose command line prints a control character.

``diff`` compares each case against its unmodified base, so the value comparisons of the
first two are also tested file against file in ``tests/cli/test_cli_diff.py``.
"""

from __future__ import annotations

import json
import os
import re
import sys

from everywhere import TESTS, Case, base_archive, doc_case

sys.path.insert(0, str(TESTS))
import test_hostile_archives as H  # noqa: E402
from pt2serde.format.archive import ArchiveReader  # noqa: E402

#: what a terminal would obey: window title, clear screen, a return to the line start that
#: prints a forged verdict over the real one, a right-to-left override, a line separator
TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
FORGED = "\rcase.pt2: valid (1 program, 10 records, CRCs checked)"
RLO = "\u202e"
LS = "\u2028"
HOSTILE = TITLE + CLEAR + FORGED + RLO + LS


def zero_stride_weight(marker: str = "") -> bytes:
    """Weight ``w`` stored as a zero-stride ``float32[2**40]`` view of its 48-byte record: legal
    geometry (every element reads element 0), 4 TiB if walked element by element."""
    def change(cfg):
        cfg["w"]["tensor_meta"].update(sizes=H.ints(2**40), strides=H.ints(0))
    return H.with_config(base_archive("small"), H.WEIGHTS, change)


def one_deflated_record(marker: str = "", count: int = 1000, size: int = 16 << 20, data: bytes | None = None) -> bytes:
    """``count`` weights all naming one deflated record of ``size`` zero bytes (16 KiB in the
    file; ``data``: other bytes of that size): inflating it once per entry costs ``count`` x ``size``."""
    base = base_archive("small")
    cfg = H.read_json(base, H.WEIGHTS)
    for i in range(count):
        entry = json.loads(json.dumps(cfg["config"]["b"]))
        entry["path_name"] = "big"
        entry["tensor_meta"].update(sizes=H.ints(size // 4), strides=H.ints(1))
        cfg["config"][f"z{i}"] = entry
    archive = H.rewrite(base, replace={H.WEIGHTS: json.dumps(cfg).encode()})
    reader = ArchiveReader(archive)
    root = reader.root_folder()
    stored = H.raw_zip([(n.encode(), reader.read(n)) for n in reader.names()])
    packed = H.raw_zip([(f"{root}/data/weights/big".encode(), bytes(size) if data is None else data)], method=8)
    return H._merge(stored, packed)


def _torch_version(doc: dict, marker: str) -> None:
    doc["torch_version"] = "2.13.0" + HOSTILE


def _extra_files(marker: str) -> bytes:
    return H.rewrite(base_archive("small"), add={f"extra/{TITLE}{CLEAR}": b"x", f"extra/notes{FORGED}{RLO}": b"y"})


def _parameter_name(marker: str) -> bytes:
    return renamed_parameter("w" + TITLE + CLEAR + FORGED)


def renamed_parameter(name: str) -> bytes:
    """The small base with state-dict name ``w`` renamed ``name`` in the payload config and the signature."""
    base = base_archive("small")
    cfg = H.read_json(base, H.WEIGHTS)
    cfg["config"][name] = cfg["config"].pop("w")
    doc = H.read_json(base, "models/model.json")
    for spec in doc["graph_module"]["signature"]["input_specs"]:
        if spec.get("parameter", {}).get("parameter_name") == "w":
            spec["parameter"]["parameter_name"] = name
    return H.rewrite(base, replace={H.WEIGHTS: json.dumps(cfg).encode(),
                                    "models/model.json": json.dumps(doc).encode()})


def _input_name(doc: dict, marker: str) -> None:
    old = doc["graph_module"]["graph"]["inputs"][-1]["as_tensor"]["name"]
    new = "x" + FORGED + RLO
    text = json.dumps(doc).replace(f'"{old}"', json.dumps(new))
    doc.clear()
    doc.update(json.loads(text))


def _record_name(marker: str, cut: int | None = None) -> bytes:
    """The weight's record is named with escapes; the config names it (a well-formed archive,
    unless ``cut`` shortens the record to that many bytes)."""
    base = base_archive("small")
    cfg = H.read_json(base, H.WEIGHTS)
    old = cfg["config"]["w"]["path_name"]
    new = old + TITLE + CLEAR + RLO
    cfg["config"]["w"]["path_name"] = new
    reader = ArchiveReader(base)
    data = reader.read(f"{reader.root_folder()}/data/weights/{old}")[:cut]
    return H.rewrite(base, replace={H.WEIGHTS: json.dumps(cfg).encode()}, drop=(f"data/weights/{old}",),
                     add={f"data/weights/{new}": data})


def _missing_record_name(marker: str) -> bytes:
    def change(cfg):
        cfg["w"]["path_name"] = "gone" + CLEAR + FORGED
    return H.with_config(base_archive("small"), H.WEIGHTS, change)


CASES = [
    Case("zero-stride [2**40] weight", zero_stride_weight, r"1099511627776"),
    Case("a thousand entries naming one deflated record", one_deflated_record, None),
    doc_case("torch_version with terminal escapes", _torch_version, None),
    Case("extra file names with terminal escapes", _extra_files, None),
    Case("record name with terminal escapes", _record_name, None),
    Case("short record named with terminal escapes", lambda marker: _record_name(marker, cut=10),
         r"need 48 bytes|holds 10"),
    Case("missing record named with terminal escapes", _missing_record_name, r"gone\\x1b\[2J\\r.*missing|not found"),
    Case("parameter name with terminal escapes", _parameter_name, r"dotted attribute path"),
    doc_case("graph input name with a forged valid line", _input_name, r"graph input name .* is not a value name \(an ASCII identifier"),
]


# ------------------------------------------------------------------ for the CLI tests

_UNSAFE_PRINTED = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def unsafe_printed(text: str, colour: bool = False) -> list[str]:
    """The characters of ``text`` a terminal should never get from a file: control characters
    other than the line end, U+2028/2029, bidi controls, lone surrogates. With ``colour``,
    the colour codes the CLI writes itself are allowed."""
    if colour:
        text = re.sub("\x1b\\[(?:0|1|2|31|32|33|34|36)m", "", text)
    return _UNSAFE_PRINTED.findall(text)


def hostile_archives(folder) -> dict[str, str]:
    """The archives of the terminal-escape cases above, written under ``folder``: name -> path."""
    out = {}
    for case in CASES[2:7]:
        path = os.path.join(str(folder), case.name.split()[0].replace("_", "-") + ".pt2")
        with open(path, "wb") as f:
            f.write(case.build(""))
        out[case.name] = path
    base = os.path.join(str(folder), "base.pt2")
    with open(base, "wb") as f:
        f.write(base_archive("small"))
    out["base"] = base
    return out

"""Files aimed at the HTML page of ``pt2serde view`` and ``diff --html`` (issue 16).

Every string the page shows comes from the file, so each case puts script and markup
break-outs into one of those fields of a real saved program: node names, call targets,
argument names and texts, ``nn_module_stack`` paths and types, stack traces, ``source_fn`` /
``torch_fn``, other metadata, weight names and the record a weight is stored in, extra-file
names, signature targets, program names, symbol names (the expression grammar refuses them:
they show as notes), ``torch_version``, and (in :func:`hostile_view_archives`) the page's title,
the file's own name.

The red team's amplifiers (issue 16's report) are cases too, at small sizes, and their builders
take a size (``tests/cli/test_view_model.py`` builds them at two and checks that the page grows
linearly with the archive's JSON): one long label read by many nodes, one value listed many times
as a node's outputs, many weights viewing one storage, and range bounds past 2**53 and 1e308.

``load`` refuses most of them (the name gates); the runner takes each through every entry
point, ``view`` and ``diff --html`` included (exit 0 or 2, no traceback). The page's own test
(``tests/browser``) renders :func:`hostile_view_archives` in a real browser and checks that no
script ran (``window.__pwned`` stays unset).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

from cases_cli import renamed_parameter
from everywhere import TESTS, Case, base_archive, doc_case, document_of, with_document

sys.path.insert(0, str(TESTS))
import test_hostile_archives as H  # noqa: E402
from pt2serde.format.archive import ArchiveReader  # noqa: E402

#: the break-outs of an HTML page: a script element, a script closed early, an event handler,
#: attribute break-outs with either quote, a javascript: URL, a line separator (ends a JS
#: string in old engines), a comment and a CDATA end; each sets ``window.__pwned`` if it runs
BREAKOUTS = (
    "<script>window.__pwned=1</script>",
    "</script><script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    '" onmouseover="window.__pwned=1',
    "' autofocus onfocus='window.__pwned=1",
    "javascript:window.__pwned=1",
    "\u2028",
    "<!--",
    "]]>",
)
HOSTILE = "".join(BREAKOUTS)
#: the same without what a comment field may not hold (a line separator): such a file loads
LOADABLE = HOSTILE.replace("\u2028", "")
#: the same without ``/`` (a program name and a file name are one path part)
NO_SLASH = HOSTILE.replace("/", "|")


def _nodes(doc: dict) -> list[dict]:
    return doc["graph_module"]["graph"]["nodes"]


def _node_name(doc: dict, marker: str) -> None:
    _nodes(doc)[0]["name"] = HOSTILE


def _target(doc: dict, marker: str) -> None:
    _nodes(doc)[0]["target"] = "torch.ops.aten." + HOSTILE


def _argument(doc: dict, marker: str) -> None:
    node = _nodes(doc)[-1]
    node["inputs"].append({"name": HOSTILE, "arg": {"as_string": HOSTILE}, "kind": 2})


def _module_stack(doc: dict, marker: str) -> None:
    for node in _nodes(doc):
        node["metadata"]["nn_module_stack"] = f"L__self__,,m.Small;L__self___x,{NO_SLASH},{HOSTILE}"


def _comments(text: str):
    def mutate(doc: dict, marker: str) -> None:
        for node in _nodes(doc):
            node["metadata"].update(stack_trace=f'File "{text}", line 1, in forward\n    {text}\n',
                                    source_fn_stack=f"{text},{text}", torch_fn=f"{text};{text}")
    return mutate


def _other_metadata(doc: dict, marker: str) -> None:
    for node in _nodes(doc):
        node["metadata"][HOSTILE] = HOSTILE


def _torch_version(doc: dict, marker: str) -> None:
    doc["torch_version"] = HOSTILE


def _signature_target(doc: dict, marker: str) -> None:
    for spec in doc["graph_module"]["signature"]["input_specs"]:
        if "buffer" in spec:
            spec["buffer"]["buffer_name"] = HOSTILE


def _symbols(doc: dict, marker: str) -> None:
    doc["range_constraints"][HOSTILE] = {"min_val": 2, "max_val": 8}
    graph = doc["graph_module"]["graph"]
    x = graph["inputs"][-1]["as_tensor"]["name"]
    graph["tensor_values"][x]["sizes"][0] = {"as_expr": {"expr_str": HOSTILE, "hint": {"as_int": 2}}}


def _weight_record(marker: str) -> bytes:
    """The record parameter ``w`` is stored in, named with the break-outs (a well-formed archive)."""
    base = base_archive("small")
    cfg = H.read_json(base, H.WEIGHTS)
    old = cfg["config"]["w"]["path_name"]
    cfg["config"]["w"]["path_name"] = new = old + HOSTILE
    reader = ArchiveReader(base)
    data = reader.read(f"{reader.root_folder()}/data/weights/{old}")
    return H.rewrite(base, replace={H.WEIGHTS: json.dumps(cfg).encode()}, drop=(f"data/weights/{old}",),
                     add={f"data/weights/{new}": data})


def _extra_files(marker: str) -> bytes:
    return H.rewrite(base_archive("small"), add={f"extra/{HOSTILE}": HOSTILE.encode(),
                                                 f"extra/{NO_SLASH}.txt": b"x"})


def _program_name(marker: str) -> bytes:
    """A second program: a copy of ``model`` under a name holding the break-outs, in every
    record that carries its name (``load`` reads ``model``, ``load_all`` both)."""
    base = base_archive("small")
    reader = ArchiveReader(base)
    root = reader.root_folder()
    renamed = {}
    for name in reader.names():
        rel = name[len(root) + 1:]
        for template in ("models/{m}.json", "data/weights/{m}_weights_config.json",
                         "data/constants/{m}_constants_config.json", "data/sample_inputs/{m}.pt"):
            if rel == template.format(m="model"):
                renamed[rel] = template.format(m=NO_SLASH)
    return H.rewrite(base, add={new: reader.read(f"{root}/{old}") for old, new in renamed.items()})


def shared_label_archive(dims: int, readers: int) -> bytes:
    """``x`` viewed as ``big`` of ``dims`` dimensions ``[8, 1, 1, ...]``, read by ``readers`` more
    ``sum`` nodes: one long label, many edges (valid; torch runs it up to 64 dimensions)."""
    data = base_archive("small")
    doc = document_of(data)
    g = doc["graph_module"]["graph"]
    shape = [8] + [1] * (dims - 1)
    view = copy.deepcopy(g["nodes"][2])
    view.update(name="big", target="torch.ops.aten.view.default", outputs=[{"as_tensor": {"name": "big"}}],
                inputs=[{"name": "self", "arg": {"as_tensor": {"name": "x"}}, "kind": 1},
                        {"name": "size", "arg": {"as_ints": shape}, "kind": 1}])
    g["tensor_values"]["big"] = dict(g["tensor_values"]["x"], sizes=[{"as_int": n} for n in shape],
                                     strides=[{"as_int": 1}] * dims)
    g["nodes"].append(view)
    for i in range(readers):
        node = copy.deepcopy(g["nodes"][2])
        node["name"] = f"r{i}"
        node["inputs"][0]["arg"] = {"as_tensor": {"name": "big"}}
        node["outputs"] = [{"as_tensor": {"name": f"r{i}"}}]
        g["tensor_values"][f"r{i}"] = g["tensor_values"]["sum_1"]
        g["nodes"].append(node)
    return with_document(data, doc)


def repeated_output_archive(dims: int, times: int) -> bytes:
    """Value ``t`` with ``dims`` dimensions, listed ``times`` times as the outputs of one node (invalid)."""
    data = base_archive("small")
    doc = document_of(data)
    g = doc["graph_module"]["graph"]
    g["tensor_values"]["t"].update(sizes=[{"as_int": 1}] * dims, strides=[{"as_int": 1}] * dims)
    g["nodes"][0]["outputs"] = [{"as_tensors": [{"name": "t"}] * times}]
    return with_document(data, doc)


def shared_storage_archive(entries: int) -> bytes:
    """``entries`` more buffers (80-character names) viewing the storage of parameter ``w`` (valid)."""
    data = base_archive("small")
    cfg = H.read_json(data, H.WEIGHTS)
    for i in range(entries):
        cfg["config"][f"{'x' * 80}_{i}"] = dict(cfg["config"]["w"], is_param=False)
    return H.rewrite(data, replace={H.WEIGHTS: json.dumps(cfg).encode()})


#: range bounds a JavaScript number does not hold: 2**53 + 1 (rounds) and 10**400 (overflows)
LARGE_BOUNDS = (2**53 + 1, 10**400)


def large_bounds(doc: dict, marker: str) -> None:
    """Symbol ``s77``'s range set to :data:`LARGE_BOUNDS` (valid: a range may be any integers)."""
    doc["range_constraints"]["s77"] = {"min_val": LARGE_BOUNDS[0], "max_val": LARGE_BOUNDS[1]}


#: the break-outs, field by field (the browser test draws each and clicks every box)
BREAKOUT_CASES = [
    doc_case("node name with HTML break-outs", _node_name, r"node name .* is not a value name"),
    doc_case("call target with HTML break-outs", _target, r"call target .* is not an operator name"),
    # validate does not know aten.add's schema (torch-free): an argument it lacks is load's finding
    doc_case("argument name and text with HTML break-outs", _argument,
             r"Failed deserializing node add \(torch\.ops\.aten\.add\.Tensor\): arguments", validate="environment"),
    doc_case("nn_module_stack path and type with HTML break-outs", _module_stack, r"nn_module_stack path .* is not a dotted attribute"),
    doc_case("stack trace, source_fn and torch_fn with HTML break-outs", _comments(LOADABLE), None),
    doc_case("stack trace with a line separator", _comments(HOSTILE), r"stack trace .* is not text without control"),
    doc_case("other metadata with HTML break-outs", _other_metadata, None),
    doc_case("torch_version with HTML break-outs", _torch_version, None),
    doc_case("buffer name with HTML break-outs", _signature_target, r"buffer name .* is not a dotted attribute"),
    doc_case("symbol name and size with HTML break-outs", _symbols, r"invalid symbolic expression: unexpected character '<'"),
    Case("weight name with HTML break-outs", lambda marker: renamed_parameter(HOSTILE), r"parameter name .* is not a dotted attribute"),
    Case("weight record named with HTML break-outs", _weight_record, r"entry 'w' names an invalid record"),
    Case("extra file names with HTML break-outs", _extra_files, None),
    Case("program name with HTML break-outs", _program_name, None),
]
#: the red team's amplifiers, small (the page's size is tested in tests/cli/test_view_model.py)
AMPLIFIER_CASES = [
    Case("one long label read by many nodes", lambda marker: shared_label_archive(64, 200), None),
    Case("one value listed many times as a node's outputs", lambda marker: repeated_output_archive(200, 500),
         r"Node t has already been deserialized before"),
    Case("many weights viewing one storage", lambda marker: shared_storage_archive(200), None),
    # the bounds leave out the hint (4): load refuses the program (expr_hints), view and diff still draw it
    doc_case("range bounds past 2**53 and 1e308", large_bounds,
             r"the hint 4 of symbol s77 is outside its range \[9007199254740993, 1000000000000\.\.\. \(401 digits\)\]",
             base="dynamic"),
]
CASES = BREAKOUT_CASES + AMPLIFIER_CASES


def hostile_view_archives(folder) -> list[Path]:
    """Every break-out case written under ``folder``, plus the unmodified base saved under a file
    name holding the break-outs (the page's title): the archives whose pages must run no script.
    A page is drawn for each whose document decodes (``pt2serde view`` exits 0)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, case in enumerate(BREAKOUT_CASES):
        path = folder / f"view-{i:02d}.pt2"
        path.write_bytes(case.build(os.devnull))
        out.append(path)
    titled = folder / f"{NO_SLASH}.pt2"
    titled.write_bytes(base_archive("small"))
    out.append(titled)
    return out

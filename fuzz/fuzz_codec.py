"""Fuzz the readers of JSON documents: ``codec.loads_json``/``from_dict``/``from_json_bytes``
for every schema type, the upgrade path (``upgrade.program_from_json`` -> ``decode_program``,
whatever version rules and upgraders it holds), ``check.check_document`` (what ``pt2serde
validate`` runs), and the two string languages documents carry: ``treespec.loads`` (the
``in_spec``/``out_spec`` of the module call graph) and ``exprparse.ExprParser.parse``
(every ``expr_str``).

Input: one selector byte, then the document (or string) bytes.
Run: ``python fuzz/fuzz_codec.py -max_total_time=60`` (see ``fuzz/_common.py``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

NAME = "codec"
MAX_LEN = 1 << 17
INPUT_TIMEOUT = 10.0
FORBID_CODE = True

_common.import_pt2serde()

from pt2serde.format import check, codec, upgrade

from pt2serde import SerializeError, schema

from pt2serde.bridge import treespec  # noqa: E402
from pt2serde.wire import Union  # noqa: E402
from pt2serde.format.schema_decoder import collect_problems  # noqa: E402
from pt2serde.bridge.expr import ExprParser  # noqa: E402

CLASSES = sorted(
    [getattr(schema, n) for n in dir(schema)
     if isinstance(getattr(schema, n), type)
     and (dataclasses.is_dataclass(getattr(schema, n)) or (issubclass(getattr(schema, n), Union)
                                                         and getattr(schema, n) is not Union))],
    key=lambda c: c.__name__,
)

MODES = ("program", "program", "program", "validate", "from_dict", "treespec", "expr", "unknown_fields")


def _program_both_ways(body: bytes) -> None:
    """``upgrade.program_from_json``, and its counted read (no duplicate-key hook) against the
    careful one: the counted read must give the careful result or ``None``, never accept a
    document the careful read refuses (a duplicate key above all)."""
    fast = upgrade.program_from_json_counted(body)
    try:
        careful = upgrade.decode_program(codec.loads_json(body, nonfinite=[]))
    except SerializeError:
        careful = None
    if fast is not None and fast[1] != careful:
        raise AssertionError(f"the counted read accepted a document the careful read "
                             f"{'refuses' if careful is None else 'reads differently'}")
    upgrade.program_from_json(body)


def target(data: bytes) -> None:
    if not data:
        return
    mode = MODES[data[0] % len(MODES)]
    body = data[1:]
    if mode == "program":
        _program_both_ways(body)
    elif mode == "validate":
        raw = codec.loads_json(body)
        check.check_document(raw)
    elif mode == "from_dict":
        if not body:
            return
        cls = CLASSES[body[0] % len(CLASSES)]
        codec.from_json_bytes(cls, body[1:])
    elif mode == "unknown_fields":
        collect_problems(schema.ExportedProgram, codec.loads_json(body), unknown_fields=True)
    else:
        text = body.decode("utf-8", "surrogatepass") if _utf8(body) else body.decode("latin-1")
        if mode == "treespec":
            treespec.loads(text)
        else:
            result = ExprParser().parse(text)
            str(result)  # printing a parsed expression must work too (the CLI shows them)


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8", "surrogatepass")
        return True
    except UnicodeDecodeError:
        return False


def _strings(value, key: str, out: set) -> None:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k, x in v.items():
                if k == key and isinstance(x, str):
                    out.add(x)
                else:
                    stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)


def seeds():
    documents, configs = [], []
    for path in _common.corpus_archives():
        records = _common.zip_records(path.read_bytes()) or []
        for name, data in records:
            if name.endswith(".json") and ("/models/" in name or name.endswith("serialized_exported_program.json")):
                documents.append(data)
            elif name.endswith("_config.json"):
                configs.append(data)
    for archive in _common.saved_archives():
        for name, data in _common.zip_records(archive) or []:
            if name.endswith(".json"):
                (configs if "_config" in name else documents).append(data)
    documents = sorted(set(documents), key=len)
    exprs, specs = set(), set()
    for doc in documents:
        raw = json.loads(doc)
        _strings(raw, "expr_str", exprs)
        _strings(raw, "in_spec", specs)
        _strings(raw, "out_spec", specs)
    rng = random.Random(0)
    small_docs = [d for d in documents if len(d) < MAX_LEN - 1]
    for doc in small_docs[::3] + small_docs[-3:]:
        yield bytes([0]) + doc
    for doc in rng.sample(small_docs, min(8, len(small_docs))):
        yield bytes([3]) + doc
        raw = json.loads(doc)
        for major, minor in ((0, 0), (7, 3), (8, 2), (8, 5), (8, 99), (9, 0)):
            raw["schema_version"] = {"major": major, "minor": minor}
            yield bytes([0]) + json.dumps(raw).encode()
    names = [c.__name__ for c in CLASSES]
    for cfg in sorted(set(configs), key=len)[:10]:
        yield bytes([4, names.index("PayloadConfig")]) + cfg
    for name, sample in (("TensorMeta", '{"dtype": 7, "sizes": [{"as_int": 3}], "requires_grad": false, '
                                        '"device": {"type": "cpu", "index": null}, "strides": [{"as_int": 1}], '
                                        '"storage_offset": {"as_int": 0}, "layout": 7}'),
                         ("Argument", '{"as_tensors": [{"name": "x"}]}'),
                         ("RangeConstraint", '{"min_val": 2, "max_val": 9223372036854775807}')):
        yield bytes([4, names.index(name)]) + sample.encode()
    for text in sorted(exprs, key=len)[:200]:
        yield bytes([6]) + text.encode()
    for text in ("Max(1, Symbol('s0', integer=True, positive=True))", "Piecewise((Integer(1), Eq(Symbol('s0'), 1)), (Integer(2), True))",
                 "Pow(Integer(2), Integer(10))", "Float('1.5', precision=53)", "Rational(1, 3)", "-oo", "int_oo",
                 "FloorDiv(Symbol('s1', integer=True), Integer(2))", "Mod(Symbol('u0', integer=True), Integer(3))"):
        yield bytes([6]) + text.encode()
    for text in sorted(specs, key=len)[:100]:
        yield bytes([5]) + text.encode()
    yield bytes([5]) + b'[1, {"type": "collections.defaultdict", "context": {"default_factory_module": "builtins", ' \
                       b'"default_factory_name": "list", "dict_context": ["a"]}, "children_spec": ' \
                       b'[{"type": null, "context": null, "children_spec": []}]}]'
    yield bytes([7]) + (small_docs[0] if small_docs else b"{}")
    yield bytes([0]) + b"[" * 5000 + b"]" * 5000
    yield bytes([0]) + b'{"schema_version": {"major": 8, "minor": 20}, "x": ' + b"9" * 5000 + b"}"


if __name__ == "__main__":
    _common.ignore_warnings()
    _common.main(sys.modules[__name__])

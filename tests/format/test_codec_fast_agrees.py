"""The generated fast decoder (``pt2serde.format.fastcodec``) agrees with the careful one (``schema_decoder``).

``from_dict`` tries the exec-generated fast path first and, on any exception, re-runs the
careful decoder, which explains the problem with a ``$.path``. That is only sound if the
fast path never accepts what the careful decoder refuses and never decodes a document
differently. These tests check it on documents generated from the schema's own type
annotations (valid ones, and valid ones with exactly one mutation), and on every program
and payload-config document of the compat corpus.
"""

from __future__ import annotations

import copy
import dataclasses
import glob
import json
import math
import os
import typing
import zipfile
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compat import CORPUS_DIR
from pt2serde import SerializeError, from_dict, schema
from pt2serde.format import codec
from pt2serde.format.fastcodec import MAX_NESTING, RECURSIVE_MEMBERS, fast_counting_decoder, fast_decoder
from pt2serde.format.schema_decoder import collect_problems, strict_decoder
from pt2serde.format.strict_json import ColonCount
from pt2serde.wire import Union
from pt2serde.errors import WireError
from pt2serde.format.upgrade import upgrade

#: Deterministic in CI: the same examples on every run (no example database either).
SETTINGS = settings(
    derandomize=True, database=None, deadline=None, max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Top-level types: ExportedProgram itself, and its sub-types so that those get examples of their own.
TOP_TYPES = [
    schema.ExportedProgram, schema.GraphModule, schema.Graph, schema.Node, schema.NamedArgument,
    schema.Argument, schema.TensorMeta, schema.SymInt, schema.SymExpr, schema.GraphSignature,
    schema.InputSpec, schema.OutputSpec, schema.ModuleCallEntry, schema.RangeConstraint,
    schema.ConstantValue, schema.Device, schema.PayloadConfig,
]

MAX_DEPTH = 1  # nested subgraphs / dict arguments in generated documents (the decoders allow 64)
_NONFINITE = ("NaN", "Infinity", "-Infinity")
_INT_MAX = 10**codec.MAX_INT_DIGITS - 1  # the largest int the wire format allows


# ------------------------------------------------------------------ type helpers


def _optional_of(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, __import__("types").UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return None


def _is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, IntEnum)


def _is_union(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Union)


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _required(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


# ------------------------------------------------------------ valid documents


INTS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**64, _INT_MAX, -_INT_MAX]),
)
FLOATS = st.one_of(
    st.floats(),  # NaN, +-Infinity, -0.0 and subnormals included (a Python caller may pass them)
    st.sampled_from([*_NONFINITE, -0.0, 5e-324, 1.7976931348623157e308]),  # as PyTorch's JSON writes them
    st.integers(-(2**60), 2**60),  # JSON `1` for a float field
    st.just(2**1023),
)
STRS = st.one_of(st.text(max_size=8), st.sampled_from(["", "é", "\x00", "😀", "\ud800", "a.b[0]", "NaN"]))
KEYS = st.one_of(st.text(max_size=6), st.sampled_from(["", "x", "ü"]))

_cache: dict[tuple[Any, int], st.SearchStrategy] = {}


def valid(tp: Any, depth: int = 0) -> st.SearchStrategy:
    """Valid JSON-decoded values of the schema type ``tp``, built from its annotations."""
    key = (tp, depth)
    if key not in _cache:
        _cache[key] = st.deferred(lambda: _build(tp, depth))
    return _cache[key]


def _build(tp: Any, depth: int) -> st.SearchStrategy:
    if tp is int:
        return INTS
    if tp is float:
        return FLOATS
    if tp is str:
        return STRS
    if tp is bool:
        return st.booleans()
    inner = _optional_of(tp)
    if inner is not None:
        return st.one_of(st.none(), valid(inner, depth))
    origin = typing.get_origin(tp)
    if origin is list:
        (elem,) = typing.get_args(tp)
        return st.lists(valid(elem, depth), max_size=3)
    if origin is dict:
        _, val = typing.get_args(tp)
        return st.dictionaries(KEYS, valid(val, depth), max_size=3)
    if _is_enum(tp):
        return st.sampled_from([int(m) for m in tp])
    if _is_union(tp):
        hints = _hints(tp)
        options = []
        for member in tp.MEMBERS:
            recursive = (tp.__name__, member) in RECURSIVE_MEMBERS
            if recursive and depth >= MAX_DEPTH:
                continue
            if member == "as_none":
                payload = st.sampled_from([True, []])  # old writers stored `[]`
            else:
                payload = valid(hints[member], depth + recursive)
            options.append(st.builds(lambda p, m=member: {m: p}, payload))
        return st.one_of(options)
    if _is_struct(tp):
        hints = _hints(tp)
        required = set(_required(tp))
        return st.fixed_dictionaries(
            {f.name: valid(hints[f.name], depth) for f in dataclasses.fields(tp) if f.name in required},
            optional={f.name: valid(hints[f.name], depth) for f in dataclasses.fields(tp) if f.name not in required},
        )
    raise TypeError(f"no strategy for {tp!r}")


# ---------------------------------------------------------------- mutations


@dataclasses.dataclass
class Site:
    """One value of a document: where it is (keys and indices from the root) and its type."""

    path: list
    tp: Any
    value: Any


def sites(value: Any, tp: Any, path: list | None = None) -> list[Site]:
    """Every value of a valid document ``value`` of type ``tp``, outermost first."""
    path = [] if path is None else path
    out = [Site(path, tp, value)]
    inner = _optional_of(tp)
    if inner is not None:
        if value is None:
            return out
        tp = inner
    origin = typing.get_origin(tp)
    if origin is list:
        (elem,) = typing.get_args(tp)
        for i, x in enumerate(value):
            out += sites(x, elem, path + [i])
    elif origin is dict:
        _, val = typing.get_args(tp)
        for k, x in value.items():
            out += sites(x, val, path + [k])
    elif _is_union(tp):
        ((tag, payload),) = value.items()
        if tag != "as_none":  # its payload carries nothing: any value is accepted
            out += sites(payload, _hints(tp)[tag], path + [tag])
    elif _is_struct(tp):
        hints = _hints(tp)
        for name, x in value.items():
            out += sites(x, hints[name], path + [name])
    return out


#: Replacement values for "wrong type" mutations; each is used only where it is wrong.
POOL = [None, True, False, 0, 3, 1.5, -0.0, "x", "NaN", [], (), {}, {"x": 1}, schema.ScalarType.FLOAT, b"1"]


def refused_here(tp: Any, c: Any) -> bool:
    """Whether the careful decoder refuses ``c`` (from POOL) as a ``tp``, at this very place."""
    inner = _optional_of(tp)
    if inner is not None:
        return c is not None and refused_here(inner, c)
    if tp in (int, str, bool):
        return type(c) is not tp
    if tp is float:
        return not (type(c) in (int, float) or (type(c) is str and c in _NONFINITE))
    if _is_enum(tp):
        return not (type(c) is int and c in {int(m) for m in tp})
    origin = typing.get_origin(tp)
    if origin is list:
        return type(c) is not list
    if origin is dict:
        return type(c) is not dict
    if _is_union(tp):
        return type(c) is not dict or len(c) != 1 or next(iter(c)) not in tp.MEMBERS
    if _is_struct(tp):
        return type(c) is not dict or any(f not in c for f in _required(tp))
    raise TypeError(tp)


def mutations(site: Site) -> list[tuple[str, str, Any]]:
    """(kind, what, new value) of every one-place mutation of ``site`` that must be refused there."""
    tp, v = site.tp, site.value
    out = [("wrong type", f"wrong type {c!r}", c) for c in POOL if refused_here(tp, c)]
    tp = _optional_of(tp) or tp
    if v is None:
        return out
    if tp is int or _is_enum(tp):
        out += [("bool for int", "bool for int", b) for b in (True, False)]
        out += [("giant int", "int of 4301 digits", n) for n in (_INT_MAX + 1, -_INT_MAX - 1)]
    if tp is float:
        out += [("float out of range", "int out of float range", 2**1024)]
        out += [("bad float string", f"float as string {x!r}", x) for x in ("nan", "inf", "1.0", "Inf")]
    if _is_enum(tp):
        out += [("enum out of range", f"{tp.__name__} value {n}", n) for n in (max(map(int, tp)) + 1, -1)]
    if _is_union(tp):
        ((tag, payload),) = v.items()
        other = next(m for m in tp.MEMBERS if m != tag)
        out += [("bad union tag", "unknown union tag", {"as_bogus": payload}),
                ("bad union tag", "tag in another case", {tag.upper(): payload}),
                ("two union keys", "two union keys", {tag: payload, other: payload}),
                ("two union keys", "two union keys", {other: payload, tag: payload}),
                ("no union key", "no union key", {})]
    if _is_struct(tp):
        out += [("missing field", f"missing required field {name}", {k: x for k, x in v.items() if k != name})
                for name in _required(tp)]
    if typing.get_origin(tp) is dict:
        out += [("non-str key", "non-str key", {**v, 1: next(iter(v.values()), None)})]
    return out


def replaced(doc: Any, path: list, new: Any) -> Any:
    """A deep copy of ``doc`` with the value at ``path`` replaced by ``new``."""
    if not path:
        return new
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return doc


def wire_path(path: list) -> str:
    return "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path)


# ------------------------------------------------------------------- comparing


def difference(a: Any, b: Any, where: str = "$") -> str | None:
    """Where two decoded values differ (None if they are the same): types, NaN and -0.0 included."""
    if type(a) is not type(b):
        return f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, float):
        same = (a != a and b != b) or (a == b and math.copysign(1.0, a) == math.copysign(1.0, b))
        return None if same else f"{where}: {a!r} vs {b!r}"
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} vs {len(b)} items"
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := difference(x, y, f"{where}[{i}]"))), None)
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{where}: keys {list(a)} vs {list(b)}"
        return next((d for k in a if (d := difference(a[k], b[k], f"{where}.{k}"))), None)
    if isinstance(a, Union):
        if a.type != b.type:
            return f"{where}: member {a.type} vs {b.type}"
        return difference(a.value, b.value, f"{where}.{a.type}")
    if dataclasses.is_dataclass(a):
        return next((d for f in dataclasses.fields(a)
                     if (d := difference(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}"))), None)
    return None if a == b else f"{where}: {a!r} vs {b!r}"


def careful(cls: type, doc: Any) -> Any:
    return strict_decoder(cls)(doc)


def assert_both_decode_the_same(cls: type, doc: Any) -> Any:
    """The fast path accepts ``doc`` and decodes it exactly as the careful decoder does."""
    expected = careful(cls, doc)
    collected = collect_problems(cls, doc)
    assert collected.problems == [] and difference(collected.value, expected) is None
    got = fast_decoder(cls)(doc)
    diff = difference(got, expected)
    assert diff is None, f"fast and careful {cls.__name__} decoders differ at {diff}"
    # the counting variant (load's first try) decodes the same, and never counts more members
    # and colons than the JSON text has colons: that would let it miss a duplicate key
    count = ColonCount()
    counted = fast_counting_decoder(cls)(doc, count)
    assert difference(counted, expected) is None
    assert count.members + count.colons <= json.dumps(doc).count(":")
    public = from_dict(cls, doc)
    assert difference(public, expected) is None
    return expected


def assert_both_refuse(cls: type, doc: Any, path: str, what: str) -> None:
    """The careful decoder refuses ``doc`` at ``path``; the fast path refuses it too; users get
    the careful decoder's ``SerializeError`` with that path."""
    with pytest.raises(WireError) as careful_error:
        careful(cls, doc)
    assert careful_error.value.path == path, f"{what}: careful decoder blames {careful_error.value.path}"
    try:
        got = fast_decoder(cls)(doc)
    except Exception:  # noqa: BLE001 - the fast path may raise anything; from_dict explains
        pass
    else:
        raise AssertionError(f"{what} at {path}: the fast {cls.__name__} decoder accepted it, "
                             f"the careful one refuses ({careful_error.value}); fast path gave a {type(got).__name__}")
    with pytest.raises(Exception):  # noqa: B017 - as the fast path: anything, then the careful path explains
        fast_counting_decoder(cls)(doc, ColonCount())
    with pytest.raises(SerializeError) as public_error:
        from_dict(cls, doc)
    message = str(public_error.value)
    assert message.endswith(f" - at `{path}`") and message == str(careful_error.value), message
    # validate's collect-all mode of the same walker finds it first (walking on, it may find
    # more: a struct replaced by `{}` misses every required field), worded the same
    collected = collect_problems(cls, doc)
    assert collected.problems[0] == (careful_error.value.message, path) and collected.value is None, what


# ----------------------------------------------------------------------- tests


@pytest.mark.parametrize("cls", TOP_TYPES, ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_fast_path_decodes_valid_documents_as_the_careful_decoder_does(cls, data):
    doc = data.draw(valid(cls), label="document")
    expected = assert_both_decode_the_same(cls, doc)
    # unknown object keys are ignored (forward compatibility), by both paths alike
    structs = [s for s in sites(doc, cls) if s.value is not None and _is_struct(_optional_of(s.tp) or s.tp)]
    site = data.draw(st.sampled_from(structs), label="struct given an unknown key") if structs else None
    if site is not None:
        extra = replaced(doc, site.path, {**site.value, "field_from_the_future": {"as_bogus": [1]}})
        decoded = assert_both_decode_the_same(cls, extra)
        assert difference(decoded, expected) is None


@pytest.mark.parametrize("cls", TOP_TYPES, ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_fast_path_refuses_what_the_careful_decoder_refuses(cls, data):
    doc = data.draw(valid(cls), label="document")
    options = [(kind, site, what, new) for site in sites(doc, cls) for kind, what, new in mutations(site)]
    # every kind of mutation the document allows is as likely as any other, wherever it applies
    kind = data.draw(st.sampled_from(sorted({o[0] for o in options})), label="kind")
    _, site, what, new = data.draw(st.sampled_from([o for o in options if o[0] == kind]), label="mutation")
    assert_both_refuse(cls, replaced(doc, site.path, new), wire_path(site.path), what)


def _nested_dict_arguments(levels: int) -> dict:
    arg: dict = {"as_int": 1}
    for _ in range(levels):
        arg = {"as_string_to_argument": {"k": arg}}
    return arg


def test_nesting_limit_is_the_same_both_ways():
    assert_both_decode_the_same(schema.Argument, _nested_dict_arguments(MAX_NESTING))
    too_deep = _nested_dict_arguments(MAX_NESTING + 1)
    assert_both_refuse(schema.Argument, too_deep, wire_path(["as_string_to_argument", "k"] * MAX_NESTING + ["as_string_to_argument"]),
                       "nesting over the limit")
    # the fast path's depth counter is restored after it gave up
    assert_both_decode_the_same(schema.Argument, _nested_dict_arguments(MAX_NESTING))


# ------------------------------------------------------------ the compat corpus


def _corpus_documents(writer: str) -> list[tuple[str, type, Any]]:
    """(archive/member, schema type, raw JSON) of every schema document a writer's archives hold."""
    out = []
    for archive in sorted(glob.glob(os.path.join(CORPUS_DIR, writer, "*.pt2"))):
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                if member.endswith("serialized_exported_program.json") or "/models/" in member:
                    cls = schema.ExportedProgram
                elif member.endswith("_config.json") and "/data/" in member:
                    cls = schema.PayloadConfig
                else:
                    continue
                raw = codec.loads_json(z.read(member), nonfinite=[])
                out.append((f"{os.path.basename(archive)}:{member}", cls, raw))
    return out


WRITERS = sorted(d for d in os.listdir(CORPUS_DIR) if os.path.isfile(os.path.join(CORPUS_DIR, d, "manifest.json")))


@pytest.mark.parametrize("writer", WRITERS)
def test_corpus_documents_decode_the_same_both_ways(writer):
    documents = _corpus_documents(writer)
    assert documents, f"no documents in {CORPUS_DIR}/{writer}"
    programs = 0
    for name, cls, raw in documents:
        # as written (documents of older schemas may be refused: then by both paths alike) ...
        try:
            careful(cls, raw)
        except WireError as e:
            assert_both_refuse(cls, raw, e.path, name)
        else:
            assert_both_decode_the_same(cls, raw)
        # ... and as load reads it, upgraded to the current schema: it decodes, identically both ways
        if cls is schema.ExportedProgram:
            upgrade(raw)
            programs += 1
        assert_both_decode_the_same(cls, raw)
    assert programs, f"no program documents in {CORPUS_DIR}/{writer}"


def test_fast_decoder_passes_fields_by_keyword_where_a_struct_needs_it():
    """The generated decoders call a struct's constructor with positional arguments in field
    order (every wire struct allows it); a struct whose fields are not all positional
    parameters gets them by keyword, so no value lands in the wrong field."""
    from pt2serde.format import fastcodec

    @dataclasses.dataclass
    class Mixed:
        a: int
        b: str
        c: int = dataclasses.field(default=7, kw_only=True)

    @dataclasses.dataclass
    class Reordered:
        b: str = dataclasses.field(kw_only=True)
        a: int

    gen = fastcodec._Gen("decode")
    for cls, doc, expected in ((Mixed, {"a": 1, "b": "x", "c": 2}, Mixed(1, "x", c=2)),
                               (Mixed, {"a": 1, "b": "x"}, Mixed(1, "x")),
                               (Reordered, {"a": 1, "b": "x"}, Reordered(1, b="x"))):
        assert gen.ns[gen.function(cls)](doc) == expected
    positional = fastcodec.fast_decoder(schema.TensorArgument)
    assert positional({"name": "x"}) == schema.TensorArgument(name="x")

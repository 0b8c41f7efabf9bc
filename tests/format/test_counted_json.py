"""Program documents read without the per-object duplicate-key hook, keys proven unique by counting.

``upgrade.program_from_json_counted`` (``load`` and ``deserialize`` try it first) parses with no
``object_pairs_hook`` and lets the generated decoder count the members of the objects it reads
and the colons of the strings that carry them; ``strict_json.loads_json_counted`` accepts the
result only when that count is the text's count of ``:``. A duplicate key drops a member, so
such a document always falls back to ``loads_json``, which names the key. These tests check
that no duplicate key anywhere gets through, that nothing can inflate the count to hide one,
and that real documents do take the fast path (it is a third of the parse).
"""

from __future__ import annotations

import glob
import json
import os
import zipfile
from typing import Any

import pytest

from compat import CORPUS_DIR
from pt2serde import SerializeError, schema
from pt2serde.format import upgrade
from pt2serde.format.fastcodec import fast_counting_decoder
from pt2serde.format.strict_json import ColonCount, loads_json, loads_json_counted


def _documents(writer: str) -> list[tuple[str, bytes]]:
    out = []
    for archive in sorted(glob.glob(os.path.join(CORPUS_DIR, writer, "*.pt2"))):
        with zipfile.ZipFile(archive) as z:
            out += [(f"{os.path.basename(archive)}:{m}", z.read(m)) for m in z.namelist() if "/models/" in m]
    return out


CURRENT = _documents("2.13.0")  # the writer of the current schema version
SMALL = min(CURRENT, key=lambda d: len(d[1]))[1]


def _careful(text: bytes | str) -> schema.ExportedProgram:
    return upgrade.decode_program(loads_json(text, nonfinite=[]))


def _count(tree: Any) -> ColonCount:
    count = ColonCount()
    fast_counting_decoder(schema.ExportedProgram)(tree, count)
    return count


# -------------------------------------------------------------- the proof itself, on toy decoders


def _toy(tree: Any, count: ColonCount) -> Any:
    """Counts every object's members and every string's colons, like a full counting decoder."""
    stack = [tree]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            count.members += len(v)
            count.colons += "".join(v).count(":")
            stack += v.values()
        elif type(v) is list:
            stack += v
        elif type(v) is str:
            count.colons += v.count(":")
    return "decoded"


def test_a_toy_document_is_proven_and_a_duplicate_key_is_not():
    assert loads_json_counted('{"a": {"b:c": "d:e", "f": [1, {"g": 2}]}}', _toy) == (
        {"a": {"b:c": "d:e", "f": [1, {"g": 2}]}}, "decoded")
    for text in ('{"a": 1, "a": 2}', '{"x": [{"a": 1, "b": 2, "a": 3}]}', '{"a": {"b": 1}, "a": {"b": 1}}'):
        assert _toy(json.loads(text), count := ColonCount()) and count.members + count.colons < text.count(":")
        assert loads_json_counted(text, _toy) is None, text
        with pytest.raises(SerializeError, match="duplicate key 'a' in one object"):
            loads_json(text)


def test_what_the_decoder_skips_or_cannot_read_falls_back():
    def no_strings(tree, count):  # counts members only: a colon in a string is left uncounted
        count.members += len(tree)
        return tree

    assert loads_json_counted('{"a": "b", "c": 1}', no_strings) is not None
    assert loads_json_counted('{"a": "b:c"}', no_strings) is None
    assert loads_json_counted('{"a": {"b": 1}}', no_strings) is None  # an object it did not read

    def refuses(tree, count):
        raise ValueError("not this")

    assert loads_json_counted('{"a": 1}', refuses) is None
    # broken text, NaN tokens: loads_json says what is wrong (and which problem comes first)
    assert loads_json_counted('{"a": 1, "a": 2', _toy) is None
    assert loads_json_counted('{"a": NaN}', _toy) is None
    # the limits hold on this path too, with loads_json's own words
    with pytest.raises(SerializeError, match="over the limit of 10 bytes"):
        loads_json_counted('{"a": "0123456789"}', _toy, max_bytes=10)
    with pytest.raises(SerializeError, match="not valid UTF-8"):
        loads_json_counted(b'{"a": "\xff"}', _toy)


def test_an_escaped_colon_cannot_stand_in_for_a_dropped_member():
    """``\\u003a`` is a colon in the string but not in the text: counted, it would make up for a
    duplicate key's lost member. Any such escape takes the careful path."""
    text = '{"a": 1, "a": 2, "s": "\\u003a"}'
    count = ColonCount()
    _toy(json.loads(text), count)
    assert count.members + count.colons == text.count(":")  # the count alone is fooled ...
    assert loads_json_counted(text, _toy) is None  # ... the escape is not allowed to fool it
    assert loads_json_counted('{"s": "\\u003A"}', _toy) is None
    with pytest.raises(SerializeError, match="duplicate key 'a'"):
        loads_json(text)


# ----------------------------------------------------------------- real documents, the real decoder


def test_every_document_of_the_current_writer_takes_the_fast_path_and_reads_the_same():
    assert len(CURRENT) >= 30
    for name, text in CURRENT:
        fast = upgrade.program_from_json_counted(text)
        assert fast is not None, f"{name}: the counted read fell back"
        assert fast[1] == _careful(text), name
        assert fast[0] == json.loads(text), name  # the raw document, as written
        assert upgrade.program_from_json(text) == fast[1]


def test_older_documents_take_the_careful_path_and_read_as_before(monkeypatch):
    from pt2serde.format import strict_json

    older = _documents("2.9.1")
    assert older
    parses = []
    real = strict_json._parse
    monkeypatch.setattr(strict_json, "_parse", lambda text, what, nonfinite, hook: (
        parses.append(hook), real(text, what, nonfinite, hook))[1])
    for name, text in older:
        assert upgrade.program_from_json_counted(text) is None, name  # upgraded on the careful path
        assert upgrade.program_from_json(text) == _careful(text), name
    # their version shows in the text: they are not parsed a first time for nothing (red team)
    assert None not in parses and len(parses) == 2 * len(older)


def test_an_extension_op_target_takes_the_fast_path():
    tree = json.loads(SMALL)
    tree["graph_module"]["graph"]["nodes"][0]["target"] = "#my_namespace:my_op"
    text = json.dumps(tree)
    fast = upgrade.program_from_json_counted(text)
    assert fast is not None and fast[1] == _careful(text)


def _dumps_doubling(value: Any, target: int, counter: list[int]) -> str:
    """``json.dumps(value)``, except that non-empty object number ``target`` (in document order) writes
    its last member twice, first with the value null: the parser keeps the real one."""
    if type(value) is dict:
        index = counter[0]
        counter[0] += bool(value)  # objects with a member to double
        items = [f"{json.dumps(k)}: {_dumps_doubling(v, target, counter)}" for k, v in value.items()]
        if index == target and items:
            key = json.dumps(list(value)[-1])
            items.insert(len(items) - 1, f"{key}: null")
        return "{" + ", ".join(items) + "}"
    if type(value) is list:
        return "[" + ", ".join(_dumps_doubling(v, target, counter) for v in value) + "]"
    return json.dumps(value)


def test_a_duplicate_key_in_any_object_of_a_real_document_is_refused():
    tree = json.loads(SMALL)
    objects = [0]
    _dumps_doubling(tree, -1, objects)
    assert objects[0] > 50
    for i in range(objects[0]):
        text = _dumps_doubling(tree, i, [0])
        assert json.loads(text) == tree  # the duplicate is invisible once parsed
        assert upgrade.program_from_json_counted(text) is None, f"object {i}: duplicate key not noticed"
        with pytest.raises(SerializeError, match="duplicate key"):
            upgrade.program_from_json(text)


def test_a_duplicate_key_cannot_hide_behind_a_colon_in_a_counted_string():
    """A node's metadata string gains colons, escaped or written out, while an object loses a member."""
    tree = json.loads(SMALL)
    node = tree["graph_module"]["graph"]["nodes"][0]
    node["metadata"]["stack_trace"] = "x"
    text = _dumps_doubling(tree, 5, [0])
    assert upgrade.program_from_json_counted(text) is None
    escaped = text.replace('"stack_trace": "x"', '"stack_trace": "x\\u003a"')
    count = _count(json.loads(escaped))
    assert count.members + count.colons == escaped.count(":")  # the count balances ...
    assert upgrade.program_from_json_counted(escaped) is None  # ... and is still not believed
    with pytest.raises(SerializeError, match="duplicate key"):
        upgrade.program_from_json(escaped)
    written = text.replace('"stack_trace": "x"', '"stack_trace": "x:"')  # counted in the text too
    assert upgrade.program_from_json_counted(written) is None
    assert upgrade.program_from_json_counted(json.dumps(json.loads(written))) is not None


def test_colons_where_the_decoder_does_not_count_them_only_cost_time():
    renamed = json.loads(SMALL)
    renamed["graph_module"]["graph"]["nodes"][0]["name"] += ":x"  # (the code-field gate refuses it later)
    unread = json.loads(SMALL)
    unread["graph_module"]["field_from_the_future"] = {"a": {"b": 1}}  # an object no decoder reads
    for tree in (renamed, unread):
        text = json.dumps(tree)
        assert upgrade.program_from_json_counted(text) is None
        assert upgrade.program_from_json(text) == _careful(text)


_THREADS = r"""
import sys, threading
from pt2serde import schema
from pt2serde.format import upgrade
from pt2serde.format.fastcodec import fast_decoder
from pt2serde.format.strict_json import loads_json
text = open(sys.argv[1], encoding="utf-8").read()
raw = loads_json(text)
sys.setswitchinterval(1e-6)  # switch threads as often as possible
barrier = threading.Barrier(8)
results = []
def work():
    barrier.wait()
    for _ in range(20):
        results.append(upgrade.program_from_json_counted(text) is not None)
        try:
            fast_decoder(schema.ExportedProgram)(raw)
        except Exception as e:
            results.append(repr(e))
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(len(results), sorted(set(map(str, results))))
"""


def test_threads_that_first_need_a_decoder_all_get_it(tmp_path):
    """The decoders are generated on first use; a thread arriving while another generates them
    waits for the code instead of finding a name without it (and falling back: red team)."""
    import subprocess
    import sys

    doc = tmp_path / "doc.json"
    doc.write_bytes(SMALL)
    out = subprocess.run([sys.executable, "-c", _THREADS, str(doc)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split(None, 1) == ["160", "['True']\n"], out.stdout


def test_equal_symints_of_a_document_are_one_object():
    """The counted read builds each SymInt value once per document (a 5k-node program holds about
    40k SymInts of four values); the careful read builds one per occurrence."""
    text = max(CURRENT, key=lambda d: len(d[1]))[1]
    program = upgrade.program_from_json_counted(text)[1]
    metas = program.graph_module.graph.tensor_values.values()
    symints = [s for m in metas for s in (*m.sizes, *m.strides, m.storage_offset) if s.type == "as_int"]
    by_value: dict[int, set[int]] = {}
    for s in symints:
        by_value.setdefault(s.as_int, set()).add(id(s))
    assert len(symints) > 2 * len(by_value) and all(len(ids) == 1 for ids in by_value.values())
    assert len({id(s) for s in symints}) == len(by_value)
    careful = _careful(text).graph_module.graph.tensor_values.values()
    assert len({id(s) for m in careful for s in m.sizes}) > len(by_value)

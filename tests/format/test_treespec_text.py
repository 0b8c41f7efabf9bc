"""The torch-free shape check of treespec text (pt2serde.format.treespec_text) and the bridge reader
(pt2serde.bridge.treespec.loads) refuse the same texts: validate and load agree on module call graphs."""

from __future__ import annotations

import collections
import json

import pytest
import torch.utils._pytree as pytree

from pt2serde.bridge import treespec

from pt2serde.format import treespec_text
from pt2serde.errors import SerializeError

LEAF = {"type": None, "context": None, "children_spec": []}


def _spec(node) -> str:
    return json.dumps([1, node])


GOOD = [
    pytree.treespec_dumps(pytree.tree_structure(v), 1) for v in (
        ((1, 2), {"a": 3}), [1, {"k": (2, 3)}], collections.OrderedDict(a=1),
        collections.defaultdict(list, {"x": 1}), collections.deque([1, 2]), None)
]

BAD = {
    "not JSON": ("[1, {", r"treespec is not valid JSON"),
    "duplicate key": ('[1, {"type": null, "type": "builtins.tuple", "context": "null", "children_spec": []}]',
                      r"duplicate key 'type'"),
    "not a pair": ("[1]", r"not a JSON \[protocol, node\] pair"),
    "unknown protocol": (_spec(LEAF).replace("[1,", "[2,", 1), r"Unknown treespec protocol 2"),
    "extra node key": (_spec({**LEAF, "x": 1}), r"malformed treespec node"),
    "children not a list": (_spec({"type": "builtins.tuple", "context": "null", "children_spec": {}}),
                            r"children_spec must be a list"),
    "defaultdict factory os.system": (
        _spec({"type": "collections.defaultdict", "children_spec": [], "context": {
            "default_factory_module": "os", "default_factory_name": "system", "dict_context": []}}),
        r"treespec defaultdict factory os\.system is not an allowed container type"),
    "dict context not JSON": (_spec({"type": "builtins.dict", "context": "[", "children_spec": []}),
                              r"invalid treespec context for builtins\.dict"),
    "malformed enum": (_spec({"type": "builtins.dict", "context": '[{"__enum__": true, "fqn": 3}]',
                              "children_spec": [LEAF]}), r"malformed enum key"),
    "too deep": (None, r"nested too deeply"),
}


def _deep() -> str:
    node = LEAF
    for _ in range(treespec_text.MAX_DEPTH + 2):
        node = {"type": "builtins.list", "context": "null", "children_spec": [node]}
    return _spec(node)


@pytest.mark.parametrize("text", GOOD)
def test_real_specs_pass_both(text):
    assert treespec_text.problems(text) == []
    assert pytree.treespec_dumps(treespec.loads(text), 1) == text


@pytest.mark.parametrize("case", list(BAD))
def test_both_readers_refuse_with_the_same_words(case):
    text, message = BAD[case]
    text = _deep() if text is None else text
    found = treespec_text.problems(text)
    assert found and any(__import__("re").search(message, p) for p in found), found
    with pytest.raises(SerializeError, match=message):
        treespec.loads(text)


def test_unregistered_types_are_the_environments():
    """A type name pytree does not know in this process is for load to refuse; the text is fine."""
    text = _spec({"type": "my.Point", "context": "x", "children_spec": []})
    assert treespec_text.problems(text) == []
    with pytest.raises(SerializeError, match=r"pytree type 'my\.Point', which is not registered"):
        treespec.loads(text)


def test_recent_texts_are_remembered_within_bounds(monkeypatch):
    """One load reads each call spec several times; the answers for a text are computed once,
    every caller gets its own list of problems, and the memo stays within its bounds."""
    calls = []
    real = treespec_text._check_text
    monkeypatch.setattr(treespec_text, "_check_text", lambda text: calls.append(text) or real(text))
    monkeypatch.setattr(treespec_text, "_memo", {})
    bad, message = BAD["defaultdict factory os.system"]
    for text in (GOOD[0], bad):
        first = treespec_text.problems(text)
        first.append("changed by a caller")
        assert treespec_text.problems(text) == real(text)[0]
        assert treespec_text.leaf_count(text) == (None if text is bad else 3)
    assert calls == [GOOD[0], bad]
    with pytest.raises(SerializeError, match=message):
        treespec_text.check(bad)  # a remembered problem still refuses
    many = [_spec({"type": "builtins.tuple", "context": "null", "children_spec": [LEAF] * n}) for n in range(100)]
    for text in many:
        assert treespec_text.leaf_count(text) == many.index(text)
    assert len(treespec_text._memo) <= treespec_text._MEMO_SIZE
    long = _spec({"type": "builtins.tuple", "context": "null", "children_spec": [LEAF] * 1000})
    assert len(long) > treespec_text._MEMO_CHARS
    assert treespec_text.leaf_count(long) == 1000 and long not in treespec_text._memo

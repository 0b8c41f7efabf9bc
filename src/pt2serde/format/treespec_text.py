"""The shape of a pytree treespec's JSON text, checked without torch: one rule for load and validate.

``ModuleCallSignature.in_spec``/``out_spec`` hold pytree treespecs as JSON text (protocol
:data:`pt2serde.schema.TREESPEC_VERSION`): ``[protocol, node]`` where each node is
``{"type": <serialized type name or null>, "context": ..., "children_spec": [node, ...]}``.
:func:`problems` says what is wrong with such a text, as far as the file alone can tell:

* JSON the one reader accepts (:func:`pt2serde.format.codec.loads_json`: strict, no key named twice,
  bounded expansion), a ``[protocol, node]`` pair of the known protocol;
* nodes of exactly those three keys, ``children_spec`` a list, depth at most :data:`MAX_DEPTH`
  (walked iteratively);
* a ``collections.defaultdict`` context naming its factory among :data:`SAFE_FACTORIES` (plain
  container and scalar classes: the factory is called whenever a missing key is read);
* the contexts of torch's own container types (:data:`JSON_CONTEXT_TYPES`) are strict JSON
  text whose enum objects have the form ``{"__enum__": true, "fqn": str, "name": str}``.

Whether a type name is registered with pytree, and whether an enum's module is imported, depend
on the process, not the file: :mod:`pt2serde.bridge.treespec` (the bridge) finds out when it builds the
spec, after calling :func:`check`.
"""

from __future__ import annotations

from typing import Any

from .. import schema
from .memo import remember
from ..errors import SerializeError

__all__ = ["MAX_DEPTH", "SAFE_FACTORIES", "problems", "check", "leaf_count", "call_arity", "DEFAULTDICT"]

MAX_DEPTH = 256
DEFAULTDICT = "collections.defaultdict"
#: the defaultdict factories a treespec may name (module, name)
SAFE_FACTORIES = frozenset({("builtins", n) for n in ("list", "dict", "set", "int", "float", "str", "tuple",
                                                      "frozenset", "bool")}
                           | {("collections", n) for n in ("OrderedDict", "deque", "Counter")})
#: torch's own node types whose context pytree writes as JSON text (a user's registered type,
#: a namedtuple, a defaultdict write their own forms, read by their own hooks)
JSON_CONTEXT_TYPES = frozenset({"builtins.tuple", "builtins.list", "builtins.dict", "collections.OrderedDict",
                                "collections.deque", "torch.fx.immutable_collections.immutable_list",
                                "torch.fx.immutable_collections.immutable_dict"})
_NODE_KEYS = {"type", "context", "children_spec"}
_DEFAULTDICT_KEYS = {"default_factory_module", "default_factory_name", "dict_context"}


def _loads(text: Any, what: str) -> Any:
    from .codec import loads_json

    if not isinstance(text, str):
        raise SerializeError(f"{what} must be JSON text")
    return loads_json(text, what=what)


def _enum_problem(value: Any) -> str | None:
    """An enum object anywhere in a context must be well-formed (iteratively)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            if "__enum__" in v and not (v.get("__enum__") is True and set(v) == {"__enum__", "fqn", "name"}
                                        and isinstance(v["fqn"], str) and isinstance(v["name"], str)):
                return "malformed enum key in treespec context"
            stack.extend(v.values())
    return None


def _node_problem(node: Any) -> str | None:
    if not isinstance(node, dict) or set(node) != _NODE_KEYS:
        return "malformed treespec node"
    if not isinstance(node["children_spec"], list):
        return "malformed treespec node: children_spec must be a list"
    type_name, context = node["type"], node["context"]
    if type_name is None:
        return None if context is None and not node["children_spec"] else "malformed treespec leaf"
    if not isinstance(type_name, str):
        return f"treespec uses the pytree type {type_name!r}, which is not a type name"
    if type_name == DEFAULTDICT:
        if not isinstance(context, dict) or set(context) != _DEFAULTDICT_KEYS:
            return "malformed defaultdict context in treespec"
        factory = (context["default_factory_module"], context["default_factory_name"])
        if factory not in SAFE_FACTORIES:
            return f"treespec defaultdict factory {factory[0]}.{factory[1]} is not an allowed container type"
        return None
    if type_name in JSON_CONTEXT_TYPES:
        if not isinstance(context, str):
            return f"treespec context of {type_name} must be JSON text"
        try:
            return _enum_problem(_loads(context, f"treespec context of {type_name}"))
        except SerializeError as e:
            return f"invalid treespec context for {type_name}: {e}"
    return None


def problems(text: Any) -> list[str]:
    """What is wrong with the treespec JSON ``text`` (empty: nothing the file alone can show).
    Stops at the first problem of the JSON itself; lists every bad node otherwise."""
    return _checked(text)[0]


#: :func:`_checked` of recent texts, by the exact text: one load reads each spec four or five
#: times (the code-field gate, the call-spec checks, the bridge), and a process loads the same
#: specs again. Bounded: texts up to _MEMO_CHARS characters, at most _MEMO_SIZE of them.
_memo: dict[str, tuple[tuple[str, ...], Any]] = {}
_MEMO_CHARS = 16_384
_MEMO_SIZE = 32


def _checked(text: Any) -> tuple[list[str], Any]:
    """:func:`problems` of ``text``, and its root node (None where it cannot be walked). The
    root is shared between calls with the same text: read it, never change it."""
    if type(text) is not str or len(text) > _MEMO_CHARS:
        return _check_text(text)
    hit = _memo.get(text)
    if hit is None:
        found, root = _check_text(text)
        hit = remember(_memo, text, (tuple(found), root), _MEMO_SIZE)
    return list(hit[0]), hit[1]


def _check_text(text: Any) -> tuple[list[str], Any]:
    try:
        pair = _loads(text, "treespec")
    except SerializeError as e:
        return [str(e)], None  # "treespec is not valid JSON: ..." (codec names the problem)
    if not (isinstance(pair, list) and len(pair) == 2):
        return ["treespec is not a JSON [protocol, node] pair"], None
    protocol, root = pair
    if protocol != schema.TREESPEC_VERSION or type(protocol) is not int:
        return [f"Unknown treespec protocol {protocol!r}"], None
    return _node_problems(root), root


def _node_problems(root: Any) -> list[str]:
    """Every bad node under ``root``, walked iteratively (depth at most :data:`MAX_DEPTH`)."""
    out = []
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return out + ["treespec is nested too deeply"]
        problem = _node_problem(node)
        if problem:
            out.append(problem)
            continue
        stack.extend((child, depth + 1) for child in node["children_spec"])
    return out


def check(text: Any) -> Any:
    """Raise the first of :func:`problems` as a :class:`SerializeError`; return the parsed pair."""
    found = problems(text)
    if found:
        raise SerializeError(found[0])
    return _loads(text, "treespec")


def leaf_count(text: Any) -> int | None:
    """How many values the treespec ``text`` flattens to: its leaves (``"type": null``). A
    ``None`` in the tree is a node of type ``builtins.NoneType`` without children, so it holds
    no leaf, as pytree flattens it. ``None`` when ``text`` has any of :func:`problems`."""
    found, root = _checked(text)
    if found:
        return None
    count, stack = 0, [root]
    while stack:
        node = stack.pop()
        if node["type"] is None:
            count += 1
        stack.extend(node["children_spec"])
    return count


def call_arity(text: Any) -> int | str | None:
    """How many arguments the call spec ``text`` (a module call's ``in_spec``) passes: torch
    writes every one as a tuple of the positional arguments' tuple and the keyword arguments'
    dict, and ``module()``, ``unflatten`` and ``run_decompositions()`` take it apart so. The
    message when ``text`` has another shape; ``None`` when it has :func:`problems`."""
    found, root = _checked(text)
    if found:
        return None
    kids = root["children_spec"]
    if (root["type"] != "builtins.tuple" or len(kids) != 2 or kids[0]["type"] != "builtins.tuple"
            or kids[1]["type"] != "builtins.dict"):
        def short(name: Any) -> str:  # type names come from the file: quoted within a bound
            text = str(name)
            return text if len(text) <= 80 else f"{text[:40]}... ({len(text)} characters)"

        shown = ", ".join(short(k["type"]) for k in kids[:4]) + (", ..." if len(kids) > 4 else "")
        return (f"a call's in_spec must be a tuple of an args tuple and a kwargs dict, got {short(root['type'])} "
                f"of [{shown}]")
    return len(kids[0]["children_spec"]) + len(kids[1]["children_spec"])

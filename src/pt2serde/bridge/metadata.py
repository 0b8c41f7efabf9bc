"""Node metadata: one row per ``node.meta`` key, holding how it is written and read.

Only ``call_function`` nodes carry metadata on the wire, and only these keys, in this
order: ``stack_trace``, ``nn_module_stack``, ``source_fn_stack``, ``torch_fn``,
``custom``, ``from_node``. Everything else (``val`` lives in the value tables,
``unbacked_bindings`` is recomputed on load) is not written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.fx.traceback import NodeSource

from ..format.codegen_fields import split_module_stack_entry
from ..format.memo import remember
from ..errors import SerializeError

__all__ = ["MetaKey", "META_KEYS", "encode_metadata", "decode_metadata"]

SEP = ";"


@dataclass(frozen=True)
class MetaKey:
    """``encode(enc, node, value) -> str | None`` (None: omit); ``decode(dec, text) -> value``.

    ``present`` says whether ``node.meta`` has something worth writing for this key.
    """

    key: str
    present: Callable[[dict], bool]
    encode: Callable[[Any, Any, Any], str | None]
    decode: Callable[[Any, str], Any]


def _truthy(key: str):
    return lambda meta: bool(meta.get(key))


# ------------------------------------------------------------- nn_module_stack


def _enc_module_stack(enc, node, stack: dict) -> str:
    entries = []
    for key, entry in stack.items():
        if not (isinstance(entry, tuple) and len(entry) == 2 and all(isinstance(p, str) for p in entry)):
            raise SerializeError(
                f"nn_module_stack entry {key!r} of node {node.name} must be a (path, type) pair of strings, got {entry!r}"
            )
        text = f"{key},{entry[0]},{entry[1]}"
        if SEP in text or split_module_stack_entry(text) != (key, *entry):
            raise SerializeError(f"nn_module_stack entry {key!r} of node {node.name} would not read back: {entry!r}")
        entries.append(text)
    return SEP.join(entries)


#: entries read recently: a module's entry recurs in the stacks of all its submodules' nodes
#: (``decode_metadata`` caches whole stacks, which differ from leaf to leaf). Bounded: entries
#: up to _ENTRY_CHARS characters (real ones hold a module path and a class path), at most
#: _ENTRIES_SIZE of them.
_ENTRIES: dict[str, tuple[str, tuple[str, str]]] = {}
_ENTRIES_SIZE = 4096
_ENTRY_CHARS = 1024


def _dec_module_stack(dec, text: str) -> dict:
    stack = {}
    known = _ENTRIES
    for item in text.split(SEP):
        entry = known.get(item)
        if entry is None:
            key, path, ty = split_module_stack_entry(item)
            entry = (key, (path, ty))
            if len(item) <= _ENTRY_CHARS:
                remember(known, item, entry, _ENTRIES_SIZE)
        stack[entry[0]] = entry[1]
    return stack


# ------------------------------------------------------------- source_fn_stack


def _enc_source_fn(enc, node, stack) -> str:
    return SEP.join(f"{name},{enc.operator_name(fn)}" for name, fn in stack)


def _dec_source_fn(dec, text: str) -> list:
    stack = []
    for item in text.split(SEP):
        parts = item.split(",")
        if len(parts) != 2:
            raise SerializeError(f"Expected `name,target` in source_fn_stack entry {item!r}")
        stack.append((parts[0], dec.meta_function(parts[1])))
    return stack


# ---------------------------------------------------------------- custom, from_node


def _enc_custom(enc, node, custom) -> str:
    try:
        return json.dumps(custom)
    except Exception as e:  # noqa: BLE001 - any non-JSON-able value
        raise SerializeError(f"Failed to serialize custom metadata for node {node.name} with error {e}") from e


def _dec_json(dec, text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise SerializeError(f"metadata is not valid JSON: {e}") from None


def _enc_from_node(enc, node, sources) -> str:
    if sources is None:
        return "null"
    return json.dumps([s.to_dict() for s in sources if isinstance(s, NodeSource)])


def _dec_from_node(dec, text: str):
    data = _dec_json(dec, text)
    if data is None:
        return None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise SerializeError("from_node metadata must be a JSON list of objects")
    _check_node_sources(data, 0)
    return [s for d in data if (s := NodeSource._from_dict(d)) is not None]


def _check_node_sources(items: list, depth: int) -> None:
    if depth > 64:
        raise SerializeError("from_node metadata is nested too deeply")
    for d in items:
        nested = d.get("from_node")
        if nested is not None:
            if not isinstance(nested, list) or not all(isinstance(x, dict) for x in nested):
                raise SerializeError("from_node metadata must be a JSON list of objects")
            _check_node_sources(nested, depth + 1)


META_KEYS: tuple[MetaKey, ...] = (
    MetaKey("stack_trace", _truthy("stack_trace"), lambda enc, node, v: v, lambda dec, t: t),
    MetaKey("nn_module_stack", _truthy("nn_module_stack"), _enc_module_stack, _dec_module_stack),
    MetaKey("source_fn_stack", _truthy("source_fn_stack"), _enc_source_fn, _dec_source_fn),
    MetaKey("torch_fn", _truthy("torch_fn"), lambda enc, node, v: SEP.join(list(v)),
            lambda dec, t: tuple(t.split(SEP))),
    MetaKey("custom", _truthy("custom"), _enc_custom, _dec_json),
    MetaKey("from_node", lambda meta: "from_node" in meta, _enc_from_node, _dec_from_node),
)


def encode_metadata(enc, node: torch.fx.Node) -> dict[str, str]:
    meta = node.meta
    out: dict[str, str] = {}
    for row in META_KEYS:
        if row.present(meta):
            text = row.encode(enc, node, meta[row.key])
            if text is not None:
                out[row.key] = text
    return out


#: keys whose parsed value is rebuilt from a per-graph cache (the same module stacks recur on
#: most nodes); each node still gets its own container, so no two nodes share a mutable value
_CACHED = {"nn_module_stack": dict, "source_fn_stack": list, "torch_fn": tuple}


def decode_metadata(dec, metadata: dict[str, str], cache: dict | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in META_KEYS:
        text = metadata.get(row.key)
        if not text:
            continue
        copy = _CACHED.get(row.key) if cache is not None else None
        if copy is not None and (row.key, text) in cache:
            out[row.key] = copy(cache[row.key, text])
            continue
        try:
            value = row.decode(dec, text)
        except SerializeError as e:
            raise SerializeError(f"{e} (in node metadata `{row.key}`)") from None
        if copy is not None:
            cache[row.key, text] = value
            value = copy(value)
        out[row.key] = value
    return out
